"""Combine the ranks of an experiment into one result, and repeated cycles into statistics.

Ranks: energy is summed over distinct physical devices (a device two ranks both report is
metered once, over the union of their windows), tokens are summed, and throughput is output
tokens over the union of the windows (latest end - earliest start), never a mean of per-rank
rates. Latency statistics are
taken over all samples of all ranks. The v2 compatibility fields keep their v2 meaning
(``total_inference_time_sec`` sums per-rank times, ``avg_tokens_per_second`` averages per-rank
rates). Missing ranks, windows that do not overlap, or ranks that measured different
experiments are refused.

Cycles: mean, sample standard deviation, 95 % confidence interval of the mean and
coefficient of variation of energy, throughput, latency and J per output token. These
quantities are positive, so the interval is taken on the log scale and transformed back (see
:func:`summarize`): it never leaves the positive axis, however few the cycles.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem.config.campaign import ExperimentSpec
from llem.domain.experiment import (
    AggregatedResult,
    AggregationMetadata,
    CycleMetadata,
    CycleStatistics,
    MultiCycleResult,
    RawProcessResult,
)
from llem.domain.metrics import (
    BatchEfficiencyMetrics,
    DeviceEnergy,
    EnergyBreakdown,
    ExtendedEfficiencyMetrics,
    LatencyMeasurements,
    MeasuredWindow,
    MemoryEfficiencyMetrics,
    PhaseEnergy,
    ThermalThrottleInfo,
)
from llem.errors import AggregationError, SchemaValidationError
from llem.io import write_json_atomic

METHOD = "sum_energy_distinct_devices_throughput_over_union_window"
_CYCLE_DIR = re.compile(r"^cycle_(\d+)$")
_RAW_FILE = re.compile(r"^process_(\d+)\.json$")

# --------------------------------------------------------------------------------------
# Reading an experiment folder
# --------------------------------------------------------------------------------------


def read_cycle(cycle_dir: Path, num_processes: int) -> list[RawProcessResult]:
    """Every rank's raw result of one cycle; each must exist and be marked done."""
    raw_dir = cycle_dir / "raw"
    found: dict[int, Path] = {}
    if raw_dir.is_dir():
        for path in raw_dir.iterdir():
            match = _RAW_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = path
    expected = set(range(num_processes))
    missing = sorted(expected - set(found))
    if missing:
        raise AggregationError(
            f"{raw_dir}: missing result of rank(s) {missing} (expected {num_processes} "
            "process result(s)); the measure job did not finish on every rank"
        )
    extra = sorted(set(found) - expected)
    if extra:
        raise AggregationError(
            f"{raw_dir}: result(s) of rank(s) {extra} beyond num_processes={num_processes}; "
            "stale files from an earlier run?"
        )
    results = []
    for rank in sorted(found):
        path = found[rank]
        if not path.with_suffix(".done").is_file():
            raise AggregationError(f"{path}: no completion marker (process_{rank}.done)")
        try:
            raw = RawProcessResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AggregationError(f"{path}: not a readable v3 process result: {exc}") from exc
        if raw.process_index != rank:
            raise AggregationError(f"{path}: holds the result of rank {raw.process_index}")
        results.append(raw)
    return results


def cycle_dirs(exp_dir: Path) -> dict[int, Path]:
    """``cycle_<k>`` folders of an experiment, by k."""
    out: dict[int, Path] = {}
    if exp_dir.is_dir():
        for path in exp_dir.iterdir():
            match = _CYCLE_DIR.match(path.name)
            if match and path.is_dir():
                out[int(match.group(1))] = path
    return out


