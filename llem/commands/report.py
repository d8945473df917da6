"""``llem report RESULT...``: experiment table, campaign plots and time-series plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from llem.errors import LlemError
from llem.measure.job_guard import SHARED


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="Write the table and plots of a campaign run from its result.json files.",
    )
    parser.add_argument("results", nargs="+", metavar="RESULT", help="result.json files.")
    parser.add_argument("--table", type=Path, help="HTML table of all experiments.")
    parser.add_argument("--csv", type=Path, help="The same table as CSV.")
    parser.add_argument(
        "--energy-per-token-plot", type=Path, help="PNG: J per output token vs batch size."
    )
    parser.add_argument(
        "--tradeoff-plot", type=Path, help="PNG: energy per token vs throughput."
    )
    parser.add_argument(
        "--performance-plot", type=Path,
        help="PNG: throughput, TTFT and ITL (p50/p95) vs batch size.",
    )
    parser.add_argument(
        "--timeseries-dir",
        type=Path,
        help="Folder for one PNG per experiment (and cycle): power and temperature over time.",
    )
    parser.set_defaults(func=_report, step_kind=SHARED)


def _report(args: argparse.Namespace) -> int:
    from llem.report import ReportOutputs, build_report

    outputs = ReportOutputs(
        table_html=args.table,
        table_csv=args.csv,
        energy_per_token_plot=args.energy_per_token_plot,
        tradeoff_plot=args.tradeoff_plot,
        timeseries_dir=args.timeseries_dir,
        performance_plot=args.performance_plot,
    )
    if all(value is None for value in vars(outputs).values()):
        raise LlemError("nothing to write: give at least one of --table, --csv, "
                        "--energy-per-token-plot, --tradeoff-plot, --performance-plot, "
                        "--timeseries-dir")
    written = build_report(args.results, outputs)
    for path in written:
        print(path)
    return 0
