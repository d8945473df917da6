"""``llem store history``: the store's ingest batches, the states ``--as-of`` can name."""

from __future__ import annotations

import argparse
import sys

from llem.commands._store_args import add_store_options, notify
from llem.store import QUERY_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("store", help="About the result store itself: its history.")
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
    parser.set_defaults(func=_store)


def _store(args: argparse.Namespace) -> int:
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