def aggregate_experiment(
    spec: ExperimentSpec, exp_dir: Path
) -> AggregatedResult | MultiCycleResult:
    """The experiment's result: one cycle -> AggregatedResult, several -> MultiCycleResult."""
    cfg = spec.config
    dirs = cycle_dirs(exp_dir)
    missing = sorted(set(range(cfg.num_cycles)) - set(dirs))
    if missing:
        raise AggregationError(
            f"{exp_dir}: missing cycle folder(s) {[f'cycle_{k}' for k in missing]} "
            f"(num_cycles={cfg.num_cycles})"
        )
    cycles = []
    for k in range(cfg.num_cycles):
        raws = read_cycle(dirs[k], cfg.num_processes)
        cycles.append(aggregate_processes(raws, spec, base_dir=exp_dir, cycle_dir=dirs[k]))
    if cfg.num_cycles == 1:
        return cycles[0]
    return aggregate_cycles(cycles, spec)


def write_result(result: AggregatedResult | MultiCycleResult, out: Path) -> None:
    """Validate against the JSON Schema, then write atomically."""
    from llem.results.schema import validate_document

    fmt = "v3_multi_cycle" if isinstance(result, MultiCycleResult) else "v3_aggregated"
    document = json.loads(result.model_dump_json())
    problems = validate_document(document, fmt)
    if problems:
        shown = "\n".join(problems[:10])
        raise SchemaValidationError(f"{out}: result does not match the {fmt} schema:\n{shown}")
    write_json_atomic(out, document)


# --------------------------------------------------------------------------------------
# Ranks -> one result
# --------------------------------------------------------------------------------------


def aggregate_processes(
    raws: Sequence[RawProcessResult],
    spec: ExperimentSpec | None = None,
    base_dir: Path | None = None,
    cycle_dir: Path | None = None,
) -> AggregatedResult:
    """Combine one cycle's ranks. ``base_dir`` is where result.json goes (for relative paths)."""
    if not raws:
        raise AggregationError("no process results to aggregate")
    raws = sorted(raws, key=lambda r: r.process_index)
    _check_same_experiment(raws, spec)
    ranks = [r.process_index for r in raws]
    if ranks != list(range(len(raws))):
        raise AggregationError(f"ranks {ranks} are not 0..{len(raws) - 1}: missing or duplicated")
    start = min(r.timestamps.start for r in raws)
    end = max(r.timestamps.end for r in raws)
    latest_start = max(r.timestamps.start for r in raws)
    earliest_end = min(r.timestamps.end for r in raws)
    if len(raws) > 1 and latest_start >= earliest_end:
        raise AggregationError(
            f"the measured windows of the ranks do not overlap (latest start {latest_start}, "
            f"earliest end {earliest_end}); they did not run together"
        )
    union_sec = (end - start).total_seconds()
    first = raws[0]

    input_tokens = sum(r.inference_metrics.input_tokens for r in raws)
    output_tokens = sum(r.inference_metrics.output_tokens for r in raws)
    total_tokens = sum(r.inference_metrics.total_tokens for r in raws)
    energy = combine_energy(raws)
    warnings = list(energy.warnings)
    for r in raws:
        warnings.extend(f"rank {r.process_index}: {w}" for w in (r.measurement_warnings or []))

    from llem.inference.latency import latency_statistics, merge_measurements

    merged = merge_measurements(
        LatencyMeasurements.model_validate(r.inference_metrics.latency_measurements)
        for r in raws
        if r.inference_metrics.latency_measurements
    )
    stats = latency_statistics(merged)

    timeseries = [
        _relative(cycle_dir / "raw" / r.timeseries_path, base_dir)
        for r in raws
        if r.timeseries_path and cycle_dir is not None
    ]
    cfg_doc = spec.config.model_dump(mode="json") if spec else first.effective_config
    windows = [r.measured_window for r in raws if r.measured_window is not None]
    return AggregatedResult(
        experiment_id=spec.experiment_id if spec else first.experiment_id,
        backend=first.backend,
        backend_version=first.backend_version,
        aggregation=AggregationMetadata(
            method=METHOD,
            num_processes=len(raws),
            temporal_overlap_verified=True,
            gpu_attribution_verified=energy.attribution_verified,
            warnings=list(energy.warnings),
        ),
        total_tokens=total_tokens,
        total_energy_j=energy.total_j,
        total_inference_time_sec=sum(r.inference_metrics.inference_time_sec for r in raws),
        avg_tokens_per_second=sum(r.inference_metrics.tokens_per_second for r in raws)
        / len(raws),
        avg_energy_per_token_j=_ratio(energy.total_j, total_tokens),
        total_flops=sum(r.compute_metrics.flops_total for r in raws),
        process_results=list(raws),
        start_time=start,
        end_time=end,
        effective_config=cfg_doc,
        config_warnings=sorted({w for r in raws for w in r.config_warnings}),
        latency_stats=stats,
        energy_tracking_failed=any(r.energy_tracking_failed for r in raws),
        extended_metrics=_extended(raws, stats),
        environment=first.environment,
        energy_breakdown=energy.breakdown,
        thermal_throttle=combine_throttle(raws),
        timeseries_path=timeseries[0] if timeseries else None,
        model_name=first.model_name,
        input_tokens=input_tokens,
        timeseries_paths=timeseries or None,
        config_hash=spec.config_hash if spec else first.config_hash,
        llem_version=first.llem_version,
        written_by=first.written_by,
        run_id=spec.run_id if spec else first.run_id,
        campaign=spec.campaign if spec else first.campaign,
        energy_source=energy.source,
        energy_unavailable_reason=energy.unavailable_reason,
        device_energy=energy.devices,
        measured_window=MeasuredWindow(
            start_time=start,
            end_time=end,
            duration_sec=union_sec,
            sample_count=sum(w.sample_count for w in windows),
            min_window_sec=windows[0].min_window_sec if windows else None,
            prompt_set_repeats=max((w.prompt_set_repeats for w in windows), default=1),
            below_minimum=any(w.below_minimum for w in windows),
        ),
        output_tokens=output_tokens,
        output_tokens_per_second=output_tokens / union_sec if union_sec > 0 else None,
        energy_per_output_token_j=_ratio(energy.total_j, output_tokens),
        phase_energy=combine_phases(raws),
        model_source=first.model_source,
        measurement_warnings=warnings or None,
        cycle_id=first.cycle_id,
    )


