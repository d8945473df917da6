"""Load any result file users hold, recognised by its shape, as a v3 model.

Formats: v2 per-process, aggregated and multi-cycle ("2.0.0"); v3 of the same three
("3.0.0"), written by llem or by the earlier tool; and the earlier tool's later line ("2.0"/"3.0"
with a top-level ``measurement_config_hash``, which restarted the version numbers, so
dispatch is on shape first). Each document is validated against the JSON Schema of its own
format, then converted to the v3 model. v3-only fields of older documents stay null; the
original document is kept on the :class:`LoadedResult` for the store.

llem marks its own files (``written_by: "llem"``; files written before that mark carry
``llem_version``, which the earlier tool never wrote). A "3.0.0" file without the mark is the
earlier tool's (format ``upstream_v3_<shape>``) and gets the same repairs as its v2 and
later-line files, so its known defects never reach the store: energy it recorded as 0 J (its
way of saying "not measured") becomes null with the reason; ``thermal`` is set when either
thermal bit is; throttle timestamps that are not seconds within the window (it wrote raw
``perf_counter`` values, with no window start in that clock) are dropped with a warning; an
empty ``energy_source`` becomes ``unrecorded``.

Every failure is a :class:`~llem.errors.ResultLoadError` whose message is one line naming the
file (quoted where its name holds control characters) and the problem. Documents nested deeper
than :data:`MAX_JSON_DEPTH` and strings that are not Unicode text are refused when decoded, so
no later step (schema, models, store) meets them.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llem.constants import SCHEMA_VERSION, V2_SCHEMA_VERSION, WRITTEN_BY_LLEM
from llem.domain.experiment import AggregatedResult, MultiCycleResult, RawProcessResult
from llem.errors import ResultLoadError, shown_name
from llem.schema import json_path, validate_document

ResultModel = RawProcessResult | AggregatedResult | MultiCycleResult

_V3_MODELS: dict[str, type[ResultModel]] = {
    "raw": RawProcessResult,
    "aggregated": AggregatedResult,
    "multi_cycle": MultiCycleResult,
}
_LATER_LINE_VERSIONS = ("2.0", "3.0")

#: Deepest nesting of arrays and objects a result may have. llem's own results nest about ten
#: levels; the bound keeps every recursive step after decoding (schema validation, models,
#: serialization) far from Python's recursion limit.
MAX_JSON_DEPTH = 100

#: A JSON escape of a UTF-16 surrogate (paired or not; the document then tells).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

#: Marks energy of v2 imports: the earlier tool did not record its source per figure.
UNRECORDED_SOURCE = "unrecorded"

#: Why an imported zero becomes null: the earlier tool wrote 0.0 for what it did not measure.
ZERO_ENERGY_REASON = "the earlier tool recorded 0 J, which it wrote when energy was not measured"
_FAILED_REASON = "energy tracking failed in the earlier tool"

#: Prefix of the formats of "3.0.0" files that the earlier tool wrote.
UPSTREAM_V3_PREFIX = "upstream_"

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


@dataclass(frozen=True)
class LoadedResult:
    """A validated result document and its v3 model."""

    path: str
    format: str
    schema_version: str
    document: dict[str, Any]
    content_sha256: str
    model: ResultModel


def load_result(path: str | Path) -> ResultModel:
    """The v3 model of a result file of any supported format."""
    return read_result(path).model


def read_result(path: str | Path) -> LoadedResult:
    """Read, recognise, validate and convert one result file."""
    source = str(path)
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise ResultLoadError(
            f"{shown_name(source)}: cannot read: {exc.strerror or exc}"
        ) from exc
    _, document = decode_document(content, source)
    return parse_document(document, source, hashlib.sha256(content).hexdigest())


def decode_document(content: bytes, source: str = "<document>") -> tuple[str, Any]:
    """The text and parsed JSON of a file's bytes; one-line ResultLoadError otherwise.

    NaN and Infinity are refused: they are not JSON, and a result must say null, with a
    reason, for a figure it could not measure; so are numbers too large for a float (``1e400``,
    which Python would read as infinity). So are documents nested deeper than
    :data:`MAX_JSON_DEPTH` and strings holding an unpaired surrogate escape (``"\\ud800"``),
    which no UTF-8 file or store column can hold.
    """
    name = shown_name(source)
    try:
        text = content.decode("utf-8-sig")
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except UnicodeDecodeError as exc:
        raise ResultLoadError(f"{name}: not UTF-8 text: {exc.reason}") from exc
    except json.JSONDecodeError as exc:
        what = "truncated JSON" if exc.pos >= len(content.rstrip()) else "invalid JSON"
        raise ResultLoadError(
            f"{name}: {what} at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise ResultLoadError(f"{name}: {exc}") from exc
    except RecursionError:
        raise ResultLoadError(_too_deep(name)) from None
    # Nesting cannot exceed the number of opening brackets; most results have fewer.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _deeper_than(
        document, MAX_JSON_DEPTH
    ):
        raise ResultLoadError(_too_deep(name))
    if "\\u" in text and _SURROGATE_ESCAPE.search(text):
        where = _unpaired_surrogate(document)
        if where is not None:
            raise ResultLoadError(
                f"{name}: {where}: string holds an unpaired UTF-16 surrogate escape, which is "
                "not Unicode text"
            )
    return text, document


def _too_deep(name: str) -> str:
    return f"{name}: JSON nested deeper than {MAX_JSON_DEPTH} levels (not a result document)"


def _deeper_than(document: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (walked level by level)."""
    level = [document] if isinstance(document, dict | list) else []
    for _ in range(limit):
        below: list[Any] = []
        for node in level:
            values = node.values() if isinstance(node, dict) else node
            below.extend(v for v in values if isinstance(v, dict | list))
        if not below:
            return False
        level = below
    return True


