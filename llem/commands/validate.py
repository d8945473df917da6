"""``llem validate FILE...``: check result files against the schema of their own format."""

from __future__ import annotations

import argparse
import sys

from llem.validation import validate_files


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="Validate result files against the JSON Schema of their format (v3, v2, later line).",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="Result JSON files.")
    parser.set_defaults(func=_validate)


def _validate(args: argparse.Namespace) -> int:
    reports = validate_files(args.files)
    failed = 0
    for report in reports:
        if report.errors:
            failed += 1
            for line in report.errors:
                print(f"{report.path}: {line}", file=sys.stderr)
        else:
            print(f"{report.path}: valid {report.label}")
        for line in report.warnings:
            print(f"{report.path}: warning: {line}", file=sys.stderr)
    print(f"{len(reports) - failed} valid, {failed} invalid")
    return 0 if failed == 0 else 1
