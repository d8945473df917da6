"""Report of a campaign run: the experiment table, campaign plots and time-series plots.

:func:`build_report` is what ``llem report`` and the workflow's ``report`` rule call; the
files it writes are collected by ``snakemake --report``. The HTML page embeds the figures it
writes in the same call, and says in one sentence why any figure is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem.report.plots import (
    energy_missing_reason,
    energy_per_token_vs_batch_size,
    energy_vs_throughput,
    latency_missing_reason,
    performance_vs_batch_size,
    save_figure,
    timeseries_missing_reason,
)
from llem.report.rows import ExperimentRow, load_rows
from llem.report.table import ReportFigure, write_csv, write_html
from llem.report.timeseries import figure_name, timeseries_figure


@dataclass(frozen=True)
class ReportOutputs:
    """Where each part of the report goes; parts left ``None`` are not written."""

    table_html: Path | None = None
    table_csv: Path | None = None
    energy_per_token_plot: Path | None = None
    tradeoff_plot: Path | None = None
    timeseries_dir: Path | None = None
    performance_plot: Path | None = None


def _performance_reason(rows: list[ExperimentRow]) -> str | None:
    reasons = [r for r in (latency_missing_reason(rows, "ttft"),
                           latency_missing_reason(rows, "itl")) if r]
    return " ".join(reasons) or None


#: The campaign plots: output field, title, drawing, why it is (partly) empty, and whether
#: it has anything to show without energy.
_PLOTS: list[tuple[str, str, Callable[[list[ExperimentRow]], Any],
                   Callable[[list[ExperimentRow]], str | None], bool]] = [
    ("performance_plot", "Throughput and latency against batch size",
     performance_vs_batch_size, _performance_reason, True),
    ("energy_per_token_plot", "J per output token against batch size",
     energy_per_token_vs_batch_size, energy_missing_reason, False),
    ("tradeoff_plot", "Energy / throughput trade-off", energy_vs_throughput,
     energy_missing_reason, False),
]


def build_report(result_paths: list[str | Path], outputs: ReportOutputs) -> list[Path]:
    """Write the requested report parts for the given result files; returns files written."""
    rows = load_rows(result_paths)
    written: list[Path] = []
    figures: list[ReportFigure] = []
    for field, title, draw, why, without_energy in _PLOTS:
        path = getattr(outputs, field)
        if path is None:
            continue
        png = save_figure(draw(rows), path)
        written.append(path)
        reason = why(rows)
        has_data = without_energy or any(r.energy_per_output_token_j is not None for r in rows)
        figures.append(ReportFigure(title, png if has_data else None, reason))
    timeseries: list[ReportFigure] | None = None
    if outputs.timeseries_dir is not None:
        timeseries = _write_timeseries(rows, outputs.timeseries_dir, written)
    if outputs.table_csv is not None:
        write_csv(rows, outputs.table_csv)
        written.append(outputs.table_csv)
    if outputs.table_html is not None:
        write_html(rows, outputs.table_html, figures=figures or None, timeseries=timeseries)
        written.append(outputs.table_html)
    return written


def _write_timeseries(rows: list[ExperimentRow], folder: Path, written: list[Path]
                      ) -> list[ReportFigure]:
    """One PNG per row with time series; the page's entries, with why any row has none."""
    folder.mkdir(parents=True, exist_ok=True)
    multi_cycle = len({(r.experiment, r.cycle) for r in rows}) > len({r.experiment for r in rows})
    entries: list[ReportFigure] = []
    overall = timeseries_missing_reason(rows)
    if overall is not None:
        return [ReportFigure("time series", None, overall)]
    for row in rows:
        name = figure_name(row, multi_cycle)
        if not row.timeseries_files:
            entries.append(ReportFigure(name, None, f"{name[:-4]}: no time series: "
                                                    f"{row.timeseries_reason}."))
            continue
        path = folder / name
        entries.append(ReportFigure(name, save_figure(timeseries_figure(row), path)))
        written.append(path)
    return entries
