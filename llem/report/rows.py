"""Flatten experiment results into table rows: one row per experiment and cycle.

Values are copied from the results, never recomputed or filled in: a figure the result does
not hold stays ``None`` (shown as empty), and the reason it is missing goes to ``notes``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llem.domain.experiment import AggregatedResult, MultiCycleResult
from llem.errors import ResultLoadError
from llem.loader import load_result


@dataclass
class ExperimentRow:
    """What the report shows of one measured cycle of one experiment."""

    experiment: str
    cycle: int | None
    model: str | None
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
    throttled: str | None
    throttle_duration_sec: float | None
    max_temperature_c: float | None
    sampler_cpu_sec: float | None = None
    sampler_cpu_fraction: float | None = None
    sampler_reads: int | None = None
    notes: list[str] = field(default_factory=list)
    # Not shown in the table: where this row's time series files are.
    timeseries_files: list[Path] = field(default_factory=list, repr=False)

    def table_values(self) -> dict[str, Any]:
        """The row as table columns (time series files left out, notes joined)."""
        values = asdict(self)
        values.pop("timeseries_files")
        values["notes"] = "; ".join(self.notes)
        return values


#: Column order of the table, with headers carrying units.
COLUMNS: list[tuple[str, str]] = [
    ("experiment", "experiment"),
    ("cycle", "cycle"),
    ("model", "model"),
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
    ("throttled", "throttling"),
    ("throttle_duration_sec", "throttled (s)"),
    ("max_temperature_c", "max temp (C)"),
    ("sampler_cpu_sec", "sampler CPU (s)"),
    ("sampler_cpu_fraction", "sampler CPU / process CPU"),
    ("sampler_reads", "sampler reads"),
    ("notes", "warnings"),
]


def load_rows(paths: list[str | Path]) -> list[ExperimentRow]:
    """Rows of every result file, in the order given (cycles in cycle order)."""
    rows: list[ExperimentRow] = []
    for path in paths:
        path = Path(path)
        result = load_result(path)
        if isinstance(result, MultiCycleResult):
            for cycle in result.cycle_results:
                rows.append(row_of(cycle, path))
        elif isinstance(result, AggregatedResult):
            rows.append(row_of(result, path))
        else:
            raise ResultLoadError(
                f"{path}: holds one process's result; the report needs an experiment's "
                "aggregated result (result.json)"
            )
    return rows


def row_of(result: AggregatedResult, path: Path) -> ExperimentRow:
    """One table row of an aggregated result read from ``path``."""
    cfg = result.effective_config or {}
    breakdown = result.energy_breakdown
    latency = result.latency_stats
    throttle = result.thermal_throttle
    window = result.measured_window
    cost = result.instrumentation
    notes = [*(result.measurement_warnings or []), *result.aggregation.warnings]
    if result.energy_unavailable_reason:
        notes.insert(0, f"energy unavailable: {result.energy_unavailable_reason}")
    if breakdown is not None and breakdown.adjusted_j is None and breakdown.baseline_method:
        notes.append(f"baseline {breakdown.baseline_method}: energy not adjusted")
    raw_j = breakdown.raw_j if breakdown is not None else result.total_energy_j
    return ExperimentRow(
        experiment=str(cfg.get("config_name") or result.experiment_id),
        cycle=result.cycle_id,
        model=result.model_name or cfg.get("model_name"),
        batch_size=_nested(cfg, "batching", "batch_size"),
        precision=cfg.get("precision"),
        num_processes=result.aggregation.num_processes,
        energy_source=result.energy_source,
        energy_raw_j=raw_j,
        baseline_power_w=breakdown.baseline_power_w if breakdown is not None else None,
        energy_adjusted_j=breakdown.adjusted_j if breakdown is not None else None,
        energy_per_output_token_j=result.energy_per_output_token_j,
        output_tokens=result.output_tokens,
        output_tokens_per_second=result.output_tokens_per_second,
        window_sec=window.duration_sec if window is not None else None,
        latency_e2e_p50_ms=latency.e2e_median_ms if latency is not None else None,
        latency_e2e_p95_ms=latency.e2e_p95_ms if latency is not None else None,
        latency_e2e_p99_ms=latency.e2e_p99_ms if latency is not None else None,
        ttft_p50_ms=(latency.ttft_median_ms if latency and latency.ttft_samples else None),
        throttled=_throttle_text(throttle),
        throttle_duration_sec=throttle.throttle_duration_sec if throttle is not None else None,
        max_temperature_c=throttle.max_temperature_c if throttle is not None else None,
        sampler_cpu_sec=cost.sampler_cpu_sec if cost is not None else None,
        sampler_cpu_fraction=cost.cpu_fraction if cost is not None else None,
        sampler_reads=cost.reads if cost is not None else None,
        notes=notes,
        timeseries_files=timeseries_files(result, path),
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


def _throttle_text(throttle: Any) -> str | None:
    if throttle is None:
        return None
    if throttle.sample_count == 0:
        return None
    kinds = [k for k in ("thermal", "power") if getattr(throttle, k)]
    return ", ".join(kinds) if kinds else "none"


def _nested(mapping: dict[str, Any], *keys: str) -> Any:
    node: Any = mapping
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
