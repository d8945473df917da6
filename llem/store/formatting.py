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


def render_table(columns: list[str], rows: list[tuple[Any, ...]] | list[list[Any]]) -> str:
    """An aligned plain-text table with a header line and a row count."""
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

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


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
