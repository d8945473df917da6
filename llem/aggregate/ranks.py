"""Ranks to one result: the cycle's ranks combined into one AggregatedResult.

Tokens are summed, and throughput is output tokens over the union of the windows (latest end
- earliest start), never a mean of per-rank rates; energy is combined in
:mod:`llem.aggregate.energy`. Latency statistics are taken over all samples of all ranks. The
v2 compatibility fields keep their v2 meaning (``total_inference_time_sec`` sums per-rank
times, ``avg_tokens_per_second`` averages per-rank rates). Missing ranks, windows that do not
overlap, or ranks that measured different experiments are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from llem.aggregate.energy import CombinedEnergy, combine_energy, combine_phases
from llem.config.campaign import ExperimentSpec
from llem.domain.experiment import AggregatedResult, AggregationMetadata, RawProcessResult
from llem.domain.instrumentation import SAMPLER_USES, InstrumentationCost
from llem.domain.latency import latency_statistics, merge_measurements, request_latency_metrics
from llem.domain.metrics import (
    BatchEfficiencyMetrics,
    ExtendedEfficiencyMetrics,
    LatencyMeasurements,
    LatencyStatistics,
    MeasuredWindow,
    MemoryEfficiencyMetrics,
    ThermalThrottleInfo,
)
from llem.errors import AggregationError
from llem.stats import ratio_or_none

METHOD = "sum_energy_distinct_devices_throughput_over_union_window"


def aggregate_processes(
    raws: Sequence[RawProcessResult],
    spec: ExperimentSpec | None = None,
    base_dir: Path | None = None,
    cycle_dir: Path | None = None,
) -> AggregatedResult:
    """Combine one cycle's ranks into one result.

    Args:
        raws: every rank's raw result of the cycle (any order).
        spec: the experiment's spec; without it the identity comes from rank 0's result.
        base_dir: where result.json goes; time-series paths are written relative to it.
        cycle_dir: the cycle folder the raw results were read from.
    """
    if not raws:
        raise AggregationError("no process results to aggregate")
    raws = sorted(raws, key=lambda r: r.process_index)
    _check_same_experiment(raws, spec)
    _check_ranks_ran_together(raws)
    start = min(r.timestamps.start for r in raws)
    end = max(r.timestamps.end for r in raws)
    union_sec = (end - start).total_seconds()
    first = raws[0]
    output_tokens = sum(r.inference_metrics.output_tokens for r in raws)
    total_tokens = sum(r.inference_metrics.total_tokens for r in raws)
    energy = combine_energy(raws)
    stats = _latency_over_all_samples(raws)
    timeseries = _timeseries_paths(raws, base_dir, cycle_dir)
    warnings = _measurement_warnings(raws, energy)
    return AggregatedResult(
        experiment_id=spec.experiment_id if spec else first.experiment_id,
        backend=first.backend,
        backend_version=first.backend_version,
        aggregation=_aggregation_metadata(raws, energy),
        total_tokens=total_tokens,
        total_energy_j=energy.total_j,
        total_inference_time_sec=sum(r.inference_metrics.inference_time_sec for r in raws),
        avg_tokens_per_second=sum(r.inference_metrics.tokens_per_second for r in raws)
        / len(raws),
        avg_energy_per_token_j=ratio_or_none(energy.total_j, total_tokens),
        total_flops=sum(r.compute_metrics.flops_total for r in raws),
        process_results=list(raws),
        start_time=start,
        end_time=end,
        effective_config=spec.config.model_dump(mode="json") if spec else first.effective_config,
        config_warnings=sorted({w for r in raws for w in r.config_warnings}),
        latency_stats=stats,
        energy_tracking_failed=any(r.energy_tracking_failed for r in raws),
        extended_metrics=_extended(raws, stats),
        environment=first.environment,
        energy_breakdown=energy.breakdown,
        thermal_throttle=combine_throttle(raws),
        timeseries_path=timeseries[0] if timeseries else None,
        model_name=first.model_name,
        input_tokens=sum(r.inference_metrics.input_tokens for r in raws),
        timeseries_paths=timeseries or None,
        config_hash=spec.config_hash if spec else first.config_hash,
        llem_version=first.llem_version,
        written_by=first.written_by,
        run_id=spec.run_id if spec else first.run_id,
        campaign=spec.campaign if spec else first.campaign,
        energy_source=energy.source,
        energy_unavailable_reason=energy.unavailable_reason,
        device_energy=energy.devices,
        measured_window=_union_window(raws, start, end),
        output_tokens=output_tokens,
        output_tokens_per_second=output_tokens / union_sec if union_sec > 0 else None,
        energy_per_output_token_j=ratio_or_none(energy.total_j, output_tokens),
        phase_energy=combine_phases(raws),
        instrumentation=combine_instrumentation(raws),
        model_source=first.model_source,
        measurement_warnings=warnings or None,
        cycle_id=first.cycle_id,
    )


def _check_ranks_ran_together(raws: Sequence[RawProcessResult]) -> None:
    """Ranks 0..n-1, each once, whose measured windows overlap (``raws`` sorted by rank)."""
    ranks = [r.process_index for r in raws]
    if ranks != list(range(len(raws))):
        raise AggregationError(f"ranks {ranks} are not 0..{len(raws) - 1}: missing or duplicated")
    latest_start = max(r.timestamps.start for r in raws)
    earliest_end = min(r.timestamps.end for r in raws)
    if len(raws) > 1 and latest_start >= earliest_end:
        raise AggregationError(
            f"the measured windows of the ranks do not overlap (latest start {latest_start}, "
            f"earliest end {earliest_end}); they did not run together"
        )


def _latency_over_all_samples(raws: Sequence[RawProcessResult]) -> LatencyStatistics | None:
    """Latency statistics over the samples of every rank together."""
    return latency_statistics(merge_measurements(
        LatencyMeasurements.model_validate(r.inference_metrics.latency_measurements)
        for r in raws
        if r.inference_metrics.latency_measurements
    ))


def _union_window(
    raws: Sequence[RawProcessResult], start: datetime, end: datetime
) -> MeasuredWindow:
    """The measured window of the cycle: from the earliest start to the latest end."""
    windows = [r.measured_window for r in raws if r.measured_window is not None]
    return MeasuredWindow(
        start_time=start,
        end_time=end,
        duration_sec=(end - start).total_seconds(),
        sample_count=sum(w.sample_count for w in windows),
        min_window_sec=windows[0].min_window_sec if windows else None,
        prompt_set_repeats=max((w.prompt_set_repeats for w in windows), default=1),
        below_minimum=any(w.below_minimum for w in windows),
    )


def _aggregation_metadata(
    raws: Sequence[RawProcessResult], energy: CombinedEnergy
) -> AggregationMetadata:
    """How the ranks were combined (the checks above passed: the windows overlap)."""
    return AggregationMetadata(
        method=METHOD,
        num_processes=len(raws),
        temporal_overlap_verified=True,
        gpu_attribution_verified=energy.attribution_verified,
        warnings=list(energy.warnings),
    )


def _measurement_warnings(
    raws: Sequence[RawProcessResult], energy: CombinedEnergy
) -> list[str]:
    """The combination's warnings, then every rank's own, each naming its rank."""
    warnings = list(energy.warnings)
    for r in raws:
        warnings.extend(f"rank {r.process_index}: {w}" for w in (r.measurement_warnings or []))
    return warnings


def _timeseries_paths(
    raws: Sequence[RawProcessResult], base_dir: Path | None, cycle_dir: Path | None
) -> list[str]:
    """Every rank's time-series file, relative to ``base_dir`` (none without ``cycle_dir``)."""
    return [
        _relative(cycle_dir / "raw" / r.timeseries_path, base_dir)
        for r in raws
        if r.timeseries_path and cycle_dir is not None
    ]