def _unpaired_surrogate(document: Any) -> str | None:
    """JSON path of the first key or string that is not valid Unicode text, if any."""
    stack: list[tuple[Any, list[Any]]] = [(document, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not is_unicode_text(node):
                return json_path(path)
        elif isinstance(node, dict):
            for key, value in node.items():
                if not is_unicode_text(key):
                    return json_path(path)
                stack.append((value, [*path, key]))
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in enumerate(node))
    return None


def is_unicode_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (no unpaired surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON (a number that is not finite)")


def _finite_float(literal: str, _isfinite: Any = math.isfinite) -> float:
    value = float(literal)
    if not _isfinite(value):
        raise ValueError(f"{literal[:40]} is too large for a float (a number that is not finite)")
    return value


def parse_document(
    document: Any, source: str = "<document>", content_sha256: str | None = None
) -> LoadedResult:
    """Recognise, validate and convert an already parsed JSON document.

    ``content_sha256`` is the hash of the file's bytes, which callers that read the file
    already have; without it the hash is taken over the document's canonical JSON.
    """
    fmt = detect_format(document, source)
    errors = validate_document(document, schema_format(fmt))
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ResultLoadError(f"{shown_name(source)}: {format_label(fmt)}: {errors[0]}{more}")
    try:
        model = _to_v3(document, fmt)
    except ValidationError as exc:
        first = _first_error_in(document, exc.errors())
        raise ResultLoadError(
            f"{shown_name(source)}: {format_label(fmt)}: {json_path(first['loc'])}: "
            f"{first['msg']}"
        ) from exc
    if content_sha256 is None:
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        content_sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return LoadedResult(
        path=source,
        format=fmt,
        schema_version=str(document.get("schema_version", V2_SCHEMA_VERSION)),
        document=document,
        content_sha256=content_sha256,
        model=model,
    )


def _first_error_in(document: Any, errors: list[Any]) -> Any:
    """The first model error at a place the file itself has (an older file's figure, rather
    than the v3 field the upgrade copied it into), else the first error."""
    for error in errors:
        node = document
        for part in error["loc"]:
            found = (isinstance(node, dict) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if not found:
                break
            node = node[part]
        else:
            return error
    return errors[0]


def detect_format(document: Any, source: str = "<document>") -> str:
    """The format of a document by shape and version; a clear error when it is no result."""
    name = shown_name(source)
    if not isinstance(document, dict):
        kind = type(document).__name__.replace("dict", "object").replace("list", "array")
        raise ResultLoadError(f"{name}: not a result document (top level is a JSON {kind})")
    version = document.get("schema_version")
    if "measurement_config_hash" in document:
        if version not in _LATER_LINE_VERSIONS:
            raise ResultLoadError(
                f"{name}: unknown schema version {version!r} for a result with "
                "measurement_config_hash (known: '2.0', '3.0')"
            )
        return "later_line"
    shape = _shape(document)
    if shape is None:
        raise ResultLoadError(
            f"{name}: not a result document (no per-process, aggregated or multi-cycle "
            "result fields)"
        )
    if version is None or version == V2_SCHEMA_VERSION:
        return f"v2_{shape}"
    if version == SCHEMA_VERSION:
        return f"v3_{shape}" if written_by_llem(document) else f"{UPSTREAM_V3_PREFIX}v3_{shape}"
    raise ResultLoadError(
        f"{name}: unknown schema version {version!r} (llem reads {V2_SCHEMA_VERSION}, "
        f"{SCHEMA_VERSION} and the later line '2.0'/'3.0')"
    )


def written_by_llem(document: dict[str, Any]) -> bool:
    """Whether llem wrote this v3 document (its mark, or llem_version for older llem files)."""
    return document.get("written_by") == WRITTEN_BY_LLEM or bool(document.get("llem_version"))


def schema_format(fmt: str) -> str:
    """The JSON Schema a format is validated against (the earlier tool's v3 is llem's v3)."""
    return fmt.removeprefix(UPSTREAM_V3_PREFIX)


def is_import(fmt: str) -> bool:
    """Whether a format is a file of the earlier tool (any but llem's own v3)."""
    return not fmt.startswith("v3_")


def format_label(fmt: str) -> str:
    """Human name of a format, e.g. 'v2 aggregated result'."""
    if fmt == "later_line":
        return "later-line result"
    upstream = fmt.startswith(UPSTREAM_V3_PREFIX)
    version, _, shape = schema_format(fmt).partition("_")
    label = f"{version} {shape.replace('_', '-')} result"
    return f"earlier tool's {label}" if upstream else label


def _shape(document: dict[str, Any]) -> str | None:
    if "cycle_results" in document or "statistics" in document:
        return "multi_cycle"
    if "aggregation" in document or "total_energy_j" in document:
        return "aggregated"
    if "process_index" in document or "timestamps" in document:
        return "raw"
    return None


def _to_v3(document: dict[str, Any], fmt: str) -> ResultModel:
    if fmt == "later_line":
        return upgrade_later_line(document)
    _, _, shape = schema_format(fmt).partition("_")
    if not is_import(fmt):
        return _V3_MODELS[shape].model_validate(document)
    return upgrade_v2(document, shape)


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
