"""``llem results list | show ID | compare ID ID``: the common questions about stored results."""

from __future__ import annotations

import argparse
import os
import shutil
import sys

from llem.commands._store_args import add_as_of_option, add_store_options, notify
from llem.store import QUERY_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results", help="List, show or compare stored results."
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    lister = actions.add_parser("list", help="Results, newest first.")
    lister.add_argument("--model", help="Only this model.")
    lister.add_argument("--campaign", help="Only this campaign.")
    lister.add_argument(
        "--latest", action="store_true",
        help="Only the newest result per experiment and config hash.",
    )
    lister.add_argument("--limit", type=int, default=50, help="At most this many (default 50).")

    shower = actions.add_parser("show", help="Every stored field of one result.")
    shower.add_argument("id", metavar="ID", help="Result id or an unambiguous prefix.")

    comparer = actions.add_parser(
        "compare", help="Two results side by side with differences and ratios."
    )
    comparer.add_argument("first", metavar="ID_A", help="Result id (A).")
    comparer.add_argument("second", metavar="ID_B", help="Result id (B).")

    for sub in (lister, shower, comparer):
        add_store_options(sub)
        add_as_of_option(sub)
        sub.add_argument("--format", choices=QUERY_FORMATS, default="table", help="default: table")
    parser.set_defaults(func=_results)


def _display_width() -> int | None:
    """Characters a table may take: the terminal's width (or ``$COLUMNS``) when a person
    reads it; no limit when the output goes to a pipe or a file, so nothing is cut there."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _results(args: argparse.Namespace) -> int:
    from llem.errors import LlemError
    from llem.store.connection import open_store_read_only
    from llem.store.formatting import render, render_table
    from llem.store.history import compare_results, list_results, show_processes, show_result
    from llem.store.lock import is_damage, store_error

    conn = open_store_read_only(
        args.store, lock_timeout_sec=args.lock_timeout_sec, notify=notify, as_of=args.as_of
    )
    try:
        if args.action == "list":
            found = list_results(conn, model=args.model, campaign=args.campaign,
                                 latest=args.latest, limit=args.limit)
            if args.format == "table":
                out = render_table(found.columns, found.rows, max_width=_display_width())
            else:
                out = render(found, args.format)
        elif args.action == "show":
            out = render(show_result(conn, args.id), args.format)
            if args.format == "table":
                out += "\nprocess results:\n" + render(show_processes(conn, args.id), "table")
        else:
            out = render(compare_results(conn, args.first, args.second), args.format)
    except LlemError as exc:
        if is_damage(exc):  # a damaged block met while reading
            raise store_error(args.store, exc, "cannot read store") from exc
        raise
    finally:
        conn.close()
    sys.stdout.write(out)
    return 0
