"""Table rows of experiment results: one row per experiment and cycle.

The figures come from the store's flattening (:func:`llem.store.rows.result_figures`), so a
result shows the same numbers in the report as in the store; a figure the result does not
hold stays ``None`` (shown as empty), and the reason it is missing goes to ``notes``. Rows of
a multi-cycle result also carry its 95 % intervals of the mean across cycles, each with its
n (the cycles it covers).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from llem.domain.experiment import AggregatedResult, CycleStatistics, MultiCycleResult
from llem.domain.metrics import ThermalThrottleInfo, throttle_reasons
from llem.errors import ResultLoadError
from llem.results.loader import read_result
from llem.store.rows import cycle_documents, result_figures


@dataclass(frozen=True)
class Interval:
    """A 95 % interval of the mean across cycles, and the n it rests on."""

    lower: float | None
    upper: float | None
    n: int

    def text(self) -> str:
        """``lower – upper (n = k)``, or a note that it could not be computed."""
        if self.lower is None or self.upper is None:
            return f"not computable (n = {self.n})"
        return f"{self.lower:.4g} – {self.upper:.4g} (n = {self.n})"


@dataclass
class ExperimentRow:
    """What the report shows of one measured cycle of one experiment."""

    experiment: str
    cycle: int | None
    model: str | None
    model_provenance: str | None
    batch_size: int | None
    precision: str | None
    num_processes: int | None
    energy_source: str | None
    energy_raw_j: float | None
    baseline_power_w: float | None
    energy_adjusted_j: float | None
    energy_per_output_token_j: float | None
    output_tokens: int | None
    output_tokens_per_second: float | None
    window_sec: float | None
    latency_e2e_p50_ms: float | None
    latency_e2e_p95_ms: float | None
    latency_e2e_p99_ms: float | None
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    itl_p50_ms: float | None
    itl_p95_ms: float | None
    throttled: str | None
    throttle_duration_sec: float | None
    max_temperature_c: float | None
    energy_interval_j: Interval | None = None
    energy_per_output_token_interval_j: Interval | None = None
    output_tokens_per_second_interval: Interval | None = None
    latency_interval_ms: Interval | None = None
    sampler_cpu_sec: float | None = None
    sampler_cpu_fraction: float | None = None
    sampler_reads: int | None = None
    energy_per_output_token_adjusted_j: float | None = None
    avg_power_w: float | None = None
    num_devices: int | None = None
    gpus: str | None = None
    host: str | None = None
    slurm_job_id: str | None = None
    notes: list[str] = field(default_factory=list)
    # Not shown in the table: where this row's time series files are, why there are none,
    # and why energy or latency figures are missing (the plots say so).
    timeseries_files: list[Path] = field(default_factory=list, repr=False)
    timeseries_reason: str | None = field(default=None, repr=False)
    energy_unavailable_reason: str | None = field(default=None, repr=False)
    latency_unavailable_reason: str | None = field(default=None, repr=False)

    def table_values(self) -> dict[str, Any]:
        """The row as table columns (the fields the table does not show left out, notes
        joined; intervals stay :class:`Interval` objects for the writer to render)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        values["notes"] = "; ".join(self.notes)
        return values


#: Interval columns of the table (each rendered with its n).
INTERVAL_COLUMNS = (
    "energy_interval_j", "energy_per_output_token_interval_j",
    "output_tokens_per_second_interval", "latency_interval_ms",
)


