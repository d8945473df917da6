"""Render query results as an aligned text table, CSV or JSON.

Table output is for reading (floats to 6 significant digits, long text cut); CSV and JSON
keep full precision for other programs. NULL stays visible as ``NULL`` in tables, an empty
field in CSV and ``null`` in JSON, never as 0.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from llem.store import QUERY_FORMATS as FORMATS
from llem.store.query import QueryResult

_MAX_CELL = 60


def render(result: QueryResult, fmt: str) -> str:
    """``result`` as text in ``fmt`` (table, csv or json), ending with a newline."""
    if fmt == "table":
        return render_table(result.columns, result.rows)
    if fmt == "csv":
        return render_csv(result)
    if fmt == "json":
        return render_json(result)
    raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")


def render_table(
    columns: list[str], rows: list[tuple[Any, ...]] | list[list[Any]],
    max_width: int | None = None,
) -> str:
    """An aligned plain-text table with a header line and a row count.

    With ``max_width`` the table fits that many characters: long text is elided in the
    middle (never below :data:`_MIN_TEXT` characters; numbers are never cut), then columns
    are left out from the right, and a last line names them.
    """
    if not columns:
        return "OK\n"
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows)
        and any(row[i] is not None for row in rows)
        for i in range(len(columns))
    ]
    left_out: list[str] = []
    if max_width is not None:
        columns, cells, widths, numeric, left_out = _fit(
            list(columns), cells, widths, numeric, max_width)

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    if left_out:
        out.append(f"(left out to fit {max_width} characters: {', '.join(left_out)}; "
                   "--format csv or json shows every column)")
    return "\n".join(out) + "\n"


#: To fit a width, text is first elided to :data:`_SOFT_TEXT` characters, then columns past
#: the first :data:`_KEPT_COLUMNS` are left out, then text is elided down to :data:`_MIN_TEXT`.
_SOFT_TEXT = 26
_KEPT_COLUMNS = 4
_MIN_TEXT = 12
_GAP = 2


def _fit(
    columns: list[str], cells: list[list[str]], widths: list[int], numeric: list[bool],
    max_width: int,
) -> tuple[list[str], list[list[str]], list[int], list[bool], list[str]]:
    """Elide text columns and leave out columns from the right until the table fits."""

    def total() -> int:
        return sum(widths) + _GAP * (len(widths) - 1)

    def shrink(floor: int) -> None:
        while total() > max_width:
            shrinkable = [i for i in range(len(widths))
                          if not numeric[i] and widths[i] > max(floor, len(columns[i]))]
            if not shrinkable:
                return
            widths[max(shrinkable, key=lambda i: widths[i])] -= 1

    def drop(keep: int) -> None:
        while total() > max_width and len(columns) > keep:
            left_out.insert(0, columns.pop())
            widths.pop()
            numeric.pop()

    left_out: list[str] = []
    shrink(_SOFT_TEXT)
    drop(_KEPT_COLUMNS)
    shrink(_MIN_TEXT)
    drop(1)
    cells = [[_elide(text, widths[i]) for i, text in enumerate(row[: len(columns)])]
             for row in cells]
    return columns, cells, widths, numeric, left_out


def _elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters in the middle, where ids differ least."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def render_csv(result: QueryResult) -> str:
    """RFC 4180 CSV with a header; NULL is an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else _text(v, full=True) for v in row])
    return buffer.getvalue()


def render_json(result: QueryResult) -> str:
    """A JSON array of objects; JSON columns are embedded as JSON, not as strings."""
    records = []
    for row in result.rows:
        record = {}
        for name, type_name, value in zip(result.columns, result.types, row, strict=True):
            if type_name == "JSON" and isinstance(value, str):
                value = json.loads(value)
            record[name] = _jsonable(value)
        records.append(record)
    return json.dumps(records, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def _cell(value: Any) -> str:
    text = _text(value, full=False)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


def _text(value: Any, *, full: bool) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if full else f"{value:.6g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
