"""``llem store``: about the result store itself: ``history`` (its ingest batches, the states
``--as-of`` can name) and ``copy`` (its history into another store)."""

from __future__ import annotations

import argparse
import sys

from llem.commands._store_args import add_store_options, notify
from llem.constants import DEFAULT_STORE_PATH
from llem.store import QUERY_FORMATS
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC
from llem.store_address import LAKE_SCHEME


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store", help="About the result store itself: its history, copying it.")
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
    copy.add_argument(
        "--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT_SEC, metavar="SEC",
        dest="lock_timeout_sec",
        help="Seconds to wait while another process holds either store "
        f"(default: {DEFAULT_LOCK_TIMEOUT_SEC:g}).",
    )
    copy.set_defaults(func=_copy)


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