#: Column order of the table, with headers carrying units.
COLUMNS: list[tuple[str, str]] = [
    ("experiment", "experiment"),
    ("cycle", "cycle"),
    ("model", "model"),
    ("model_provenance", "model provenance"),
    ("batch_size", "batch size"),
    ("precision", "precision"),
    ("num_processes", "processes"),
    ("energy_source", "energy source"),
    ("energy_raw_j", "energy raw (J)"),
    ("baseline_power_w", "baseline (W)"),
    ("energy_adjusted_j", "energy adjusted (J)"),
    ("energy_per_output_token_j", "J / output token"),
    ("output_tokens", "output tokens"),
    ("output_tokens_per_second", "output tokens / s"),
    ("window_sec", "window (s)"),
    ("latency_e2e_p50_ms", "latency p50 (ms)"),
    ("latency_e2e_p95_ms", "latency p95 (ms)"),
    ("latency_e2e_p99_ms", "latency p99 (ms)"),
    ("ttft_p50_ms", "TTFT p50 (ms)"),
    ("ttft_p95_ms", "TTFT p95 (ms)"),
    ("itl_p50_ms", "ITL p50 (ms)"),
    ("itl_p95_ms", "ITL p95 (ms)"),
    ("throttled", "throttling"),
    ("throttle_duration_sec", "throttled (s)"),
    ("max_temperature_c", "max temp (C)"),
    ("energy_interval_j", "energy 95 % interval (J)"),
    ("energy_per_output_token_interval_j", "J / output token 95 % interval"),
    ("output_tokens_per_second_interval", "output tokens / s 95 % interval"),
    ("latency_interval_ms", "latency 95 % interval (ms)"),
    ("sampler_cpu_sec", "sampler CPU (s)"),
    ("sampler_cpu_fraction", "sampler CPU / process CPU"),
    ("sampler_reads", "sampler reads"),
    ("energy_per_output_token_adjusted_j", "adjusted J / output token"),
    ("avg_power_w", "mean power (W)"),
    ("num_devices", "GPUs"),
    ("gpus", "GPU name (UUID)"),
    ("host", "host"),
    ("slurm_job_id", "SLURM job"),
    ("notes", "warnings"),
]


def load_rows(paths: list[str | Path]) -> list[ExperimentRow]:
    """Rows of every result file, in the order given (cycles in cycle order)."""
    rows: list[ExperimentRow] = []
    for path in paths:
        path = Path(path)
        loaded = read_result(path)
        result = loaded.model
        if isinstance(result, MultiCycleResult):
            docs = cycle_documents(loaded.document, len(result.cycle_results))
            intervals = cycle_intervals(result.statistics)
            for cycle, doc in zip(result.cycle_results, docs, strict=True):
                rows.append(row_of(cycle, path, doc, intervals))
        elif isinstance(result, AggregatedResult):
            rows.append(row_of(result, path, loaded.document))
        else:
            raise ResultLoadError(
                f"{path}: holds one process's result; the report needs an experiment's "
                "aggregated result (result.json)"
            )
    return rows


def cycle_intervals(stats: CycleStatistics) -> dict[str, Interval]:
    """The table's interval columns from a multi-cycle result's statistics (n = cycles)."""
    n = stats.num_cycles
    return {
        "energy_interval_j": Interval(stats.energy_ci_95_lower, stats.energy_ci_95_upper, n),
        "energy_per_output_token_interval_j": Interval(
            stats.energy_per_output_token_ci_95_lower, stats.energy_per_output_token_ci_95_upper,
            n),
        "output_tokens_per_second_interval": Interval(
            stats.output_throughput_ci_95_lower, stats.output_throughput_ci_95_upper, n),
        "latency_interval_ms": Interval(stats.latency_ci_95_lower, stats.latency_ci_95_upper, n),
    }


