"""The earlier tool's result files upgraded to llem's v3 models, with its known defects repaired.

Its v2 files, its "3.0.0" files (those without llem's mark) and its later line's files get the
same repairs, so these defects never reach the store: energy it recorded as 0 J (its way of
saying "not measured") becomes null with the reason; ``thermal`` is set when either thermal
bit is; throttle timestamps that are not seconds within the window (it wrote raw
``perf_counter`` values, with no window start in that clock) are dropped with a warning; an
empty ``energy_source`` becomes ``unrecorded``. v3-only fields stay null. The documents come
here validated against the schema of their own format (:mod:`llem.results.loader`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llem.constants import SCHEMA_VERSION
from llem.domain.experiment import AggregatedResult, MultiCycleResult, RawProcessResult, ResultModel

#: Marks energy of v2 imports: the earlier tool did not record its source per figure.
UNRECORDED_SOURCE = "unrecorded"

#: Why an imported zero becomes null: the earlier tool wrote 0.0 for what it did not measure.
ZERO_ENERGY_REASON = "the earlier tool recorded 0 J, which it wrote when energy was not measured"
_FAILED_REASON = "energy tracking failed in the earlier tool"

#: Why throttle timestamps of the earlier tool are dropped.
THROTTLE_TIMES_DROPPED = (
    "throttle timestamps dropped: the earlier tool wrote raw perf_counter values and no "
    "window start in that clock, so they cannot be placed in the measured window"
)

#: v2 energy-metric fields whose 0.0 default meant "not measured".
_V2_ZERO_MEANS_UNMEASURED = (
    "gpu_energy_j", "cpu_energy_j", "ram_energy_j", "gpu_power_w", "cpu_power_w",
    "emissions_kg_co2", "energy_per_token_j",
)

def upgrade_v2(document: dict[str, Any], shape: str) -> ResultModel:
    """The earlier tool's v2 or "3.0.0" file -> llem's v3: same fields; v3-only fields null;
    its known defects repaired (see the module docstring)."""
    data = dict(document, schema_version=SCHEMA_VERSION)
    if shape == "raw":
        return RawProcessResult.model_validate(_upgrade_v2_raw(data))
    if shape == "aggregated":
        return AggregatedResult.model_validate(_upgrade_v2_aggregated(data))
    cycles = [_upgrade_v2_aggregated(dict(c, schema_version=SCHEMA_VERSION))
              for c in data.get("cycle_results", [])]
    return MultiCycleResult.model_validate(dict(data, cycle_results=cycles))


def _unmeasured_reason(data: dict[str, Any], total_energy_j: Any) -> str | None:
    """Why an earlier tool's energy total is not a measurement, or None when it is one."""
    if data.get("energy_tracking_failed"):
        return _FAILED_REASON
    if total_energy_j == 0:
        return ZERO_ENERGY_REASON
    return None


def _upgrade_v2_raw(data: dict[str, Any]) -> dict[str, Any]:
    energy = dict(data.get("energy_metrics", {}))
    inference = data.get("inference_metrics", {})
    out = dict(data, schema_version=SCHEMA_VERSION)
    # Before 2025-12-21 v2 files had no names; v2 read them as empty strings.
    out.setdefault("config_name", "")
    out.setdefault("model_name", "")
    for name in _V2_ZERO_MEANS_UNMEASURED:
        if not energy.get(name):
            energy[name] = None
    reason = _unmeasured_reason(data, energy.get("total_energy_j"))
    if reason is not None:
        energy["total_energy_j"] = None
        energy["unavailable_reason"] = reason
        out["energy_unavailable_reason"] = reason
    if not energy.get("energy_source"):
        energy["energy_source"] = UNRECORDED_SOURCE
    out["energy_metrics"] = energy
    out["energy_source"] = data.get("energy_source") or UNRECORDED_SOURCE
    out["output_tokens"] = inference.get("output_tokens")
    if reason is not None:
        out["energy_breakdown"] = None  # its raw_j is the same unmeasured zero
    _repair_throttle(out, (data.get("timestamps") or {}).get("duration_sec"))
    return out


def _upgrade_v2_aggregated(data: dict[str, Any]) -> dict[str, Any]:
    processes = [_upgrade_v2_raw(p) for p in data.get("process_results", [])]
    out = dict(data, process_results=processes,
               energy_source=data.get("energy_source") or UNRECORDED_SOURCE)
    reason = _unmeasured_reason(data, data.get("total_energy_j"))
    if reason is not None:
        out["total_energy_j"] = None
        out["avg_energy_per_token_j"] = None
        out["energy_unavailable_reason"] = reason
        out["energy_breakdown"] = None
    _repair_throttle(out, _window_sec(data.get("start_time"), data.get("end_time")))
    if processes:
        out["output_tokens"] = sum(p["output_tokens"] or 0 for p in processes)
        names = {p.get("model_name") for p in processes if p.get("model_name")}
        if len(names) == 1:
            out["model_name"] = names.pop()
    return out


