"""Waiting for the store's lock.

DuckDB lets one process write a database file (readers of other processes are shut out as
well) and refuses a second one at once. llem instead waits up to a timeout, telling the user
once that it is waiting and for whom, then fails with a message that says what to do.

Every other DuckDB failure on a store file becomes one :class:`StoreError` line through
:func:`store_error`, which says "damaged" when DuckDB found the file corrupt (a checksum that
does not match, a truncated file, a broken header).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from llem.errors import StoreError, shown_name

#: Seconds a writer or reader waits for another process's lock by default.
DEFAULT_LOCK_TIMEOUT_SEC = 60.0

#: Receives one line for the user while the store works (waiting for a lock, migrating).
Notify = Callable[[str], None]

_POLL_INTERVAL_SEC = 0.2
_HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")

#: What DuckDB says when a database file's bytes are not what it wrote.
_DAMAGE_MARKERS = (
    "Corrupt database file",
    "not a valid DuckDB database file",
    "Could not read enough bytes",
)


def is_lock_conflict(error: BaseException) -> bool:
    """Whether a DuckDB error means another process holds the file's lock."""
    return isinstance(error, duckdb.IOException) and "Could not set lock" in str(error)


def is_damage(error: BaseException | None) -> bool:
    """Whether a DuckDB error, or the DuckDB error behind another, means the store file is
    damaged (corrupt, truncated)."""
    return _damage(error) is not None


def _damage(error: BaseException | None) -> BaseException | None:
    while error is not None:
        if isinstance(error, duckdb.Error) and any(m in str(error) for m in _DAMAGE_MARKERS):
            return error
        error = error.__cause__
    return None


#: What DuckDB says of a file written by a newer DuckDB than its own.
_NEWER_DUCKDB = "created with an newer version of DuckDB"


def store_error(path: str | Path, error: BaseException, failed: str) -> StoreError:
    """One line for a DuckDB failure on the store at ``path``: what ``failed``, and whether
    the file is damaged or was written by a newer DuckDB."""
    if _NEWER_DUCKDB in str(error):
        return StoreError(
            f"{shown_name(path)}: {failed}: the file was written by a newer DuckDB than this "
            f"llem's {duckdb.__version__} (llem 0.1 wrote its stores with DuckDB 2.0, which "
            "DuckDB 1.5 cannot read); keep it, and build a new store from the result files "
            "('llem ingest --store NEW.duckdb results/'), or read it with llem 0.1"
        )
    damage = _damage(error)
    if damage is not None:
        return StoreError(
            f"{shown_name(path)}: store file is damaged ({failed}); restore it from a backup: "
            f"{_one_line(damage)}"
        )
    return StoreError(f"{shown_name(path)}: {failed}: {_one_line(error)}")


def lock_holder(error: BaseException) -> str:
    """'PID 1234 (python3)' from DuckDB's lock error, or 'another process'."""
    match = _HOLDER.search(str(error))
    if not match:
        return "another process"
    return f"PID {match['pid']} ({Path(match['program']).name})"


def connect_waiting(
    path: str | Path,
    *,
    read_only: bool,
    timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    config: dict[str, str | bool | int] | None = None,
) -> duckdb.DuckDBPyConnection:
    """Connect to ``path``, waiting up to ``timeout_sec`` for another process's lock.

    ``notify`` receives one line when the wait starts. Other DuckDB errors (a corrupt file, a
    file written by a newer DuckDB) are raised as :class:`StoreError` at once.
    """
    deadline = time.monotonic() + max(0.0, timeout_sec)
    told = False
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as exc:
            if not is_lock_conflict(exc):
                raise store_error(path, exc, "cannot open store") from exc
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{path}: store is locked by {lock_holder(exc)}; gave up after "
                    f"{timeout_sec:g} s (raise --lock-timeout, or wait for that process to "
                    "finish)"
                ) from exc
            if not told and notify is not None:
                notify(
                    f"waiting up to {timeout_sec:g} s for the store lock held by "
                    f"{lock_holder(exc)} ({path})"
                )
            told = True
            time.sleep(_POLL_INTERVAL_SEC)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
