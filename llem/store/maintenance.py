"""Store upkeep: delete the Parquet files that killed ingests left in a DuckLake's data folder.

An ingest into a DuckLake writes its Parquet files first and commits the catalog entries
naming them last; an ingest killed in between leaves files that no snapshot names. Readers
never see them (a snapshot reads only the files its catalog lists), so they are disk, not
data. :func:`clean_store` deletes exactly the files DuckLake lists as orphaned (in the data
folder, named by no snapshot at all), so every file of every committed snapshot stays and
``--as-of`` keeps reading old snapshots. It holds the ingest lock meanwhile, and deletes only
files older than ``older_than_sec`` (default an hour), so the files of an ingest still
writing, under this lock or from a writer that does not take it, are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb

from llem.errors import StoreError
from llem.store.connection import StoreLike, writing_store
from llem.store.lake import CATALOG, DEFAULT_ORPHAN_AGE_SEC, lake_error
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify
from llem.store_address import LakeAddress, parse_store_address

#: Why a DuckDB file store has nothing to clean.
NOTHING_IN_A_FILE = ("a DuckDB file store keeps its data inside the file, and a killed ingest "
                     "leaves nothing in it: nothing to clean")


@dataclass
class CleanReport:
    """What :func:`clean_store` deleted (or, with ``dry_run``, would delete).

    Attributes:
        store: the store, as text.
        files: the orphaned files, deleted unless ``dry_run``.
        dry_run: nothing was deleted, only listed.
        nothing_to_clean: why this kind of store has nothing to clean, else None.
    """

    store: str
    files: list[str] = field(default_factory=list)
    dry_run: bool = False
    nothing_to_clean: str | None = None

    def summary(self) -> str:
        """One line for the user."""
        if self.nothing_to_clean is not None:
            return f"{self.store}: {self.nothing_to_clean}"
        verb = "would delete" if self.dry_run else "deleted"
        return (f"{verb} {len(self.files)} orphaned data file(s) of killed or failed ingests "
                f"from {self.store}")


def clean_store(
    store: StoreLike,
    *,
    older_than_sec: float = DEFAULT_ORPHAN_AGE_SEC,
    dry_run: bool = False,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> CleanReport:
    """Delete the DuckLake data files no snapshot names that are older than ``older_than_sec``.

    Args:
        store: the store; a DuckDB file store has nothing to clean (said in the report).
        older_than_sec: only files last modified at least this long ago go (0: all orphans).
        dry_run: list the files, delete nothing.
        lock_timeout_sec: how long to wait for the ingest lock.
        notify: told once if the lock is busy.
    """
    address = parse_store_address(store)
    if not isinstance(address, LakeAddress):
        return CleanReport(str(address), dry_run=dry_run, nothing_to_clean=NOTHING_IN_A_FILE)
    if not older_than_sec >= 0:  # also refuses NaN
        raise StoreError(f"--older-than {older_than_sec:g}: give a number of seconds >= 0")
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than_sec)
    with writing_store(address, lock_timeout_sec=lock_timeout_sec, notify=notify,
                       create=False) as conn:
        try:
            rows = conn.execute(
                "SELECT path FROM ducklake_delete_orphaned_files(?, dry_run => ?, "
                "older_than => ?) ORDER BY path",
                [CATALOG, dry_run, cutoff],
            ).fetchall()
        except duckdb.Error as exc:
            raise lake_error(address, exc, "cannot clean the data folder") from exc
    return CleanReport(str(address), [row[0] for row in rows], dry_run)