def _check_same_experiment(raws: Sequence[RawProcessResult], spec: ExperimentSpec | None) -> None:
    for label, values in (
        ("model", {r.model_name for r in raws}),
        ("config hash", {r.config_hash for r in raws}),
        ("experiment", {r.experiment_id for r in raws}),
        ("cycle", {r.cycle_id for r in raws}),
    ):
        if len(values) > 1:
            raise AggregationError(
                f"process results disagree on the {label} ({sorted(map(str, values))}); "
                "results of different runs are mixed in one folder"
            )
    if spec is not None:
        if raws[0].model_name != spec.config.model_name:
            raise AggregationError(
                f"process results measured model {raws[0].model_name!r}, the spec names "
                f"{spec.config.model_name!r}"
            )
        if raws[0].config_hash not in (None, spec.config_hash):
            raise AggregationError(
                f"process results have config hash {raws[0].config_hash}, the spec "
                f"{spec.config_hash}: the results belong to another configuration"
            )


@dataclass
class CombinedEnergy:
    total_j: float | None
    source: str | None
    unavailable_reason: str | None
    devices: list[DeviceEnergy]
    breakdown: EnergyBreakdown | None
    attribution_verified: bool
    warnings: list[str]


def _device_identity(raw: RawProcessResult, device: DeviceEnergy) -> tuple[str, ...]:
    """Physical devices are one per host and id; an estimate belongs to its process."""
    host = raw.environment.host if raw.environment and raw.environment.host else "?"
    if device.source == "estimate":
        return (host, str(raw.process_index), device.device_id)
    return (host, device.device_id)


