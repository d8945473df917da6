"""``llem schema export``: write the JSON Schemas of results and configs."""

from __future__ import annotations

import argparse

from llem.results.schema import export_schemas


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("schema", help="Export JSON Schemas.")
    sub = parser.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="Write every JSON Schema (results v3/v2, config).")
    export.add_argument("--out", default="schemas", help="Output folder (default: schemas).")
    export.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    for path in export_schemas(args.out):
        print(path)
    return 0
