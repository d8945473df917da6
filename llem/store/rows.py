"""Turn a loaded result (already upgraded to the v3 models) into rows of the store's tables.

Identity rules, chosen so the same result reached through different files gets the same ids:

* an aggregated result is ``result_id = experiment_id`` (``<experiment_id>/cycle-<n>`` when
  the result names its cycle); llem's own (v3) results add their config hash
  (``<experiment_id>@<config_hash>/cycle-<n>``), so a changed config measured under the same
  run id is a new result, while measuring the same config again needs a new run id;
* cycle ``n`` of a multi-cycle file is ``<experiment_id>/cycle-<n>`` (same hash rule);
* a process result is ``<result_id>/process-<process_index>``; a lone per-process file points
  at the result id its aggregate would have, so the link holds whichever file came first.

Numbers follow llem's rule "correct numbers or no numbers": files of the earlier tool wrote
0.0 for energy and power they did not measure; the loader has already turned those zeros into
null with a reason.
Derived figures (output tokens summed over processes, throughput over the wall window, J per
output token) are computed only when every input is known.

:func:`result_figures` is the one flattening of an experiment result: the store's ``results``
rows and the report's table (``llem.report.rows``) both take their figures from it, so the two
can never disagree. Times are UTC (``TIMESTAMPTZ``); naive times, which the earlier tool
wrote, are read as UTC and the row says so (``times_assumed_utc``). Precision names are
reduced to one vocabulary (:func:`normalize_precision`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from llem.domain.experiment import AggregatedResult, MultiCycleResult, RawProcessResult
from llem.domain.instrumentation import InstrumentationCost
from llem.domain.metrics import LatencyStatistics, model_provenance
from llem.errors import LlemError
from llem.results.loader import LoadedResult, is_import
from llem.stats import ratio_or_none


class RowError(LlemError):
    """A loaded result cannot be stored (e.g. two process results with the same rank)."""


@dataclass(frozen=True)
class Provenance:
    """Where and when rows came from; copied onto every row."""

    content_sha256: str
    source_path: str
    ingest_batch_id: str
    ingested_at: datetime


@dataclass(frozen=True)
class TimeSeriesRef:
    """A time-series Parquet file named by a result, resolved against the result's folder."""

    path: Path
    result_id: str


@dataclass
class RowSet:
    """Rows derived from one file."""

    document: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)
    process_results: list[dict[str, Any]] = field(default_factory=list)
    cycle_statistics: list[dict[str, Any]] = field(default_factory=list)
    timeseries_refs: list[TimeSeriesRef] = field(default_factory=list)


