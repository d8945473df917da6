"""Options shared by the store commands (--store, --lock-timeout) and the wait message."""

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


def notify(message: str) -> None:
    """Progress messages (lock waits, migrations) go to stderr, keeping stdout for data."""
    print(f"llem: {message}", file=sys.stderr, flush=True)