def combine_energy(raws: Sequence[RawProcessResult]) -> CombinedEnergy:
    """Energy summed over distinct devices; null (with the reason) if any share is unmeasured.

    A device several ranks report is metered once, over the union of their windows.
    """
    readings: dict[tuple[str, ...], list[tuple[int, DeviceEnergy]]] = {}
    for raw in raws:
        for device in raw.device_energy or []:
            key = _device_identity(raw, device)
            readings.setdefault(key, []).append((raw.process_index, device))
    warnings: list[str] = []
    devices: list[DeviceEnergy] = []
    shared: list[str] = []
    for entries in readings.values():
        if len(entries) == 1:
            devices.append(entries[0][1])
            continue
        device = _over_union_window(entries)
        shared.append(device.device_id)
        warnings.append(
            f"device {device.device_id} is reported by ranks "
            f"{', '.join(str(rank) for rank, _ in entries)}; metered once over the union of "
            "their windows"
        )
        devices.append(device)
    sources = sorted({r.energy_source for r in raws if r.energy_source not in (None, "none")})
    failed = [r for r in raws if r.energy_tracking_failed]
    unmeasured_devices = [d for d in devices if d.energy_j is None]
    total: float | None
    reason: str | None = None
    if failed:
        total = None
        r = failed[0]
        reason = f"rank {r.process_index}: {r.energy_unavailable_reason or 'energy unmeasured'}"
    elif unmeasured_devices:
        total = None
        d = unmeasured_devices[0]
        reason = f"device {d.device_id}: {d.unavailable_reason or 'energy unmeasured'}"
    elif not devices:
        total = None
        reason = next((r.energy_unavailable_reason for r in raws if r.energy_unavailable_reason),
                      "no energy source measured any device")
    else:
        total = float(sum(d.energy_j for d in devices if d.energy_j is not None))
    if total is None:
        source = "none"
    elif len(sources) == 1:
        source = sources[0]
    else:
        source = "mixed"
    breakdown: EnergyBreakdown | None = None
    if total is not None and shared:
        breakdown = EnergyBreakdown(
            raw_j=total, adjusted_unavailable_reason=f"device {shared[0]} is shared by ranks: "
            "its baseline over the union of their windows is not attributed")
    elif total is not None:
        breakdown = _combine_breakdowns(raws)
    return CombinedEnergy(total, source, reason, devices, breakdown, not shared, warnings)


def _over_union_window(entries: Sequence[tuple[int, DeviceEnergy]]) -> DeviceEnergy:
    """One device's energy from the earliest start to the latest end of the ranks reporting it.

    Only the NVML counter is one counter for every process of a host; other readings of
    different processes have different origins, so the device's energy is then null.
    """
    parts = [device for _, device in entries]
    first = parts[0]
    unmeasured = next((d for d in parts if d.energy_j is None), None)
    if unmeasured is not None:
        return unmeasured
    starts = [d.counter_start_j for d in parts if d.counter_start_j is not None]
    ends = [d.counter_end_j for d in parts if d.counter_end_j is not None]
    if all(d.source == "nvml_counter" for d in parts) and len(starts) == len(ends) == len(parts):
        return first.model_copy(update={"energy_j": max(ends) - min(starts),
                                        "counter_start_j": min(starts),
                                        "counter_end_j": max(ends)})
    ranks = ", ".join(str(rank) for rank, _ in entries)
    return first.model_copy(update={
        "energy_j": None, "counter_start_j": None, "counter_end_j": None,
        "unavailable_reason": f"shared by ranks {ranks}, whose {first.source} readings have "
        "no common counter: its energy over the union of their windows is unknown",
    })