def row_of(
    result: AggregatedResult,
    path: Path,
    document: dict[str, Any] | None = None,
    intervals: dict[str, Interval] | None = None,
) -> ExperimentRow:
    """One table row of an aggregated result read from ``path`` (``document``: its JSON)."""
    figures = result_figures(result, document)
    files = timeseries_files(result, path)
    breakdown = result.energy_breakdown
    latency = result.latency_stats
    throttle = result.thermal_throttle
    notes = list(figures["warnings"])
    if figures["energy_unavailable_reason"]:
        notes.insert(0, f"energy unavailable: {figures['energy_unavailable_reason']}")
    if breakdown is not None and breakdown.adjusted_j is None and breakdown.baseline_method:
        notes.append(f"baseline {breakdown.baseline_method}: energy not adjusted")
    return ExperimentRow(
        experiment=figures["experiment_name"] or result.experiment_id,
        cycle=result.cycle_id,
        model=figures["model_name"],
        model_provenance=figures["model_provenance"],
        batch_size=figures["batch_size"],
        precision=figures["precision"],
        num_processes=figures["num_processes"],
        energy_source=figures["energy_source"],
        energy_raw_j=figures["energy_raw_j"],
        baseline_power_w=figures["baseline_power_w"],
        energy_adjusted_j=figures["adjusted_energy_j"],
        energy_per_output_token_j=figures["energy_per_output_token_j"],
        output_tokens=figures["output_tokens"],
        output_tokens_per_second=figures["throughput_tokens_per_sec"],
        window_sec=figures["measured_window_sec"],
        latency_e2e_p50_ms=latency.e2e_median_ms if latency is not None else None,
        latency_e2e_p95_ms=latency.e2e_p95_ms if latency is not None else None,
        latency_e2e_p99_ms=latency.e2e_p99_ms if latency is not None else None,
        ttft_p50_ms=figures["ttft_p50_ms"],
        ttft_p95_ms=figures["ttft_p95_ms"],
        itl_p50_ms=figures["itl_p50_ms"],
        itl_p95_ms=figures["itl_p95_ms"],
        throttled=_throttle_text(throttle),
        throttle_duration_sec=throttle.throttle_duration_sec if throttle is not None else None,
        max_temperature_c=throttle.max_temperature_c if throttle is not None else None,
        **(intervals or {}),
        sampler_cpu_sec=figures["sampler_cpu_sec"],
        sampler_cpu_fraction=figures["sampler_cpu_fraction"],
        sampler_reads=figures["sampler_reads"],
        energy_per_output_token_adjusted_j=figures["adjusted_energy_per_output_token_j"],
        avg_power_w=figures["avg_power_w"],
        num_devices=figures["num_devices"],
        gpus=_gpus_text(figures["gpu_names"], figures["gpu_uuids"]),
        host=figures["host"],
        slurm_job_id=figures["slurm_job_id"],
        notes=notes,
        timeseries_files=files,
        timeseries_reason=None if files else no_timeseries_reason(result, path),
        energy_unavailable_reason=figures["energy_unavailable_reason"],
        latency_unavailable_reason=figures["latency_unavailable_reason"],
    )


def timeseries_files(result: AggregatedResult, path: Path) -> list[Path]:
    """Existing time-series files of a result; relative paths are taken from its folder."""
    names = list(result.timeseries_paths or [])
    if not names:
        names = [p.timeseries_path for p in result.process_results if p.timeseries_path]
    if not names and result.timeseries_path:
        names = [result.timeseries_path]
    files = []
    for name in dict.fromkeys(names):
        candidate = Path(name)
        if not candidate.is_absolute():
            candidate = path.parent / candidate
        if candidate.is_file():
            files.append(candidate)
    return files


def no_timeseries_reason(result: AggregatedResult, path: Path) -> str:
    """Why a result has no time-series plot, in words a reader acts on."""
    settings = (result.effective_config or {}).get("timeseries")
    named = list(result.timeseries_paths or []) or [
        p.timeseries_path for p in result.process_results if p.timeseries_path]
    if named:
        return (f"the time-series file(s) it names are missing beside {path.name} "
                f"({', '.join(dict.fromkeys(str(n) for n in named))})")
    if isinstance(settings, dict):
        if not settings.get("enabled"):
            return "time series disabled (timeseries.enabled: false)"
        if not settings.get("save"):
            return "time series sampled but not saved (timeseries.save: false)"
        return "time series enabled and saved, but the result names no time-series file"
    return "the result records no time series (not recorded by the tool that measured it)"


def _gpus_text(names: list[str] | None, uuids: list[str] | None) -> str | None:
    if not names and not uuids:
        return None
    if names and uuids and len(names) == len(uuids):
        return ", ".join(f"{n} ({u})" for n, u in zip(names, uuids, strict=True))
    return ", ".join([*(names or []), *(uuids or [])])


def _throttle_text(throttle: ThermalThrottleInfo | None) -> str | None:
    kinds = throttle_reasons(throttle)
    if kinds is None:
        return None
    return ", ".join(kinds) if kinds else "none"
