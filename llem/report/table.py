"""The experiment table as a self-contained HTML page and as CSV.

Missing figures are left empty (CSV) or shown as a dash (HTML), never as zero. Every 95 %
interval is shown with its n: one HTML cell ``lower – upper (n = k)``, three CSV columns
``<name>_lower``, ``<name>_upper`` and ``<name>_n``.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path
from typing import Any

from llem.io import write_text_atomic
from llem.report.rows import COLUMNS, INTERVAL_COLUMNS, ExperimentRow, Interval

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 6px; }
th { background: #eee; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #999; text-align: center; }
td.notes { max-width: 30em; font-size: 11px; }
"""


def write_csv(rows: list[ExperimentRow], path: str | Path) -> None:
    """CSV with one header line of column names; empty cells are unmeasured values."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header: list[str] = []
    for name, _ in COLUMNS:
        header.extend([f"{name}_lower", f"{name}_upper", f"{name}_n"]
                      if name in INTERVAL_COLUMNS else [name])
    writer.writerow(header)
    for row in rows:
        values = row.table_values()
        cells: list[Any] = []
        for name, _ in COLUMNS:
            value = values[name]
            if name in INTERVAL_COLUMNS:
                parts = (None, None, None) if value is None else (value.lower, value.upper,
                                                                  value.n)
                cells.extend("" if v is None else v for v in parts)
            else:
                cells.append("" if value is None else value)
        writer.writerow(cells)
    write_text_atomic(path, buffer.getvalue())


def write_html(rows: list[ExperimentRow], path: str | Path, title: str = "llem results") -> None:
    """A standalone HTML page with the table (no scripts, no external resources)."""
    head = "".join(f"<th>{html.escape(header)}</th>" for _, header in COLUMNS)
    body = []
    for row in rows:
        values = row.table_values()
        cells = "".join(_cell(name, values[name]) for name, _ in COLUMNS)
        body.append(f"<tr>{cells}</tr>")
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(rows)} measured cycle(s). A dash marks a figure that was not measured; "
        "the warnings column says why. Intervals are 95 % intervals of the mean across the "
        "cycles of an experiment, computed on the log scale (so never below zero), with "
        "their n.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )
    write_text_atomic(path, page)


def format_value(value: Any) -> str:
    """Numbers with four significant digits, intervals with their n, the rest as text."""
    if isinstance(value, Interval):
        return value.text()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _cell(name: str, value: Any) -> str:
    if value is None or value == "":
        return "<td class='missing'>&ndash;</td>"
    css = "num" if isinstance(value, int | float) and not isinstance(value, bool) else ""
    if name == "notes":
        css = "notes"
    return f"<td class='{css}'>{html.escape(format_value(value))}</td>"
