"""Options shared by the store commands (--store, --lock-timeout, --as-of) and the wait
message."""

from __future__ import annotations

import argparse
import sys

from llem.constants import DEFAULT_STORE_PATH
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC
from llem.store_address import LAKE_SCHEME


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` and ``--lock-timeout``."""
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE_PATH,
        metavar="STORE",
        help=f"Result store: a DuckDB file (default: {DEFAULT_STORE_PATH}) or a lab's DuckLake, "
        f"{LAKE_SCHEME}://[USER@]HOST[:PORT]/DBNAME?data_path=DIR (password from PGPASSWORD, "
        "~/.pgpass or a service file).",
    )
    add_lock_timeout_option(parser)


def add_lock_timeout_option(parser: argparse.ArgumentParser,
                            what: str = "the store") -> None:
    """``--lock-timeout SEC``: how long to wait for another process's lock."""
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT_SEC,
        metavar="SEC",
        dest="lock_timeout_sec",
        help=f"Seconds to wait while another process holds {what} "
        f"(default: {DEFAULT_LOCK_TIMEOUT_SEC:g}).",
    )


def add_as_of_option(parser: argparse.ArgumentParser) -> None:
    """``--as-of``: read the store as it stood right after an ingest batch (or, on a
    DuckLake, at a snapshot or a time)."""
    parser.add_argument(
        "--as-of",
        metavar="BATCH_ID|SNAPSHOT|TIME",
        dest="as_of",
        help="Answer as the store stood right after this ingest batch committed (its full "
        "id, as 'llem store history' lists it); on a DuckLake store also a snapshot id or an "
        "ISO 8601 time (UTC unless it has an offset).",
    )


def notify(message: str) -> None:
    """Progress messages (lock waits, migrations) go to stderr, keeping stdout for data."""
    print(f"llem: {message}", file=sys.stderr, flush=True)