def upgrade_later_line(document: dict[str, Any]) -> AggregatedResult:
    """The later line's result -> v3 AggregatedResult (its extra keys stay in the original)."""
    d = document
    config = d.get("effective_config") or {}
    env = (d.get("environment_snapshot") or {}).get("hardware")
    snapshot = d.get("environment_snapshot") or {}
    if env is not None:
        env = dict(env)
        env["software"] = {
            "python_version": snapshot.get("python_version"),
            "llem_version": None,
        }
    model_name = d.get("model_name") or (
        config.get("model") if isinstance(config.get("model"), str) else None
    )
    data = {
        "schema_version": SCHEMA_VERSION,
        "experiment_id": d["experiment_id"],
        "backend": d.get("backend") or d.get("engine") or "pytorch",
        "backend_version": d.get("backend_version") or d.get("engine_version"),
        "aggregation": d.get("aggregation") or {"method": "single_process", "num_processes": 1},
        "total_tokens": d["total_tokens"],
        "total_energy_j": d.get("total_energy_j"),
        "total_inference_time_sec": d["total_inference_time_sec"],
        "avg_tokens_per_second": d["avg_tokens_per_second"],
        "avg_energy_per_token_j": d.get("avg_energy_per_token_j"),
        "total_flops": d["total_flops"],
        "start_time": d["start_time"],
        "end_time": d["end_time"],
        "effective_config": config,
        "latency_stats": d.get("latency_stats"),
        "extended_metrics": d.get("extended_metrics") or {},
        "environment": env,
        "energy_breakdown": d.get("energy_breakdown"),
        "thermal_throttle": d.get("thermal_throttle"),
        "timeseries_path": d.get("timeseries"),
        "model_name": model_name,
        "config_hash": d.get("measurement_config_hash"),
        "energy_source": UNRECORDED_SOURCE,
        "measurement_warnings": d.get("measurement_warnings"),
        **_later_line_tokens(d),
    }
    reason = _unmeasured_reason(d, d.get("total_energy_j"))
    if reason is not None:
        data["total_energy_j"] = None
        data["avg_energy_per_token_j"] = None
        data["energy_unavailable_reason"] = reason
        data["energy_breakdown"] = None
    _repair_throttle(data, _window_sec(d.get("start_time"), d.get("end_time")))
    return AggregatedResult.model_validate(data)


def _later_line_tokens(d: dict[str, Any]) -> dict[str, int]:
    """Input and output tokens of a later-line result, from what it holds.

    It records no token split, but it wrote ``flops_per_output_token = total_flops /
    output_tokens`` and ``flops_per_input_token = total_flops / input_tokens``; the two
    quotients are taken only when both are whole numbers that add up to ``total_tokens``.
    """
    flops = d.get("total_flops")
    per_output, per_input = d.get("flops_per_output_token"), d.get("flops_per_input_token")
    if not (_positive(flops) and _positive(per_output) and _positive(per_input)):
        return {}
    output_tokens, input_tokens = flops / per_output, flops / per_input
    whole = all(abs(n - round(n)) <= 1e-6 * max(1.0, n) for n in (output_tokens, input_tokens))
    if not whole or round(output_tokens) + round(input_tokens) != d.get("total_tokens"):
        return {}
    return {"output_tokens": round(output_tokens), "input_tokens": round(input_tokens)}


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _window_sec(start: Any, end: Any) -> float | None:
    """Seconds between two ISO times of one document (both naive or both with an offset)."""
    try:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _repair_throttle(data: dict[str, Any], window_sec: float | None) -> None:
    """Throttle info of the earlier tool, repaired in place (it lives on ``data``).

    ``thermal`` is set when the software or the hardware thermal bit is (it used only the
    software one), ``power`` when the hardware power brake is, ``detected`` when either is.
    Timestamps must be seconds within the window; the earlier tool wrote raw
    ``perf_counter`` values, which are dropped with a warning.
    """
    throttle = data.get("thermal_throttle")
    if not isinstance(throttle, dict):
        return
    info = dict(throttle)
    info["thermal"] = bool(info.get("thermal") or info.get("sw_thermal") or info.get("hw_thermal"))
    info["power"] = bool(info.get("power") or info.get("hw_power"))
    info["detected"] = bool(info.get("detected") or info["thermal"] or info["power"])
    times = info.get("throttle_timestamps") or []
    limit = (window_sec or 0.0) + 1.0
    if times and (window_sec is None or not all(0.0 <= t <= limit for t in times)):
        info["throttle_timestamps"] = []
        data["measurement_warnings"] = [
            *(data.get("measurement_warnings") or []),
            f"{THROTTLE_TIMES_DROPPED} ({len(times)} value(s))",
        ]
    data["thermal_throttle"] = info
