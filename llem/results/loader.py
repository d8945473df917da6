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
later-line files (:mod:`llem.results.upgrade`), so its known defects never reach the store.

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
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llem.constants import SCHEMA_VERSION, V2_SCHEMA_VERSION, WRITTEN_BY_LLEM
from llem.domain.experiment import (
    AggregatedResult,
    MultiCycleResult,
    RawProcessResult,
    ResultModel,
)
from llem.errors import ResultLoadError, shown_name
from llem.results.schema import json_path, validate_document
from llem.results.upgrade import upgrade_later_line, upgrade_v2

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

#: Prefix of the formats of "3.0.0" files that the earlier tool wrote.
UPSTREAM_V3_PREFIX = "upstream_"

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


def schema_errors(path: str | Path) -> list[str]:
    """Every schema failure of a result file in its own format (``parse_document`` reports
    the first); empty when the file is unreadable, no result, or its schema takes it."""
    source = str(path)
    try:
        if not Path(path).is_file():
            return []
        _, document = decode_document(Path(path).read_bytes(), source)
        fmt = detect_format(document, source)
    except (OSError, ResultLoadError):
        return []
    return validate_document(document, schema_format(fmt))


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
