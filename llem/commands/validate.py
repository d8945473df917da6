"""``llem validate PATH...``: would ``llem ingest`` take these files? Checked without a store."""

from __future__ import annotations

import argparse
import sys

from llem.errors import shown_name
from llem.store.verdict import validate_paths


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="Validate result files against the JSON Schema of their format (v3, v2, later line).",
        description="Check result files and folders (*.json, recursively) exactly as 'llem "
        "ingest' checks them, without a store: schema of their own format, v3 model, values "
        "the store can hold, time series they name. Exit status 0 only if every file is valid.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Result files or folders.")
    parser.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    report = validate_paths(args.paths)
    for file in report.files:
        name = shown_name(file.path)
        if file.errors:
            for line in file.errors:
                print(f"{name}: {line}", file=sys.stderr)
        else:
            print(f"{name}: valid {file.label}")
        for line in file.warnings:
            print(f"{name}: warning: {line}", file=sys.stderr)
    line = f"{len(report.files) - report.invalid} valid, {report.invalid} invalid"
    if report.skipped:
        line += f", {len(report.skipped)} non-result JSON skipped"
    print(line)
    return 0 if report.invalid == 0 else 1
