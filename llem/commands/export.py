"""``llem export``: write the store's tables as Parquet or CSV."""

from __future__ import annotations

import argparse

from llem.commands._store_args import add_store_options, notify
from llem.store import EXPORT_FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="Export the store as Parquet (results partitioned by schema version and model) "
        "or CSV.",
    )
    add_store_options(parser)
    parser.add_argument(
        "--format", choices=EXPORT_FORMATS, default="parquet", help="default: parquet"
    )
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="Output folder (must be absent or empty)."
    )
    parser.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from llem.store.export import export_store

    report = export_store(
        args.store, args.out, args.format, lock_timeout_sec=args.lock_timeout_sec, notify=notify
    )
    counts = ", ".join(f"{name} {n}" for name, n in report.rows.items())
    print(f"exported to {report.out_dir} ({args.format}): {counts}")
    return 0
