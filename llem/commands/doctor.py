"""``llem doctor``: what this machine can measure, and why not."""

from __future__ import annotations

import argparse
import json
from typing import Any

from llem.energy.probe import format_report, probe, report_document


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show what this machine can measure (GPUs, energy counters, RAPL) and why not",
        description="Probe NVML and RAPL and say, in plain words, what llem can measure here.",
    )
    parser.add_argument("--json", action="store_true", help="print the probe as JSON")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    reports = probe()
    if args.json:
        print(json.dumps(report_document(reports), indent=2))
    else:
        print(format_report(reports))
    return 0
