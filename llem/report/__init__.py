"""Report of a campaign run: the experiment table, campaign plots and time-series plots.

:func:`build_report` is what ``llem report`` and the workflow's ``report`` rule call; the
files it writes are collected by ``snakemake --report``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llem.report.plots import energy_per_token_vs_batch_size, energy_vs_throughput, save_figure
from llem.report.rows import load_rows
from llem.report.table import write_csv, write_html
from llem.report.timeseries import figure_name, timeseries_figure


@dataclass(frozen=True)
class ReportOutputs:
    """Where each part of the report goes; parts left ``None`` are not written."""

    table_html: Path | None = None
    table_csv: Path | None = None
    energy_per_token_plot: Path | None = None
    tradeoff_plot: Path | None = None
    timeseries_dir: Path | None = None


def build_report(result_paths: list[str | Path], outputs: ReportOutputs) -> list[Path]:
    """Write the requested report parts for the given result files; returns files written."""
    rows = load_rows(result_paths)
    written: list[Path] = []
    if outputs.table_html is not None:
        write_html(rows, outputs.table_html)
        written.append(outputs.table_html)
    if outputs.table_csv is not None:
        write_csv(rows, outputs.table_csv)
        written.append(outputs.table_csv)
    if outputs.energy_per_token_plot is not None:
        save_figure(energy_per_token_vs_batch_size(rows), outputs.energy_per_token_plot)
        written.append(outputs.energy_per_token_plot)
    if outputs.tradeoff_plot is not None:
        save_figure(energy_vs_throughput(rows), outputs.tradeoff_plot)
        written.append(outputs.tradeoff_plot)
    if outputs.timeseries_dir is not None:
        outputs.timeseries_dir.mkdir(parents=True, exist_ok=True)
        multi_cycle = len({(r.experiment, r.cycle) for r in rows}) > len(
            {r.experiment for r in rows}
        )
        for row in rows:
            if not row.timeseries_files:
                continue
            path = outputs.timeseries_dir / figure_name(row, multi_cycle)
            save_figure(timeseries_figure(row), path)
            written.append(path)
    return written
