"""The experiment table as a self-contained HTML page and as CSV.

Missing figures are left empty (CSV) or shown as a dash (HTML), never as zero. Every 95 %
interval is shown with its n: one HTML cell ``lower – upper (n = k)``, three CSV columns
``<name>_lower``, ``<name>_upper`` and ``<name>_n``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem.io import write_text_atomic
from llem.report.rows import COLUMNS, INTERVAL_COLUMNS, ExperimentRow, Interval

_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; max-width: 1380px; }
h2 { font-size: 16px; margin-top: 1.4em; }
table { border-collapse: collapse; width: 100%; font-size: 11px; }
th, td { border: 1px solid #ccc; padding: 2px 4px; vertical-align: top; }
th { background: #eee; position: sticky; top: 0; font-weight: 600; }
td { overflow-wrap: break-word; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.missing { color: #999; text-align: center; }
td.notes { min-width: 16em; max-width: 26em; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
figure { margin: 0; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption, p.why { font-size: 12px; }
p.why { background: #fff6e0; border-left: 4px solid #e0a000; padding: 4px 8px; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """A figure of the report: its title, its PNG (None when there was nothing to plot) and,
    where some or all of it is missing, the sentence saying why."""

    title: str
    png: bytes | None
    why_missing: str | None = None


#: Columns of the HTML page: a header and the row fields shown in one cell, " / " between
#: them, so the page fits 1400 px; the CSV keeps one column per field.
HTML_COLUMNS: list[tuple[str, tuple[str, ...]]] = [
    ("experiment / cycle", ("experiment", "cycle")),
    ("model / provenance", ("model", "model_provenance")),
    ("batch size", ("batch_size",)),
    ("precision", ("precision",)),
    ("processes / GPUs", ("num_processes", "num_devices")),
    ("GPU (UUID) / host / SLURM job", ("gpus", "host", "slurm_job_id")),
    ("energy source", ("energy_source",)),
    ("energy raw / adjusted (J)", ("energy_raw_j", "energy_adjusted_j")),
    ("baseline / mean power (W)", ("baseline_power_w", "avg_power_w")),
    ("J / output token raw / adjusted", ("energy_per_output_token_j",
                                         "energy_per_output_token_adjusted_j")),
    ("J / output token 95 % interval", ("energy_per_output_token_interval_j",)),
    ("output tokens / s", ("output_tokens_per_second",)),
    ("output tokens / s 95 % interval", ("output_tokens_per_second_interval",)),
    ("output tokens / window (s)", ("output_tokens", "window_sec")),
    ("TTFT p50 / p95 (ms)", ("ttft_p50_ms", "ttft_p95_ms")),
    ("ITL p50 / p95 (ms)", ("itl_p50_ms", "itl_p95_ms")),
    ("latency p50 / p95 / p99 (ms)", ("latency_e2e_p50_ms", "latency_e2e_p95_ms",
                                      "latency_e2e_p99_ms")),
    ("latency 95 % interval (ms)", ("latency_interval_ms",)),
    ("energy 95 % interval (J)", ("energy_interval_j",)),
    ("throttling / throttled (s) / max temp (C)", ("throttled", "throttle_duration_sec",
                                                   "max_temperature_c")),
    ("sampler CPU (s) / share / reads", ("sampler_cpu_sec", "sampler_cpu_fraction",
                                         "sampler_reads")),
    ("warnings", ("notes",)),
]


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


def write_html(
    rows: list[ExperimentRow],
    path: str | Path,
    title: str = "llem results",
    figures: list[ReportFigure] | None = None,
    timeseries: list[ReportFigure] | None = None,
) -> None:
    """A standalone HTML page (no scripts, no external resources: figures are embedded):
    the figures, each with the sentence saying why where something is missing, the time
    series, and the table."""
    head = "".join(f"<th>{html.escape(header)}</th>" for header, _ in HTML_COLUMNS)
    body = []
    for row in rows:
        values = row.table_values()
        cells = "".join(_group_cell(fields, values) for _, fields in HTML_COLUMNS)
        body.append(f"<tr>{cells}</tr>")
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        + _figures_html("Figures", figures)
        + _figures_html("Power and temperature over time", timeseries)
        + "<h2>Experiments</h2>"
        f"<p>{len(rows)} measured cycle(s). A dash marks a figure that was not measured; "
        "the warnings column says why. Intervals are 95 % intervals of the mean across the "
        "cycles of an experiment, computed on the log scale (so never below zero), with "
        "their n.</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )
    write_text_atomic(path, page)


def _figures_html(heading: str, figures: list[ReportFigure] | None) -> str:
    if figures is None:
        return ""
    parts = [f"<h2>{html.escape(heading)}</h2>"]
    reasons = dict.fromkeys(f.why_missing for f in figures if f.why_missing)
    parts.extend(f"<p class='why'>{html.escape(reason)}</p>" for reason in reasons)
    images = [
        f"<figure><img src='data:image/png;base64,{base64.b64encode(f.png).decode()}' "
        f"alt='{html.escape(f.title, quote=True)}'><figcaption>{html.escape(f.title)}"
        "</figcaption></figure>"
        for f in figures if f.png is not None
    ]
    if images:
        parts.append(f"<div class='figures'>{''.join(images)}</div>")
    return "".join(parts)


def _group_cell(fields: tuple[str, ...], values: dict[str, Any]) -> str:
    """One HTML cell of one or more fields; all missing is a dash."""
    shown = [values[name] for name in fields]
    if all(v is None or v == "" for v in shown):
        return "<td class='missing'>&ndash;</td>"
    if len(fields) == 1:
        return _cell(fields[0], shown[0])
    text = " / ".join("–" if v is None or v == "" else format_value(v) for v in shown)
    numeric = all((isinstance(v, int | float) and not isinstance(v, bool)) or v is None
                  for v in shown)
    return f"<td class='{'num' if numeric else ''}'>{html.escape(text)}</td>"


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
