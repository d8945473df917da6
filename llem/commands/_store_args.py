"""Options shared by the store commands (--store, --lock-timeout, --as-of) and the wait
message."""

from __future__ import annotations

import argparse
import sys

from llem.constants import DEFAULT_STORE_PATH
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--store`` and ``--lock-timeout``."""
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE_PATH,
        metavar="PATH",
        help=f"DuckDB result store (default: {DEFAULT_STORE_PATH}).",
    )
    parser.add_argument(
        "--lock-timeout",
        type=float,
        default=DEFAULT_LOCK_TIMEOUT_SEC,
        metavar="SEC",
        dest="lock_timeout_sec",
        help="Seconds to wait while another process holds the store "
        f"(default: {DEFAULT_LOCK_TIMEOUT_SEC:g}).",
    )


def add_as_of_option(parser: argparse.ArgumentParser) -> None:
    """``--as-of BATCH_ID``: read the store as it stood right after that ingest batch."""
    parser.add_argument(
        "--as-of",
        metavar="BATCH_ID",
        dest="as_of",
        help="Answer as the store stood right after this ingest batch committed (its full "
        "id, as 'llem store history' lists it).",
    )


def notify(message: str) -> None:
    """Progress messages (lock waits, migrations) go to stderr, keeping stdout for data."""
    print(f"llem: {message}", file=sys.stderr, flush=True)