def build_rows(
    loaded: LoadedResult, prov: Provenance, document_text: str | None = None
) -> RowSet:
    """Every row one loaded file contributes to the store.

    ``document_text`` is the file's text, stored verbatim; without it the parsed document is
    serialized again.
    """
    base = {
        "content_sha256": prov.content_sha256,
        "source_path": prov.source_path,
        "ingest_batch_id": prov.ingest_batch_id,
        "ingested_at": prov.ingested_at,
        "source_format": loaded.format,
        "source_schema_version": loaded.schema_version,
    }
    rows = RowSet(
        document={
            **base,
            "experiment_id": str(loaded.document.get("experiment_id", "")),
            "document": document_text
            if document_text is not None
            else json.dumps(loaded.document, ensure_ascii=False),
        }
    )
    imported = is_import(loaded.format)
    folder = Path(prov.source_path).parent
    model = loaded.model
    if isinstance(model, RawProcessResult):
        result_id = _result_id(model.experiment_id, model.cycle_id, _hash(model, imported))
        rows.process_results.append(_process_row(model, result_id, False, imported, base))
        if not imported:
            rows.timeseries_refs.extend(_refs(folder, result_id, [model.timeseries_path]))
    elif isinstance(model, AggregatedResult):
        result_id = _result_id(model.experiment_id, model.cycle_id, _hash(model, imported))
        _add_result(rows, model, result_id, model.experiment_id, model.cycle_id, imported, base,
                    loaded.document)
        if not imported:
            rows.timeseries_refs.extend(_result_refs(folder, result_id, model))
    elif isinstance(model, MultiCycleResult):
        cycle_ids = _cycle_ids(model)
        cycle_docs = cycle_documents(loaded.document, len(model.cycle_results))
        for cycle, cycle_id, cycle_doc in zip(model.cycle_results, cycle_ids, cycle_docs,
                                              strict=True):
            cycle_hash = _hash(cycle, imported) or _hash(model, imported)
            result_id = _result_id(model.experiment_id, cycle_id, cycle_hash)
            _add_result(rows, cycle, result_id, model.experiment_id, cycle_id, imported, base,
                        cycle_doc)
            if not imported:
                rows.timeseries_refs.extend(_result_refs(folder, result_id, cycle))
        rows.cycle_statistics.append(_cycle_statistics_row(model, rows.results, base))
        intervals = headline_intervals(rows.cycle_statistics[-1])
        for row in rows.results:
            row.update(intervals)
    else:  # pragma: no cover - the loader returns only the three models
        raise RowError(f"{prov.source_path}: unsupported result model {type(model).__name__}")
    _check_unique(rows.results, "result_id", prov.source_path)
    _check_unique(rows.process_results, "process_result_id", prov.source_path)
    return rows


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------


def _add_result(
    rows: RowSet,
    agg: AggregatedResult,
    result_id: str,
    experiment_id: str,
    cycle_id: int | None,
    imported: bool,
    base: dict[str, Any],
    document: dict[str, Any] | None,
) -> None:
    processes = []
    for process in agg.process_results:
        row = _process_row(process, result_id, True, imported, base)
        row["cycle_id"] = cycle_id
        processes.append(row)
    rows.process_results.extend(processes)
    rows.results.append(
        _result_row(agg, result_id, experiment_id, cycle_id, base, document, processes)
    )