def _combine_breakdowns(raws: Sequence[RawProcessResult]) -> EnergyBreakdown | None:
    """Sum of the ranks' breakdowns; only when every rank that metered energy has one.

    Adjusted energy is null, with the first rank's reason, when any rank's is.
    """
    metering = [r for r in raws if r.device_energy]
    parts = [r.energy_breakdown for r in metering]
    if not parts or any(p is None for p in parts):
        return None
    parts_ok = [p for p in parts if p is not None]
    adjusted = [p.adjusted_j for p in parts_ok]
    baseline = [p.baseline_power_w for p in parts_ok]
    methods = {p.baseline_method for p in parts_ok}
    stamps = [p.baseline_timestamp for p in parts_ok if p.baseline_timestamp is not None]
    ages = [p.baseline_cache_age_sec for p in parts_ok if p.baseline_cache_age_sec is not None]
    reason = next((f"rank {r.process_index}: {p.adjusted_unavailable_reason or 'unknown'}"
                   for r, p in zip(metering, parts_ok, strict=True) if p.adjusted_j is None),
                  None)
    return EnergyBreakdown(
        raw_j=sum(p.raw_j for p in parts_ok),
        adjusted_j=None if reason else sum(a for a in adjusted if a is not None),
        baseline_power_w=None if any(b is None for b in baseline)
        else sum(b for b in baseline if b),
        baseline_method=methods.pop() if len(methods) == 1 else "mixed",
        baseline_timestamp=min(stamps) if stamps else None,
        baseline_cache_age_sec=max(ages) if ages else None,
        adjusted_unavailable_reason=reason,
    )


def combine_throttle(raws: Sequence[RawProcessResult]) -> ThermalThrottleInfo | None:
    """Flags OR'd, durations and temperatures max'd over ranks."""
    infos = [r.thermal_throttle for r in raws if r.thermal_throttle is not None]
    if not infos:
        return None
    temps = [i.max_temperature_c for i in infos if i.max_temperature_c is not None]
    caps = [i.sw_power_cap for i in infos if i.sw_power_cap is not None]
    counts = [i.sample_count for i in infos if i.sample_count is not None]
    slowdowns = [i.hw_slowdown for i in infos if i.hw_slowdown is not None]
    return ThermalThrottleInfo(
        detected=any(i.detected for i in infos),
        thermal=any(i.thermal for i in infos),
        power=any(i.power for i in infos),
        sw_thermal=any(i.sw_thermal for i in infos),
        hw_thermal=any(i.hw_thermal for i in infos),
        hw_power=any(i.hw_power for i in infos),
        throttle_duration_sec=max(i.throttle_duration_sec for i in infos),
        max_temperature_c=max(temps) if temps else None,
        throttle_timestamps=sorted({t for i in infos for t in i.throttle_timestamps}),
        sw_power_cap=any(caps) if caps else None,
        sample_count=sum(counts) if counts else None,
        hw_slowdown=any(slowdowns) if slowdowns else None,
    )


def combine_phases(raws: Sequence[RawProcessResult]) -> PhaseEnergy | None:
    """Prefill/decode times summed over ranks; energies summed over the ranks that meter.

    Energies are null when the combined energy is: when any rank failed to measure, or any
    metering rank could not split its energy.
    """
    phases = [r.phase_energy for r in raws]
    if any(p is None for p in phases):
        return None
    ok = [p for p in phases if p is not None]
    metered = [p for r, p in zip(raws, ok, strict=True) if r.device_energy]
    known = (
        bool(metered)
        and not any(r.energy_tracking_failed for r in raws)
        and all(p.prefill_energy_j is not None and p.decode_energy_j is not None
                for p in metered)
    )
    reason = None
    if not known:
        reason = next((p.unavailable_reason for p in ok if p.unavailable_reason),
                      "energy unmeasured")
    return PhaseEnergy(
        prefill_energy_j=sum(p.prefill_energy_j or 0.0 for p in metered) if known else None,
        decode_energy_j=sum(p.decode_energy_j or 0.0 for p in metered) if known else None,
        prefill_time_sec=sum(p.prefill_time_sec for p in ok),
        decode_time_sec=sum(p.decode_time_sec for p in ok),
        method=ok[0].method,
        unavailable_reason=reason,
    )