def _check_same_experiment(raws: Sequence[RawProcessResult], spec: ExperimentSpec | None) -> None:
    """The ranks measured one experiment's cycle, and the one ``spec`` names."""
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



def combine_instrumentation(raws: Sequence[RawProcessResult]) -> InstrumentationCost | None:
    """CPU seconds and reads summed over ranks; the fraction is of their summed CPU time.

    None when a rank recorded no cost (a result from before llem recorded it); a sum over
    the others would understate it.
    """
    costs = [r.instrumentation for r in raws]
    if not costs or any(c is None for c in costs):
        return None
    known = [c for c in costs if c is not None]

    def total(values: list[float | None]) -> float | None:
        return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

    sampler_cpu = total([c.sampler_cpu_sec for c in known])
    process_cpu = total([c.process_cpu_sec for c in known])
    reads = sum(c.reads for c in known)
    timed = [c for c in known if c.reads]
    read_ms = total([c.mean_read_ms * c.reads if c.mean_read_ms is not None else None
                     for c in timed])
    intervals = sorted({c.sample_interval_ms for c in known if c.sample_interval_ms})
    reasons = [f"rank {r.process_index}: {c.unavailable_reason}"
               for r, c in zip(raws, known, strict=True) if c.unavailable_reason]
    return InstrumentationCost(
        sampler_served=[u for u in SAMPLER_USES if any(u in c.sampler_served for c in known)],
        sample_interval_ms=intervals[0] if len(intervals) == 1 else None,
        sampler_cpu_sec=sampler_cpu,
        reads=reads,
        mean_read_ms=read_ms / reads if read_ms is not None and reads else None,
        process_cpu_sec=process_cpu,
        cpu_fraction=sampler_cpu / process_cpu
        if sampler_cpu is not None and process_cpu else None,
        unavailable_reason="; ".join(reasons) or None,
    )



def _extended(
    raws: Sequence[RawProcessResult], stats: LatencyStatistics | None
) -> ExtendedEfficiencyMetrics:
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


