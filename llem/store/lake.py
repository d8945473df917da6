"""DuckLake stores: the catalog in PostgreSQL, the data as Parquet files in a shared folder.

A lab's store is a DuckLake (:class:`~llem.store_address.LakeAddress`). DuckDB attaches it as
the catalog ``llem``; the ducklake and postgres extensions are loaded from the installed
``duckdb-extension-*`` wheels, never downloaded. Every commit is a DuckLake snapshot, so the
store can be read as it stood at any snapshot; each ingest tags its snapshot with its batch
id (the snapshot's commit message), which is how ``--as-of BATCH_ID`` finds it.

Many processes write at once. DuckLake has no unique constraints, so llem keeps "each file
and each id once" itself: an ingest holds a PostgreSQL advisory lock on the catalog database
(:func:`ingest_lock`) from the moment it looks up which ids the store holds until its commit.
The lock belongs to a database session, so a killed ingest releases it with its connection.
Readers take no lock and never wait: each reads the last committed snapshot.
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb

from llem.errors import NoStoreError, StoreError
from llem.store.ddl import sql_string
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify
from llem.store_address import LakeAddress

#: The name the store's catalog is attached under (a file store's is the file's stem).
CATALOG = "llem"

#: The extensions a DuckLake store needs, and the wheels that ship them.
EXTENSION_PACKAGES = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
}

#: The advisory-lock key of "an ingest is judging and writing" in the catalog database.
INGEST_LOCK_KEY = 0x6C6C656D_696E6773  # "llemings"

_POLL_INTERVAL_SEC = 0.05

#: Data files younger than this may be an ingest's still writing: ``llem store clean`` leaves
#: them by default (see :mod:`llem.store.maintenance`).
DEFAULT_ORPHAN_AGE_SEC = 3600.0

#: Settings of every DuckLake connection: nothing is installed or loaded on demand.
_BASE_CONFIG: dict[str, str | bool | int] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


def extension_file(name: str) -> Path:
    """The installed extension file for this DuckDB (``name`` from :data:`EXTENSION_PACKAGES`)."""
    package = EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    wanted = f"v{duckdb.__version__}"
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = Path(folder) / "extensions" / wanted / f"{name}.duckdb_extension"
            if candidate.is_file():
                return candidate
    raise StoreError(
        f"a DuckLake store needs the {package.replace('_', '-')} package built for DuckDB "
        f"{duckdb.__version__} (pip install '{package.replace('_', '-')}=="
        f"{duckdb.__version__}')"
    )


def connect_lake(
    address: LakeAddress,
    *,
    read_only: bool,
    create: bool = False,
    snapshot: int | None = None,
    snapshot_time: datetime | None = None,
    config: dict[str, str | bool | int] | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as :data:`CATALOG` and in use.

    Args:
        address: the store.
        read_only: attach read-only (DuckDB refuses every write, and DuckLake reads the
            catalog in read-only PostgreSQL transactions).
        create: make a new, empty DuckLake in the catalog database if it holds none.
        snapshot: pin the whole lake at this snapshot id.
        snapshot_time: pin it at the last snapshot committed at or before this time.
        config: further DuckDB settings.
    """
    conn = duckdb.connect(":memory:", config={**_BASE_CONFIG, **(config or {})})
    try:
        for name in EXTENSION_PACKAGES:
            conn.execute(f"LOAD {sql_string(str(extension_file(name)))}")
        _attach(conn, address, read_only=read_only, create=create, snapshot=snapshot,
                snapshot_time=snapshot_time)
    except duckdb.Error as exc:
        conn.close()
        raise lake_error(address, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def pin_lake(conn: duckdb.DuckDBPyConnection, address: LakeAddress, snapshot: int) -> None:
    """Attach the lake of a read-only :func:`connect_lake` connection again, pinned at
    ``snapshot`` (the extensions stay loaded: a tenth of the cost of a new connection)."""
    try:
        conn.execute("USE memory")
        conn.execute(f"DETACH {CATALOG}")
        _attach(conn, address, read_only=True, create=False, snapshot=snapshot,
                snapshot_time=None)
    except duckdb.Error as exc:
        raise lake_error(address, exc) from exc


def _attach(conn: duckdb.DuckDBPyConnection, address: LakeAddress, *, read_only: bool,
            create: bool, snapshot: int | None, snapshot_time: datetime | None) -> None:
    options = [f"DATA_PATH {sql_string(address.data_path)}"]
    if read_only:
        options.append("READ_ONLY")
    if not create:
        options.append("CREATE_IF_NOT_EXISTS false")
    if snapshot is not None:
        options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
    if snapshot_time is not None:
        options.append(f"SNAPSHOT_TIME {sql_string(snapshot_time.isoformat())}")
    target = sql_string(f"ducklake:postgres:{address.catalog_dsn()}")
    conn.execute(f"ATTACH {target} AS {CATALOG} ({', '.join(options)})")
    conn.execute(f"USE {CATALOG}")


def lake_error(address: LakeAddress, error: BaseException, failed: str = "") -> StoreError:
    """One line for a failure to reach or use the lake at ``address``."""
    text = " ".join(str(error).split())
    if "does not exist - and creating a new DuckLake is explicitly disabled" in text:
        return NoStoreError(f"{address}: no store here (create one with 'llem ingest --store "
                          f"{address} FILES...')")
    if "No snapshot found" in text:
        return StoreError(f"{address}: {text.split('Error: ', 1)[-1]}")
    if "Unable to connect to Postgres" in text or "could not connect" in text.lower():
        reason = text.rsplit(": ", 1)[-1] if "failed:" in text else text
        return StoreError(
            f"{address}: cannot reach the store's catalog database ({reason}); results stay "
            "on disk and are ingested by the next run"
        )
    what = f"{failed}: " if failed else ""
    return StoreError(f"{address}: {what}{text}")


@contextmanager
def ingest_lock(
    address: LakeAddress,
    *,
    timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> Iterator[None]:
    """Hold the lake's ingest lock (a transaction-scoped PostgreSQL advisory lock on its own
    connection) for the body; waits up to ``timeout_sec``, telling ``notify`` once."""
    conn = duckdb.connect(":memory:", config=dict(_BASE_CONFIG))
    try:
        try:
            conn.execute(f"LOAD {sql_string(str(extension_file('postgres_scanner')))}")
            dsn = sql_string(f"{address.catalog_dsn()} application_name=llem-ingest")
            conn.execute(f"ATTACH {dsn} AS llem_lock (TYPE postgres)")
            conn.begin()
            _wait_for_lock(conn, address, timeout_sec, notify)
        except duckdb.Error as exc:
            raise lake_error(address, exc, "cannot take the ingest lock") from exc
        yield
    finally:
        conn.close()  # ends the PostgreSQL transaction, and with it the lock


def _wait_for_lock(conn: duckdb.DuckDBPyConnection, address: LakeAddress, timeout_sec: float,
                   notify: Notify | None) -> None:
    deadline = time.monotonic() + max(0.0, timeout_sec)
    told = False
    query = (f"SELECT * FROM postgres_query('llem_lock', "
             f"'SELECT pg_try_advisory_xact_lock({INGEST_LOCK_KEY})')")
    while not conn.execute(query).fetchone()[0]:
        if time.monotonic() >= deadline:
            raise StoreError(
                f"{address}: another ingest held the store's write lock for over "
                f"{timeout_sec:g} s; gave up (raise --lock-timeout, or look for a stuck "
                "llem ingest)"
            )
        if not told and notify is not None:
            notify(f"waiting up to {timeout_sec:g} s for another ingest into {address} to "
                   "commit")
            told = True
        time.sleep(_POLL_INTERVAL_SEC)


def is_lake_connection(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the store ``conn`` uses is a DuckLake."""
    row = conn.execute("SELECT type FROM duckdb_databases() "
                       "WHERE database_name = current_database()").fetchone()
    return row is not None and row[0] == "ducklake"


def lake_data_path(conn: duckdb.DuckDBPyConnection) -> str:
    """The folder the attached lake reads its Parquet files from, as DuckLake records it."""
    return str(conn.execute(f"SELECT data_path FROM ducklake_settings('{CATALOG}')").fetchone()[0])


def tag_commit(conn: duckdb.DuckDBPyConnection, batch_id: str, author: str | None) -> None:
    """Name the snapshot the open transaction will commit after its ingest batch."""
    _set_commit_message(conn, author, f"llem ingest batch {batch_id}", batch_id)


def tag_copy(conn: duckdb.DuckDBPyConnection, batch_ids: list[str], author: str | None,
             source: str) -> None:
    """Name the snapshot the open transaction will commit after the batches a copy brings
    (``llem store copy``): its extra info is their ids as a JSON list, in commit order."""
    _set_commit_message(conn, author, f"llem store copy of {len(batch_ids)} batches from "
                        f"{source}", json.dumps(batch_ids))


def _set_commit_message(conn: duckdb.DuckDBPyConnection, author: str | None, message: str,
                        extra_info: str) -> None:
    conn.execute(f"CALL {CATALOG}.set_commit_message(?, ?, extra_info => ?)",
                 [author or "", message, extra_info])


def names_batch(extra_info: str, batch_id: str) -> str:
    """SQL that is true when a snapshot whose ``commit_extra_info`` is the expression
    ``extra_info`` holds the batch ``batch_id`` (an expression): an ingest's snapshot names
    its batch, a copy's snapshot lists the batches it brought (:func:`tag_copy`)."""
    return (f"(CASE WHEN starts_with({extra_info}, '[') "
            f"THEN list_contains(from_json({extra_info}, '[\"VARCHAR\"]'), {batch_id}) "
            f"ELSE {extra_info} = {batch_id} END)")


def batch_commit(conn: duckdb.DuckDBPyConnection, batch_id: str) -> tuple[int, bool] | None:
    """The snapshot an ingest batch committed in, and whether a copy brought it there along
    with other batches (then that snapshot holds the batches after it too); None if no
    snapshot holds it."""
    row = conn.execute(
        f"SELECT snapshot_id, starts_with(commit_extra_info, '[') FROM {CATALOG}.snapshots() "
        f"WHERE {names_batch('commit_extra_info', '$1')} ORDER BY snapshot_id DESC LIMIT 1",
        [batch_id],
    ).fetchone()
    return None if row is None else (int(row[0]), bool(row[1]))