def _extended(raws: Sequence[RawProcessResult], stats: Any) -> ExtendedEfficiencyMetrics:
    from llem.inference.latency import request_latency_metrics

    batches = [r.extended_metrics.batch for r in raws]
    num_batches = sum(b.num_batches or 0 for b in batches)
    requests = sum(
        (b.effective_batch_size or 0.0) * (b.num_batches or 0) for b in batches
    )
    tpots = [(r.extended_metrics.tpot_ms, r.inference_metrics.output_tokens) for r in raws
             if r.extended_metrics.tpot_ms is not None]
    weight = sum(w for _, w in tpots)
    memories = [r.extended_metrics.memory for r in raws]
    utilisation = [b.batch_utilisation * (b.num_batches or 0) for b in batches
                   if b.batch_utilisation is not None]
    padding = [b.padding_overhead for b in batches if b.padding_overhead is not None]
    return ExtendedEfficiencyMetrics(
        tpot_ms=sum(t * w for t, w in tpots) / weight if tpots and weight else None,
        memory=MemoryEfficiencyMetrics(
            total_vram_mb=sum(m.total_vram_mb for m in memories),
            model_memory_mb=max(m.model_memory_mb for m in memories),
            peak_memory_mb=max(m.peak_memory_mb for m in memories),
        ),
        batch=BatchEfficiencyMetrics(
            effective_batch_size=requests / num_batches if num_batches else None,
            batch_utilisation=sum(utilisation) / num_batches if num_batches and utilisation
            else None,
            padding_overhead=sum(padding) / len(padding) if padding else None,
            num_batches=num_batches or None,
        ),
        request_latency=request_latency_metrics(stats),
    )


def _relative(path: Path, base: Path | None) -> str:
    path = Path(path)
    resolved = Path(*_normalize(path.parts))
    if base is None:
        return str(resolved)
    try:
        return str(resolved.relative_to(Path(*_normalize(Path(base).parts))))
    except ValueError:
        return str(resolved)


def _normalize(parts: Sequence[str]) -> list[str]:
    """Collapse ``..`` lexically (no symlink resolution)."""
    out: list[str] = []
    for part in parts:
        if part == ".." and out and out[-1] != "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


def _ratio(value: float | None, count: float) -> float | None:
    return None if value is None or count <= 0 else value / count


# --------------------------------------------------------------------------------------
# Cycles -> statistics
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """Mean, sample std, 95 % confidence interval of the mean, CV, and n of a sample."""

    mean: float
    std: float
    ci_lower: float | None
    ci_upper: float | None
    cv: float | None
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """Statistics of ``values`` of a positive quantity (n >= 2; sample std with n - 1).

    The interval is the modified Cox interval for the mean of a log-normal sample: with
    ``y = ln x``, mean ``m`` and sample variance ``s2`` of ``y``, it is
    ``exp(m + s2/2 +- t(0.975, n-1) * sqrt(s2/n + s2**2 / (2 (n-1))))``. It is positive by
    construction, wider above the mean than below, and for small spread close to the
    Student-t interval of the raw values. A sample with a value <= 0 has no such interval
    (None): the quantity was not positive, so no number is better than a wrong one.
    """
    n = len(values)
    if n < 2:
        raise ValueError("need at least two values")
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    cv = std / mean if mean != 0 else None
    lower, upper = log_scale_interval(values)
    return Summary(mean, std, lower, upper, cv, n)


def log_scale_interval(values: Sequence[float]) -> tuple[float | None, float | None]:
    """95 % interval of the mean of positive ``values`` on the log scale (see summarize)."""
    n = len(values)
    if n < 2 or any(v <= 0 for v in values):
        return None, None
    logs = [math.log(v) for v in values]
    m = sum(logs) / n
    s2 = sum((y - m) ** 2 for y in logs) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(s2 / n + s2 * s2 / (2 * (n - 1)))
    centre = m + s2 / 2
    return math.exp(centre - half), math.exp(centre + half)


def _maybe(values: Sequence[float | None]) -> Summary | None:
    if any(v is None for v in values):
        return None
    return summarize([v for v in values if v is not None])


