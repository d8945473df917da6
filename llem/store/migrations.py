"""Move an older store forward to the current store schema version.

Each step takes a store from version ``n`` to ``n + 1``. Before the first step the store file
is copied next to itself (``<store>.v<n>.bak``, written under a temporary name and renamed);
then every step and the version bump run in one transaction, so a failure or a kill leaves
the store exactly at its old version. A store newer than this llem is never migrated (see
:mod:`llem.store.connection`).

Steps may rebuild derived tables from ``documents``, which keeps every ingested file verbatim;
that is why the archive tables are the part of the layout that never changes.

Each step is a function that receives the open store (the connection, inside the migration's
transaction) and writes through :mod:`llem.store.write`; nothing here opens a store, so
:mod:`llem.store.connection` calls :func:`migrate` and this module never imports it back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from llem.errors import LlemError, StoreError
from llem.results.loader import parse_document
from llem.store.ddl import DERIVED_TABLES, STORE_SCHEMA_VERSION, VIEWS, create_table_sql
from llem.store.lock import Notify
from llem.store.rows import Provenance, build_rows
from llem.store.write import first_rows, insert_rowsets, rollback, set_meta, writer_meta


def backup_path(path: Path, version: int) -> Path:
    """Where the copy of a store at ``version`` goes before it is migrated."""
    return path.with_name(f"{path.name}.v{version}.bak")


def migrate(
    conn: duckdb.DuckDBPyConnection, path: Path, from_version: int, notify: Notify | None = None
) -> Path:
    """Migrate the store open on ``conn`` (which holds its lock); returns the backup path."""
    missing = [v for v in range(from_version, STORE_SCHEMA_VERSION) if v not in STEPS]
    if from_version < 0 or missing:
        raise StoreError(f"{path}: no migration from store schema version {from_version}")
    backup = _backup(conn, path, from_version)
    if notify is not None:
        notify(
            f"migrating store {path} from schema version {from_version} to "
            f"{STORE_SCHEMA_VERSION} (backup: {backup})"
        )
    conn.begin()
    try:
        for version in range(from_version, STORE_SCHEMA_VERSION):
            STEPS[version](conn, notify)
        set_meta(
            conn,
            {
                "store_schema_version": str(STORE_SCHEMA_VERSION),
                f"migrated_from_v{from_version}_at": datetime.now(UTC).isoformat(),
                **writer_meta(),
            },
        )
        conn.commit()
    except BaseException as exc:
        rollback(conn)
        if isinstance(exc, LlemError | duckdb.Error):
            raise StoreError(
                f"{path}: migration from store schema version {from_version} failed, store "
                f"unchanged: {' '.join(str(exc).split())}"
            ) from exc
        raise
    return backup


def _backup(conn: duckdb.DuckDBPyConnection, path: Path, version: int) -> Path:
    """Copy the store file (complete after a checkpoint; we hold the lock)."""
    conn.execute("CHECKPOINT")
    backup = backup_path(path, version)
    tmp = backup.with_name(f".{backup.name}.tmp")
    try:
        shutil.copyfile(path, tmp)
        tmp.replace(backup)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"{path}: cannot write backup {backup} before migrating: {exc}") from exc
    return backup


# --------------------------------------------------------------------------------------
# steps
# --------------------------------------------------------------------------------------


def _v0_to_v1(conn: duckdb.DuckDBPyConnection, notify: Notify | None) -> None:
    """Add the derived tables and views (in this llem's layout, which the next steps then
    leave as they are), and fill them from the archived documents."""
    for table in DERIVED_TABLES:
        for statement in create_table_sql(table):
            conn.execute(statement)
    for statement in VIEWS.values():
        conn.execute(statement)
    rederive_from_documents(conn, notify)


def rederive_from_documents(conn: duckdb.DuckDBPyConnection, notify: Notify | None) -> None:
    """Rebuild results, process results and cycle statistics from ``documents``.

    Documents are taken in ingest order; when two documents give different rows under one id
    the earlier one is kept (the ingest rules refuse the later one today) and a line says so.
    """
    cursor = conn.execute(
        "SELECT content_sha256, source_path, ingest_batch_id, ingested_at, document "
        "FROM documents ORDER BY ingested_at, content_sha256"
    )
    rowsets = []
    seen: dict[str, dict[str, str]] = {}
    while batch := cursor.fetchmany(1000):
        for sha, source, batch_id, ingested_at, text in batch:
            loaded = parse_document(json.loads(text), source, sha)
            rows = build_rows(loaded, Provenance(sha, source, batch_id, ingested_at), text)
            kept, differing = first_rows(rows, seen)
            if notify is not None:
                for kind, ident in differing:
                    notify(f"{source}: {kind} {ident!r} differs from an earlier "
                           "document; kept the earlier one")
            rowsets.append(replace(rows, **kept))
    insert_rowsets(conn, rowsets, with_documents=False)


def _v1_to_v2(conn: duckdb.DuckDBPyConnection, notify: Notify | None) -> None:
    """UTC times, model provenance, measurement fingerprints, every cycle in latest_results,
    and the instrumentation cost columns.

    ``results``, ``process_results`` and ``cycle_statistics`` are rebuilt from ``documents``
    with this llem's rules (repairs of the earlier tool's files included); ``timeseries``
    holds samples read from Parquet files that may be gone, so it is kept as it is (its
    layout did not change, and result ids do not change).
    """
    rebuild_derived_tables(conn, notify)


def _v2_to_v3(conn: duckdb.DuckDBPyConnection, notify: Notify | None) -> None:
    """The wider results table (devices, host, SLURM job, mean power, adjusted J per output
    token, latency percentiles, throttle duration, cycles and headline intervals): rebuilt
    from ``documents`` like the step to 2; ``timeseries`` is kept as it is."""
    rebuild_derived_tables(conn, notify)


def rebuild_derived_tables(conn: duckdb.DuckDBPyConnection, notify: Notify | None) -> None:
    """Drop and recreate the views and the document-derived tables (all but ``timeseries``)
    in this llem's layout, and fill them from ``documents``."""
    for name in VIEWS:
        conn.execute(f"DROP VIEW IF EXISTS {name}")
    rebuilt = [t for t in DERIVED_TABLES if t.name != "timeseries"]
    for table in rebuilt:
        conn.execute(f"DROP TABLE IF EXISTS {table.name}")
        for statement in create_table_sql(table):
            conn.execute(statement)
    for statement in VIEWS.values():
        conn.execute(statement)
    rederive_from_documents(conn, notify)


#: Migration steps by the version they start from.
STEPS: dict[int, Callable[[duckdb.DuckDBPyConnection, Notify | None], None]] = {
    0: _v0_to_v1,
    1: _v1_to_v2,
    2: _v2_to_v3,
}
