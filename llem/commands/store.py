"""``llem store``: about the result store itself: ``history`` (its ingest batches, the states
``--as-of`` can name), ``copy`` (its history into another store) and ``clean`` (the data
files killed ingests left in a DuckLake)."""

from __future__ import annotations

import argparse
import sys

from llem.commands._store_args import add_lock_timeout_option, add_store_options, notify
from llem.constants import DEFAULT_STORE_PATH
from llem.store import QUERY_FORMATS
from llem.store.lake import DEFAULT_ORPHAN_AGE_SEC
from llem.store_address import LAKE_SCHEME


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store", help="About the result store itself: its history, copying it, its upkeep.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    history = actions.add_parser(
        "history",
        help="Ingest batches, oldest first: id, commit time, who and where, what each added.",
        description="Every ingest batch of the store, oldest first: its id (what "
        "'llem query --as-of' and 'llem results list --as-of' take), when it committed, the "
        "user and host that ran it, and the files and rows it added.",
    )
    add_store_options(history)
    history.add_argument(
        "--format", choices=QUERY_FORMATS, default="table", help="Output format (default: table)."
    )
    history.set_defaults(func=_history)
    _register_copy(actions)
    _register_clean(actions)


def _register_copy(actions: argparse._SubParsersAction) -> None:
    copy = actions.add_parser(
        "copy",
        help="Copy a store's ingest batches into another store (file or DuckLake).",
        description="Copy every ingest batch of one store that another lacks into it, rows "
        "unchanged (ids and batch ids kept), in one transaction checked before it commits. "
        "Batches the destination holds are skipped; a row whose id the destination holds "
        "from another batch refuses the whole copy.",
    )
    stores = (f"a DuckDB file, or {LAKE_SCHEME}://[USER@]HOST[:PORT]/DBNAME?data_path=DIR")
    copy.add_argument("--from", dest="source", required=True, metavar="STORE",
                      help=f"Store to copy from ({stores}); only read.")
    copy.add_argument("--to", dest="destination", required=True, metavar="STORE",
                      help=f"Store to copy into ({stores}; e.g. {DEFAULT_STORE_PATH}); "
                      "created if absent.")
    copy.add_argument("--dry-run", action="store_true",
                      help="Say what would be copied; write nothing.")
    add_lock_timeout_option(copy, "either store")
    copy.set_defaults(func=_copy)


def _register_clean(actions: argparse._SubParsersAction) -> None:
    clean = actions.add_parser(
        "clean",
        help="Delete the Parquet files killed ingests left in a DuckLake's data folder.",
        description="Delete the data files of a DuckLake store that no snapshot names (left "
        "by ingests killed before their commit), under the ingest lock. Files of committed "
        "snapshots are never deleted, so --as-of keeps working. A DuckDB file store has "
        "nothing to clean.",
    )
    add_store_options(clean)
    clean.add_argument(
        "--older-than",
        type=float,
        default=DEFAULT_ORPHAN_AGE_SEC,
        metavar="SEC",
        dest="older_than_sec",
        help="Only files last modified at least this many seconds ago, so that an ingest "
        f"still writing keeps its files (default: {DEFAULT_ORPHAN_AGE_SEC:g}; 0: every orphan).",
    )
    clean.add_argument(
        "--dry-run", action="store_true", help="List the files that would go; delete nothing."
    )
    clean.set_defaults(func=_clean)


def _clean(args: argparse.Namespace) -> int:
    from llem.store.maintenance import clean_store

    report = clean_store(args.store, older_than_sec=args.older_than_sec, dry_run=args.dry_run,
                         lock_timeout_sec=args.lock_timeout_sec, notify=notify)
    for path in report.files:
        print(path)
    print(report.summary())
    return 0


def _history(args: argparse.Namespace) -> int:
    from llem.store.connection import open_store_read_only
    from llem.store.formatting import render
    from llem.store.history import batch_history

    conn = open_store_read_only(args.store, lock_timeout_sec=args.lock_timeout_sec,
                                notify=notify)
    try:
        out = render(batch_history(conn), args.format)
    finally:
        conn.close()
    sys.stdout.write(out)
    return 0


def _copy(args: argparse.Namespace) -> int:
    from llem.store.copy import copy_store

    report = copy_store(args.source, args.destination, dry_run=args.dry_run,
                        lock_timeout_sec=args.lock_timeout_sec, notify=notify)
    print(report.summary())
    return 0