def aggregate_cycles(
    cycles: Sequence[AggregatedResult], spec: ExperimentSpec
) -> MultiCycleResult:
    """Statistics across cycles; energy figures are null when any cycle's energy is."""
    if len(cycles) < 2:
        raise AggregationError("a multi-cycle result needs at least two cycles")
    cycles = sorted(cycles, key=lambda c: c.cycle_id or 0)

    def tokens_per_sec(c: AggregatedResult) -> float:
        return c.total_tokens / (c.end_time - c.start_time).total_seconds()

    throughput = summarize([tokens_per_sec(c) for c in cycles])
    energy = _maybe([c.total_energy_j for c in cycles])
    output = _maybe([c.output_tokens_per_second for c in cycles])
    per_token = _maybe([c.energy_per_output_token_j for c in cycles])
    efficiency = _maybe([
        None if c.total_energy_j in (None, 0) else c.total_tokens / c.total_energy_j
        for c in cycles
    ])
    latency = _maybe([c.latency_stats.e2e_mean_ms if c.latency_stats else None for c in cycles])
    statistics = CycleStatistics(
        num_cycles=len(cycles),
        energy_mean_j=energy.mean if energy else None,
        energy_std_j=energy.std if energy else None,
        energy_ci_95_lower=energy.ci_lower if energy else None,
        energy_ci_95_upper=energy.ci_upper if energy else None,
        energy_cv=energy.cv if energy else None,
        throughput_mean_tps=throughput.mean,
        throughput_std_tps=throughput.std,
        throughput_ci_95_lower=throughput.ci_lower,
        throughput_ci_95_upper=throughput.ci_upper,
        throughput_cv=throughput.cv,
        efficiency_mean_tpj=efficiency.mean if efficiency else None,
        efficiency_std_tpj=efficiency.std if efficiency else None,
        latency_mean_ms=latency.mean if latency else None,
        latency_std_ms=latency.std if latency else None,
        latency_ci_95_lower=latency.ci_lower if latency else None,
        latency_ci_95_upper=latency.ci_upper if latency else None,
        output_throughput_mean_tps=output.mean if output else None,
        output_throughput_std_tps=output.std if output else None,
        output_throughput_ci_95_lower=output.ci_lower if output else None,
        output_throughput_ci_95_upper=output.ci_upper if output else None,
        output_throughput_cv=output.cv if output else None,
        energy_per_output_token_mean_j=per_token.mean if per_token else None,
        energy_per_output_token_std_j=per_token.std if per_token else None,
        energy_per_output_token_ci_95_lower=per_token.ci_lower if per_token else None,
        energy_per_output_token_ci_95_upper=per_token.ci_upper if per_token else None,
        energy_per_output_token_cv=per_token.cv if per_token else None,
    )
    start = min(c.start_time for c in cycles)
    end = max(c.end_time for c in cycles)
    return MultiCycleResult(
        experiment_id=spec.experiment_id,
        backend=cycles[0].backend,
        backend_version=cycles[0].backend_version,
        num_cycles=len(cycles),
        statistics=statistics,
        cycle_results=list(cycles),
        cycle_metadata=[
            CycleMetadata(
                cycle_id=c.cycle_id if c.cycle_id is not None else i,
                timestamp=c.start_time,
                gpu_temperature_c=c.thermal_throttle.max_temperature_c
                if c.thermal_throttle else None,
            )
            for i, c in enumerate(cycles)
        ],
        start_time=start,
        end_time=end,
        total_duration_sec=(end - start).total_seconds(),
        effective_config=spec.config.model_dump(mode="json"),
        config_warnings=sorted({w for c in cycles for w in c.config_warnings}),
        config_hash=spec.config_hash,
        llem_version=cycles[0].llem_version,
        written_by=cycles[0].written_by,
    )


# --------------------------------------------------------------------------------------
# Student t quantile (no SciPy): inverts the CDF through the regularized incomplete beta.
# --------------------------------------------------------------------------------------


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (two-sided 95 %)."""
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    lo, hi = 0.0, 1.0e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        upper_tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + mid * mid))
        if upper_tail > 0.025:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta, evaluated with Lentz's method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