def cycle_documents(document: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """The original document of each cycle of a multi-cycle file (empty where absent)."""
    cycles = document.get("cycle_results")
    if not isinstance(cycles, list) or len(cycles) != count:
        return [{} for _ in range(count)]
    return [c if isinstance(c, dict) else {} for c in cycles]


def result_figures(agg: AggregatedResult, document: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The figures of one experiment result, flattened: what the store and the report show.

    ``document`` is the result's original JSON (of the file, or of one cycle of a
    multi-cycle file): a few facts of the earlier tool's files live only there.
    """
    procs = agg.process_results
    document = document or {}
    config = agg.effective_config or {}
    input_tokens, output_tokens = _token_counts(agg)
    times = _times_and_throughput(agg, output_tokens)
    throttle = agg.thermal_throttle
    latency = agg.latency_stats
    warnings = [
        *(agg.measurement_warnings or []),
        *agg.config_warnings,
        *agg.aggregation.warnings,
    ]
    source = agg.model_source or next((p.model_source for p in procs if p.model_source), None)
    gpu_names, gpu_uuids, num_devices = devices_of(agg)
    env = agg.environment or next((p.environment for p in procs if p.environment), None)
    return {
        "experiment_name": _str(config.get("config_name")) or _first(p.config_name for p in procs),
        "model_name": model_name(agg),
        "model_provenance": model_provenance(source),
        "backend": agg.backend,
        "backend_version": agg.backend_version,
        "precision": precision_of(agg, document),
        "batch_size": batch_size_of(agg),
        "config_hash": agg.config_hash or _str(document.get("measurement_config_hash")),
        "llem_version": agg.llem_version,
        "num_processes": agg.aggregation.num_processes,
        "gpu_name": _gpu_name(agg),
        "num_devices": num_devices,
        "gpu_names": gpu_names,
        "gpu_uuids": gpu_uuids,
        "host": env.host if env is not None else None,
        "slurm_job_id": env.slurm_job_id if env is not None else None,
        "total_tokens": agg.total_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        **_energy_figures(agg, document, output_tokens, times["measured_window_sec"]),
        **times,
        "avg_tokens_per_second": agg.avg_tokens_per_second,
        "total_inference_time_sec": agg.total_inference_time_sec,
        "total_flops": agg.total_flops,
        "thermal_throttle_detected": throttle.detected if throttle else None,
        "max_temperature_c": throttle.max_temperature_c if throttle else None,
        "ttft_mean_ms": latency.ttft_mean_ms if latency else None,
        "itl_mean_ms": latency.itl_mean_ms if latency else None,
        **latency_percentiles(latency),
        "thermal_throttle_duration_sec": throttle.throttle_duration_sec if throttle else None,
        **instrumentation_columns(agg.instrumentation),
        "timeseries_path": agg.timeseries_path,
        "warnings": warnings,
    }


def _token_counts(agg: AggregatedResult) -> tuple[int | None, int | None]:
    """Input and output tokens: as the result states them, else summed over a complete set
    of process results (the earlier tool's files often state only the total)."""
    procs = agg.process_results
    complete = bool(procs) and len(procs) == agg.aggregation.num_processes
    output_tokens = agg.output_tokens
    if output_tokens is None and complete:
        output_tokens = sum(p.inference_metrics.output_tokens for p in procs)
    input_tokens = agg.input_tokens
    if input_tokens is None and complete:
        input_tokens = sum(p.inference_metrics.input_tokens for p in procs)
    return input_tokens, output_tokens


def _times_and_throughput(agg: AggregatedResult, output_tokens: int | None) -> dict[str, Any]:
    """Start, end and window of the measurement in UTC, and the output throughput: as
    reported, else derived from the window (or, lacking one, from end - start)."""
    start, assumed = to_utc(agg.start_time)
    end, _ = to_utc(agg.end_time)
    window_sec = agg.measured_window.duration_sec if agg.measured_window else None
    throughput, throughput_source = agg.output_tokens_per_second, "reported"
    if throughput is None:
        wall_sec = window_sec if window_sec is not None else (end - start).total_seconds()
        if output_tokens is not None and wall_sec > 0:
            throughput, throughput_source = output_tokens / wall_sec, "derived_wall_window"
        else:
            throughput_source = None
    return {
        "throughput_tokens_per_sec": throughput,
        "throughput_source": throughput_source,
        "measured_window_sec": window_sec,
        "start_time": start,
        "end_time": end,
        "times_assumed_utc": assumed,
    }


def _energy_figures(agg: AggregatedResult, document: dict[str, Any],
                    output_tokens: int | None, window_sec: float | None) -> dict[str, Any]:
    """Energy, its source and baseline, and the figures per token and per second; every
    derived figure is null when the energy is."""
    breakdown = agg.energy_breakdown
    energy = agg.total_energy_j
    per_output = agg.energy_per_output_token_j
    if per_output is None and energy is not None and output_tokens:
        per_output = energy / output_tokens
    if energy is None:
        per_output = None
    adjusted = breakdown.adjusted_j if breakdown else document.get("energy_adjusted_j")
    adjusted = adjusted if energy is not None else None
    return {
        "total_energy_j": energy,
        "energy_raw_j": breakdown.raw_j if breakdown is not None else energy,
        "adjusted_energy_j": adjusted,
        "baseline_power_w": (breakdown.baseline_power_w if breakdown
                             else document.get("baseline_power_w")),
        "baseline_method": breakdown.baseline_method if breakdown else None,
        "energy_source": agg.energy_source,
        "energy_unavailable_reason": agg.energy_unavailable_reason if energy is None else None,
        "energy_tracking_failed": agg.energy_tracking_failed,
        "energy_per_output_token_j": per_output,
        "energy_per_token_j": ratio_or_none(energy, agg.total_tokens),
        "adjusted_energy_per_output_token_j": ratio_or_none(adjusted, output_tokens),
        "avg_power_w": ratio_or_none(energy, window_sec),
    }


def _result_row(
    agg: AggregatedResult,
    result_id: str,
    experiment_id: str,
    cycle_id: int | None,
    base: dict[str, Any],
    document: dict[str, Any] | None,
    processes: list[dict[str, Any]],
) -> dict[str, Any]:
    figures = result_figures(agg, document)
    config = agg.effective_config or {}
    warnings = figures.pop("warnings")
    nested, fingerprint_text = _nested_json(agg, _RESULT_JSON_FIELDS, {"process_results"})
    fingerprint = _sha256(fingerprint_text + "".join(p["fingerprint"] for p in processes))
    return {
        **base,
        **figures,
        "result_id": result_id,
        "experiment_id": experiment_id,
        "cycle_id": cycle_id,
        "campaign": agg.campaign,
        "run_id": agg.run_id,
        **nested,
        "gpu_names": _json_value(figures["gpu_names"]),
        "gpu_uuids": _json_value(figures["gpu_uuids"]),
        **SINGLE_CYCLE,
        "effective_config": json.dumps(config, ensure_ascii=False) if config else None,
        "warnings": json.dumps(warnings, ensure_ascii=False) if warnings else None,
        "fingerprint": fingerprint,
        "measurement_fingerprint": measurement_fingerprint(experiment_id, cycle_id, figures),
        "timeseries_missing": None,
    }


#: The cycle and interval columns of a result that is its experiment's only cycle.
SINGLE_CYCLE: dict[str, Any] = {
    "num_cycles": 1,
    "energy_per_output_token_ci_95_lower": None,
    "energy_per_output_token_ci_95_upper": None,
    "throughput_ci_95_lower": None,
    "throughput_ci_95_upper": None,
    "ci_n": None,
    "interval_unavailable_reason": "one cycle: no interval across cycles",
}


def headline_intervals(stats: dict[str, Any]) -> dict[str, Any]:
    """The cycle and interval columns of each cycle of a multi-cycle file, from its
    ``cycle_statistics`` row (whose energy figures are null unless every cycle was
    measured)."""
    out = {
        "num_cycles": stats["num_cycles"],
        "energy_per_output_token_ci_95_lower": stats["energy_per_output_token_ci_95_lower"],
        "energy_per_output_token_ci_95_upper": stats["energy_per_output_token_ci_95_upper"],
        "throughput_ci_95_lower": stats["output_throughput_ci_95_lower"],
        "throughput_ci_95_upper": stats["output_throughput_ci_95_upper"],
        "ci_n": stats["num_cycles"],
    }
    missing = []
    if out["energy_per_output_token_ci_95_lower"] is None:
        missing.append("J per output token: energy not measured in every cycle, or no "
                       "interval recorded")
    if out["throughput_ci_95_lower"] is None:
        missing.append("throughput: no interval recorded or computable")
    out["interval_unavailable_reason"] = "; ".join(missing) or None
    return out


#: Figures that identify a measurement whatever format the earlier tool wrote it in.
_MEASUREMENT_KEYS = (
    "config_hash", "start_time", "end_time", "total_tokens", "total_energy_j",
    "adjusted_energy_j", "total_inference_time_sec", "total_flops",
)


def measurement_fingerprint(
    experiment_id: str, cycle_id: int | None, figures: dict[str, Any]
) -> str:
    """SHA-256 of what was measured (not of how the file spelled it): the same measurement
    written in two formats has the same one, two different measurements do not."""
    parts = [experiment_id, cycle_id, *(figures[k] for k in _MEASUREMENT_KEYS)]
    text = json.dumps([p.isoformat() if isinstance(p, datetime) else p for p in parts])
    return _sha256(text)


def model_name(agg: AggregatedResult) -> str | None:
    """The model of a result: its own field, its process results', or its effective config."""
    if agg.model_name:
        return agg.model_name
    name = _first(p.model_name for p in agg.process_results)
    if name:
        return name
    config = agg.effective_config or {}
    for key in ("model_name", "model"):
        value = config.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict) and isinstance(value.get("name"), str):
            return value["name"]
    return None


def latency_percentiles(latency: LatencyStatistics | None) -> dict[str, Any]:
    """TTFT and ITL p50/p95, and why they are null when they are."""
    out: dict[str, Any] = dict.fromkeys(
        ("ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms"))
    if latency is None:
        out["latency_unavailable_reason"] = "the result records no latency statistics"
        return out
    missing = []
    if latency.ttft_samples:
        out.update(ttft_p50_ms=latency.ttft_median_ms, ttft_p95_ms=latency.ttft_p95_ms)
    else:
        missing.append("no time-to-first-token samples")
    if latency.itl_samples and latency.itl_median_ms is not None:
        out.update(itl_p50_ms=latency.itl_median_ms, itl_p95_ms=latency.itl_p95_ms)
    else:
        missing.append("no inter-token latency samples (one output token per request, or "
                       "not recorded)")
    out["latency_unavailable_reason"] = "; ".join(missing) or None
    return out


def devices_of(agg: AggregatedResult) -> tuple[list[str] | None, list[str] | None, int | None]:
    """(GPU names, GPU UUIDs, number of GPUs) a result ran on.

    GPUs are those its per-device energy, its environment or its process results'
    environments name as in use, told apart by UUID (else by name and index); a result whose
    processes all ran on the CPU (gpu_id -1) ran on 0 GPUs; nothing recorded is None.
    """
    found: dict[str, tuple[str | None, str | None]] = {}
    for device in agg.device_energy or []:
        if device.kind == "gpu":
            found.setdefault(device.device_id, (device.name, device.device_id))
    envs = [agg.environment, *(p.environment for p in agg.process_results)]
    for env in envs:
        if env is not None and env.gpu is not None:
            gpu = env.gpu
            key = gpu.uuid or f"{gpu.name}#{gpu.index}"
            found.setdefault(key, (gpu.name, gpu.uuid))
    if not found:
        indices = {(p.gpu_id, p.gpu_name) for p in agg.process_results if p.gpu_id >= 0}
        for gpu_id, name in sorted(indices, key=lambda item: item[0]):
            found.setdefault(f"{name}#{gpu_id}", (name, None))
    if not found:
        on_cpu = bool(agg.process_results) and all(p.gpu_id < 0 for p in agg.process_results)
        return None, None, 0 if on_cpu else None
    names = [name for name, _ in found.values() if name]
    uuids = [uuid for _, uuid in found.values() if uuid]
    return names or None, uuids or None, len(found)


def _gpu_name(agg: AggregatedResult) -> str | None:
    env = agg.environment
    if env is not None and env.gpu is not None and env.gpu.name:
        return env.gpu.name
    return _first(p.gpu_name for p in agg.process_results)


#: Precision names as the store and the report show them, with the spellings that mean each.
PRECISION_NAMES: dict[str, tuple[str, ...]] = {
    "fp32": ("fp32", "float32", "float", "f32", "torch.float32", "32", "full"),
    "fp16": ("fp16", "float16", "half", "f16", "torch.float16", "16"),
    "bf16": ("bf16", "bfloat16", "torch.bfloat16"),
    "fp8": ("fp8", "float8", "float8_e4m3fn", "e4m3"),
    "int8": ("int8", "8bit", "8-bit", "load_in_8bit", "w8a8"),
    "int4": ("int4", "4bit", "4-bit", "load_in_4bit", "w4a16"),
}
_PRECISION_OF = {alias: name for name, aliases in PRECISION_NAMES.items() for alias in aliases}
_PRECISION_KEYS = ("precision", "dtype", "torch_dtype", "fp_precision", "compute_precision")


def normalize_precision(value: Any) -> str | None:
    """One precision vocabulary (fp32, fp16, bf16, fp8, int8, int4); other names kept as
    written (lower case), nothing invented."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().lower()
    return _PRECISION_OF.get(text, text)


def precision_of(agg: AggregatedResult, document: dict[str, Any]) -> str | None:
    """The precision a result records: its config, else its process results' configs, else
    the compute precision its process results state (only where the file states it; the v2
    default 'fp16' of a file that says nothing is not a record)."""
    configs = [agg.effective_config or {}, *(p.effective_config for p in agg.process_results)]
    for config in configs:
        for key in _PRECISION_KEYS:
            if (name := normalize_precision(config.get(key))) is not None:
                return name
    stated = {
        normalize_precision((p.get("compute_metrics") or {}).get("compute_precision"))
        for p in document.get("process_results") or [] if isinstance(p, dict)
    } - {None}
    return stated.pop() if len(stated) == 1 else None


def batch_size_of(agg: AggregatedResult) -> int | None:
    """The configured batch size a result records: its own config (later line: also the
    backend section, e.g. ``pytorch.batch_size``), else its process results' configs, else
    their parameter provenance (v2); from processes only when they agree."""
    own = _batch_size(agg.effective_config or {}, agg.backend)
    if own is not None:
        return own
    procs = agg.process_results
    for found in (
        {_batch_size(p.effective_config, p.backend) for p in procs},
        {_provenance_batch_size(p.parameter_provenance) for p in
         [agg, *procs]},
    ):
        found.discard(None)
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def _provenance_batch_size(provenance: dict[str, Any]) -> int | None:
    entry = provenance.get("batching.batch_size") or provenance.get("batch_size")
    return _int(entry.get("value")) if isinstance(entry, dict) else None


def _batch_size(config: dict[str, Any], backend: str | None) -> int | None:
    for section in ("batching", backend or "pytorch"):
        part = config.get(section)
        if isinstance(part, dict) and _int(part.get("batch_size")) is not None:
            return _int(part.get("batch_size"))
    return _int(config.get("batch_size"))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------------------
# process results
# --------------------------------------------------------------------------------------


def _process_row(
    p: RawProcessResult, result_id: str, embedded: bool, imported: bool, base: dict[str, Any]
) -> dict[str, Any]:
    em = p.energy_metrics
    im = p.inference_metrics
    energy = em.total_energy_j
    reason = p.energy_unavailable_reason or em.unavailable_reason
    start, assumed = to_utc(p.timestamps.start)
    end, _ = to_utc(p.timestamps.end)
    breakdown = p.energy_breakdown
    nested, fingerprint_text = _nested_json(p, _PROCESS_JSON_FIELDS)
    return {
        **base,
        "process_result_id": f"{result_id}/process-{p.process_index}",
        "result_id": result_id,
        "experiment_id": p.experiment_id,
        "cycle_id": p.cycle_id,
        "process_index": p.process_index,
        "embedded": embedded,
        "config_name": p.config_name or None,
        "model_name": p.model_name or None,
        "backend": p.backend,
        "gpu_id": p.gpu_id,
        "gpu_name": p.gpu_name or None,
        "gpu_is_mig": p.gpu_is_mig,
        "total_tokens": im.total_tokens,
        "input_tokens": im.input_tokens,
        "output_tokens": im.output_tokens,
        "inference_time_sec": im.inference_time_sec,
        "tokens_per_second": im.tokens_per_second,
        "output_tokens_per_second": p.output_tokens_per_second or im.output_tokens_per_second,
        "total_energy_j": energy,
        "gpu_energy_j": em.gpu_energy_j,
        "cpu_energy_j": em.cpu_energy_j,
        "ram_energy_j": em.ram_energy_j,
        "gpu_power_w": em.gpu_power_w,
        "cpu_power_w": em.cpu_power_w,
        "adjusted_energy_j": breakdown.adjusted_j if breakdown and energy is not None else None,
        "baseline_power_w": breakdown.baseline_power_w if breakdown else None,
        "energy_source": p.energy_source or em.energy_source,
        "energy_unavailable_reason": reason if energy is None else None,
        "energy_tracking_failed": p.energy_tracking_failed,
        "flops_total": p.compute_metrics.flops_total,
        "peak_memory_mb": _measured(p.compute_metrics.peak_memory_mb, imported),
        "start_time": start,
        "end_time": end,
        "duration_sec": p.timestamps.duration_sec,
        "times_assumed_utc": assumed,
        **instrumentation_columns(p.instrumentation),
        "timeseries_path": p.timeseries_path,
        **nested,
        "fingerprint": _sha256(fingerprint_text),
    }


# --------------------------------------------------------------------------------------
# multi-cycle
# --------------------------------------------------------------------------------------


def instrumentation_columns(cost: InstrumentationCost | None) -> dict[str, Any]:
    """The ``sampler_*`` columns of a result's instrumentation cost (null when not recorded).

    The ``instrumentation`` JSON column comes with the other nested parts.
    """
    return {
        "sampler_cpu_sec": cost.sampler_cpu_sec if cost else None,
        "sampler_cpu_fraction": cost.cpu_fraction if cost else None,
        "sampler_reads": cost.reads if cost else None,
        "sampler_mean_read_ms": cost.mean_read_ms if cost else None,
    }


def _cycle_ids(multi: MultiCycleResult) -> list[int]:
    """Each cycle's index: its own cycle_id, else the metadata's, else its position."""
    meta = multi.cycle_metadata
    ids = []
    for i, cycle in enumerate(multi.cycle_results):
        if cycle.cycle_id is not None:
            ids.append(cycle.cycle_id)
        elif len(meta) == len(multi.cycle_results):
            ids.append(meta[i].cycle_id)
        else:
            ids.append(i)
    return ids


def _cycle_statistics_row(
    multi: MultiCycleResult, cycle_rows: list[dict[str, Any]], base: dict[str, Any]
) -> dict[str, Any]:
    s = multi.statistics
    stats = s.model_dump()
    # Energy statistics over cycles are only meaningful if every cycle's energy was measured.
    if any(row["total_energy_j"] is None for row in cycle_rows):
        for key in ("energy_mean_j", "energy_std_j", "energy_ci_95_lower",
                    "energy_ci_95_upper", "energy_cv", "efficiency_mean_tpj",
                    "efficiency_std_tpj", "energy_per_output_token_mean_j",
                    "energy_per_output_token_std_j", "energy_per_output_token_ci_95_lower",
                    "energy_per_output_token_ci_95_upper", "energy_per_output_token_cv"):
            stats[key] = None
    start, _ = to_utc(multi.start_time)
    end, _ = to_utc(multi.end_time)
    names = {row["model_name"] for row in cycle_rows if row["model_name"]}
    hashes = {row["config_hash"] for row in cycle_rows if row["config_hash"]}
    return {
        **base,
        **stats,
        "experiment_id": multi.experiment_id,
        "model_name": names.pop() if len(names) == 1 else None,
        "config_hash": multi.config_hash or (hashes.pop() if len(hashes) == 1 else None),
        "start_time": start,
        "end_time": end,
        "total_duration_sec": multi.total_duration_sec,
        "cycle_metadata": json.dumps([m.model_dump(mode="json") for m in multi.cycle_metadata]),
        "fingerprint": _sha256(s.model_dump_json()
                               + "".join(row["fingerprint"] for row in cycle_rows)),
    }


# --------------------------------------------------------------------------------------
# time series references
# --------------------------------------------------------------------------------------


def _result_refs(folder: Path, result_id: str, agg: AggregatedResult) -> list[TimeSeriesRef]:
    """The files an aggregated result names, relative to its own file.

    Embedded process results keep the path relative to their raw file's folder, which the
    aggregated file does not record; the aggregate lists the same files in
    ``timeseries_paths``, so those are what count.
    """
    names: list[str | None] = [*(agg.timeseries_paths or []), agg.timeseries_path]
    return _refs(folder, result_id, names)


def _refs(folder: Path, result_id: str, names: list[str | None]) -> list[TimeSeriesRef]:
    seen: set[Path] = set()
    refs = []
    for name in names:
        if not name:
            continue
        path = Path(os.path.normpath(folder / name))
        if path not in seen:
            seen.add(path)
            refs.append(TimeSeriesRef(path, result_id))
    return refs


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _result_id(experiment_id: str, cycle_id: int | None, config_hash: str | None) -> str:
    base = experiment_id if config_hash is None else f"{experiment_id}@{config_hash}"
    return base if cycle_id is None else f"{base}/cycle-{cycle_id}"


def _hash(model: Any, imported: bool) -> str | None:
    """The config hash that llem's own results carry in their id (imports keep theirs as is)."""
    return None if imported else getattr(model, "config_hash", None)


def to_utc(value: datetime) -> tuple[datetime, bool]:
    """(the time in UTC, whether UTC was assumed).

    A naive time (the earlier tool wrote local time without an offset) is read as UTC: its
    own files show it ran with UTC as local time (a later-line baseline stamped ``Z`` plus its
    cache age is the result's naive end time). The flag lets a query pick such rows out.
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), True
    return value.astimezone(UTC), False


def _measured(value: float | None, imported: bool) -> float | None:
    """A figure of the earlier tool, where 0.0 meant 'not measured'.

    For the fields the v3 models allow to be null the loader has done this already; this is
    for the one the model keeps non-nullable (peak memory).
    """
    if imported and value == 0.0:
        return None
    return value


#: Nested parts of a result kept as JSON columns of the same name.
_RESULT_JSON_FIELDS = (
    "environment", "latency_stats", "thermal_throttle", "energy_breakdown", "device_energy",
    "measured_window", "phase_energy", "model_source", "extended_metrics", "instrumentation",
)
#: Nested parts of a process result kept as JSON columns of the same name.
_PROCESS_JSON_FIELDS = (
    "environment", "energy_breakdown", "thermal_throttle", "warmup_result", "latency_stats",
    "device_energy", "inference_metrics", "compute_metrics", "energy_metrics",
    "instrumentation",
)


def _nested_json(
    model: BaseModel, fields: tuple[str, ...], skip: frozenset[str] | set[str] = frozenset()
) -> tuple[dict[str, str | None], str]:
    """The JSON text of each nested field, and a text covering the whole model (less
    ``skip``) for its fingerprint, serializing every part only once."""
    texts: dict[str, str | None] = {}
    for name in fields:
        value = getattr(model, name)
        texts[name] = _json_list(value) if isinstance(value, list) else _json(value)
    rest = model.model_dump_json(exclude=set(fields) | set(skip))
    return texts, rest + "".join(f"\x1f{name}={texts[name]}" for name in fields)


def _json_value(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _json(model: BaseModel | None) -> str | None:
    return None if model is None else model.model_dump_json()


def _json_list(models: list[Any] | None) -> str | None:
    if models is None:
        return None
    return "[" + ",".join(m.model_dump_json() for m in models) + "]"


def _first(values: Any) -> str | None:
    for value in values:
        if value:
            return value
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_unique(rows: list[dict[str, Any]], key: str, source: str) -> None:
    seen: set[str] = set()
    for row in rows:
        if row[key] in seen:
            raise RowError(f"{source}: two rows with {key} {row[key]!r} in one file")
        seen.add(row[key])
