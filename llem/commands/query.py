"""``llem query``: run one read-only SQL statement over the store (see llem.store.query)."""

from __future__ import annotations

import argparse
import sys

from llem.commands._store_args import add_as_of_option, add_store_options, notify
from llem.store import QUERY_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "query",
        help="Run SQL over the result store (read-only).",
        description="Run one SQL statement that only reads (SELECT, WITH, EXPLAIN, DESCRIBE, "
        "SHOW, SUMMARIZE, read-only PRAGMA) over the store, on a read-only connection that "
        "reaches no file beside it; anything else is refused before it runs ('llem export' "
        "writes files). Tables: results, process_results, cycle_statistics, timeseries, "
        "documents, ingest_batches, store_meta; views: latest_results, results_flat.",
    )
    parser.add_argument("sql", metavar="SQL", help="The statement; '-' reads it from stdin.")
    add_store_options(parser)
    add_as_of_option(parser)
    parser.add_argument(
        "--format", choices=QUERY_FORMATS, default="table", help="Output format (default: table)."
    )
    parser.set_defaults(func=_query)


def _query(args: argparse.Namespace) -> int:
    from llem.errors import LlemError
    from llem.store.formatting import render
    from llem.store.lock import is_damage, store_error
    from llem.store.query import run_query

    sql = sys.stdin.read() if args.sql == "-" else args.sql
    try:
        result = run_query(args.store, sql, lock_timeout_sec=args.lock_timeout_sec,
                           notify=notify, as_of=args.as_of)
    except LlemError as exc:
        if is_damage(exc):  # a damaged block met by the statement
            raise store_error(args.store, exc, "cannot read store") from exc
        raise
    sys.stdout.write(render(result, args.format))
    return 0
