"""``llem ingest``: add result files (and the time series they name) to the store."""

from __future__ import annotations

import argparse
import sys

from llem.commands._store_args import add_store_options, notify
from llem.errors import shown_name
from llem.measure.job_guard import SHARED


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="Add result files to the DuckDB store (validated; v2 files upgraded).",
        description="Add result files and folders (*.json, recursively) to the store. A bad "
        "file is refused whole with its reason and the good ones still land, in one "
        "transaction; exit status 0 only if nothing was refused. Without PATHs, create, check "
        "(every table read once) or migrate the store only.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="Result files or folders.")
    add_store_options(parser)
    parser.add_argument(
        "--strict", action="store_true", help="Refuse the whole call if any file is refused."
    )
    parser.add_argument(
        "--receipt",
        metavar="PATH",
        help="Write a JSON receipt (batch id, counts, files) here after the commit (the "
        "place is checked first: nothing is ingested if it cannot be written).",
    )
    parser.set_defaults(func=_ingest, step_kind=SHARED)


def _ingest(args: argparse.Namespace) -> int:
    from llem.store.ingest import REFUSED, ingest_paths, migrate_only

    if not args.paths:
        migrate_only(args.store, lock_timeout_sec=args.lock_timeout_sec, notify=notify)
        print(f"store ready: {shown_name(args.store)}")
        return 0
    report = ingest_paths(
        args.paths,
        args.store,
        strict=args.strict,
        lock_timeout_sec=args.lock_timeout_sec,
        notify=notify,
        receipt_path=args.receipt,
    )
    for outcome in report.files:
        if outcome.status == REFUSED:
            print(f"llem: refused: {shown_name(outcome.path)}: {outcome.reason}",
                  file=sys.stderr)
        elif outcome.reason:
            print(f"llem: {outcome.status.replace('_', ' ')}: {shown_name(outcome.path)}: "
                  f"{outcome.reason}", file=sys.stderr)
        for warning in outcome.warnings:
            print(f"llem: warning: {shown_name(outcome.path)}: {warning}", file=sys.stderr)
    print(report.summary())
    if report.batch_id:
        print(f"batch {report.batch_id}")
    return 0 if report.ok else 1
