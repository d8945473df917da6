"""Create, check and open result stores.

A new store is built under a temporary name and linked into place, so a store file either
does not exist or holds the full current schema. Opening for writing checks the store's
schema version: an older store is migrated forward (see :mod:`llem.store.migrations`); a
store newer than this llem is refused with a message saying so, before anything is touched,
and every table of a store opened for writing is read through once first, so that a damaged
file is refused (one line saying so) before anything is written into it or reported ready.
Opening read-only never changes the store, and seals the connection so that SQL run on it
reaches nothing but the store (see :data:`SEALED_CONFIG`).

Both kinds of store open here: a DuckDB file, and a DuckLake shared by a lab
(:mod:`llem.store.lake`), named by a :mod:`llem.store_address`. Writers go through
:func:`writing_store`, which on a DuckLake also holds the ingest lock.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from llem.errors import NoStoreError, StoreError
from llem.store.as_of import AsOf, parse_as_of, pin_as_of
from llem.store.ddl import STORE_SCHEMA_VERSION, TABLES, VIEWS, create_table_sql
from llem.store.lake import (
    batch_commit,
    connect_lake,
    ingest_lock,
    lake_data_path,
    lake_error,
    pin_lake,
)
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify, connect_waiting, store_error
from llem.store.migrations import migrate
from llem.store.write import rollback, set_meta, writer_meta
from llem.store_address import LakeAddress, StoreAddress, parse_store_address
from llem.version import __version__

#: What every store function takes: a file path, a DuckLake address, or either as text.
StoreLike = str | Path | LakeAddress


def store_failure(store: StoreLike, error: BaseException, failed: str) -> StoreError:
    """One line for a DuckDB failure on either kind of store: what ``failed``, and why (a
    damaged file, a catalog that cannot be reached, ...)."""
    address = parse_store_address(store)
    if isinstance(address, LakeAddress):
        return lake_error(address, error, failed)
    return store_error(address, error, failed)


@contextmanager
def writing_store(
    store: StoreLike,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    create: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The store open for writing, with its write lock held, for the body.

    A DuckDB file's lock is DuckDB's own (one writer per file); a DuckLake's is the ingest
    lock in its catalog database (:func:`llem.store.lake.ingest_lock`). An existing lake is
    attached before the lock is taken (loading the extensions takes a few tenths of a
    second that no other writer should wait for: each statement reads the snapshot current
    when it runs, so nothing read before the lock is used); a new one is created under it,
    so that two first ingests cannot both create its tables.
    """
    address = parse_store_address(store)
    if isinstance(address, LakeAddress):
        try:
            attached: duckdb.DuckDBPyConnection | None = connect_lake(address, read_only=False)
        except NoStoreError:
            if not create:
                raise
            attached = None
        try:
            with ingest_lock(address, timeout_sec=lock_timeout_sec, notify=notify):
                conn = _open_lake(address, attached)
                attached = None  # _open_lake owns it now
                try:
                    yield conn
                finally:
                    conn.close()
        finally:
            if attached is not None:
                attached.close()
        return
    conn = open_store(address, lock_timeout_sec=lock_timeout_sec, notify=notify, create=create)
    try:
        yield conn
    finally:
        conn.close()


def _open_lake(address: LakeAddress, attached: duckdb.DuckDBPyConnection | None
               ) -> duckdb.DuckDBPyConnection:
    """A DuckLake open for writing (the caller holds the ingest lock): ``attached``, or a new
    lake when there is none yet; its tables created if new, refused if its schema version is
    not this llem's."""
    conn = attached if attached is not None else connect_lake(address, read_only=False,
                                                              create=True)
    try:
        version = read_store_version(conn, address)
        if version is None:
            _initialise(conn, primary_keys=False)
        elif version > STORE_SCHEMA_VERSION:
            raise newer_store_error(conn, address, version)
        elif version < STORE_SCHEMA_VERSION:
            raise StoreError(f"{address}: store schema version {version} is older than this "
                             f"llem's ({STORE_SCHEMA_VERSION}); DuckLake stores are not "
                             "migrated in place: copy it with 'llem store copy'")
    except duckdb.Error as exc:
        conn.close()
        raise lake_error(address, exc, "cannot open store") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def open_store(
    path: str | Path,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    create: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open a store for writing: create it if absent, migrate it if older.

    The returned connection holds the store's lock until it is closed.
    """
    path = Path(path)
    if not path.exists():
        if not create:
            raise NoStoreError(f"{path}: no store here")
        _create_store(path)
    conn = connect_waiting(path, read_only=False, timeout_sec=lock_timeout_sec, notify=notify)
    try:
        version = read_store_version(conn, path)
        if version is None:
            _initialise(conn)
        elif version > STORE_SCHEMA_VERSION:
            raise newer_store_error(conn, path, version)
        else:
            verify_store(conn, path)
            if version < STORE_SCHEMA_VERSION:
                migrate(conn, path, version, notify=notify)
    except BaseException:
        conn.close()
        raise
    return conn


#: Settings of every read-only connection, given when DuckDB opens the file. A read-only
#: store cannot be written; these keep SQL typed by users inside it: no file or network
#: access beyond the store (no ATTACH, COPY, EXPORT DATABASE, read_csv/read_text/glob on
#: paths, INSTALL), no extension loaded on demand, no Python variable reached by name, and
#: the configuration locked so that no SET, RESET or PRAGMA can undo any of it.
SEALED_CONFIG: dict[str, bool] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "python_enable_replacements": False,
    "lock_configuration": True,
}


def open_store_read_only(
    store: StoreLike,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    export_dir: Path | None = None,
    as_of: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open an existing store read-only and sealed (:data:`SEALED_CONFIG`).

    The connection can read the store's tables and views and nothing else, so it is the one
    that SQL typed by users runs on. ``export_dir`` is for ``llem export`` only: its own COPY
    statements may then write files under that folder, and nowhere else. ``as_of`` makes the
    tables and views answer as the store stood then (:func:`llem.store.as_of.parse_as_of`:
    a batch id on either kind of store; a snapshot id or a time on a DuckLake).
    """
    address = parse_store_address(store)
    pinned = parse_as_of(as_of) if as_of is not None else None
    if isinstance(address, LakeAddress):
        return _open_lake_read_only(address, export_dir, pinned)
    path = address
    if not path.is_file():
        raise NoStoreError(f"{path}: no store here (create one with 'llem ingest --store {path} "
                         "FILES...')")
    if pinned is not None and pinned.batch_id is None:
        raise StoreError(f"{path}: --as-of {as_of}: an embedded store answers --as-of BATCH_ID "
                         "(see 'llem store history'); snapshot ids and times name the "
                         "snapshots of a DuckLake store")
    config = dict(SEALED_CONFIG)
    if export_dir is not None:
        # Allowed folders can only be set once DuckDB runs, and before access is shut.
        for key in ("enable_external_access", "lock_configuration"):
            config.pop(key)
    conn = connect_waiting(
        path, read_only=True, timeout_sec=lock_timeout_sec, notify=notify, config=config
    )
    try:
        if export_dir is not None:
            _seal(conn, export_dir)
        _check_readable_version(conn, path)
        if pinned is not None and pinned.batch_id is not None:
            pin_as_of(conn, path, pinned.batch_id)
    except BaseException:
        conn.close()
        raise
    return conn


def _open_lake_read_only(address: LakeAddress, export_dir: Path | None,
                         pinned: AsOf | None) -> duckdb.DuckDBPyConnection:
    """A DuckLake attached read-only (at a snapshot, if pinned), then sealed. A batch is
    looked up in the lake as it is now, and the lake attached again at its snapshot."""
    batch_id = pinned.batch_id if pinned is not None else None
    conn = connect_lake(address, read_only=True,
                        snapshot=pinned.snapshot if pinned is not None else None,
                        snapshot_time=pinned.time if pinned is not None else None,
                        config={"python_enable_replacements": False})
    try:
        copied = False
        if batch_id is not None:
            snapshot, copied = _snapshot_of_batch(conn, address, batch_id)
            pin_lake(conn, address, snapshot)
        _seal(conn, export_dir, lake_data_path(conn))
        _check_readable_version(conn, address)
        if batch_id is not None and copied:
            # The copy's snapshot holds the batches copied after this one too: cut there.
            pin_as_of(conn, address, batch_id)
    except BaseException:
        conn.close()
        raise
    return conn


def _snapshot_of_batch(conn: duckdb.DuckDBPyConnection, address: LakeAddress,
                       batch_id: str) -> tuple[int, bool]:
    """The snapshot ``batch_id`` committed in, and whether a store copy brought it."""
    try:
        found = batch_commit(conn, batch_id)
    except duckdb.Error as exc:
        raise lake_error(address, exc, "cannot read store") from exc
    if found is None:
        raise StoreError(f"{address}: no ingest batch {batch_id!r} in this store (the full id, "
                         f"as 'llem store history --store {address}' lists it)")
    return found


def _seal(conn: duckdb.DuckDBPyConnection, export_dir: Path | None,
          data_path: str | None = None) -> None:
    """Shut file access (but for ``export_dir``, and a DuckLake's own ``data_path``, whose
    Parquet files are its tables) and lock the configuration."""
    folders = [str(Path(export_dir).resolve())] if export_dir is not None else []
    if data_path is not None:
        folders.append(data_path)
    if folders:
        conn.execute("SET allowed_directories = ?", [folders])
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def _check_readable_version(conn: duckdb.DuckDBPyConnection, store: StoreAddress) -> None:
    version = read_store_version(conn, store)
    if version is None:
        raise NoStoreError(f"{store}: empty store (nothing ingested yet)")
    if version > STORE_SCHEMA_VERSION:
        raise newer_store_error(conn, store, version)
    if version < STORE_SCHEMA_VERSION:
        raise StoreError(
            f"{store}: store schema version {version} is older than this llem's "
            f"({STORE_SCHEMA_VERSION}); migrate it with 'llem ingest --store {store}' "
            "(a backup copy is kept)"
        )


def is_sealed(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``conn`` is as :func:`open_store_read_only` opens it, with no export folder.

    Checked before any SQL typed by a user runs, so that such SQL never reaches a
    connection that can write or reach files, whoever opened it.
    """
    names = list(SEALED_CONFIG)
    settings = ", ".join(f"current_setting('{name}')" for name in names)
    rows = conn.execute(
        f"SELECT {settings}, current_setting('allowed_directories'), "
        "current_setting('allowed_paths'), current_setting('temp_directory'), "
        "(SELECT readonly FROM duckdb_databases() WHERE database_name = current_database()), "
        "(SELECT path FROM duckdb_databases() WHERE database_name = current_database()), "
        "(SELECT type FROM duckdb_databases() WHERE database_name = current_database())"
    ).fetchall()  # fetched to the end, so that no unfinished result blocks a relation
    if not rows:
        return False
    row = rows[0]
    values = row[: len(names)]
    folders, files, temp_dir, read_only, db_path, db_type = row[len(names):]
    if any(bool(value) != SEALED_CONFIG[name] for name, value in zip(names, values, strict=True)):
        return False
    if db_path is None or db_type not in ("duckdb", "ducklake"):
        return False
    # DuckDB itself allows the store's temporary folder, and files named after the attached
    # database (the file and its WAL; for a DuckLake, names made of its catalog address,
    # which no store file has).
    own_folders = {os.path.abspath(str(temp_dir)).rstrip("/")}
    own_files = {str(db_path), os.path.abspath(str(db_path))}
    if db_type == "ducklake":
        own_files |= {os.path.abspath(str(db_path).split(":", 1)[-1])}
        own_folders |= {os.path.abspath(lake_data_path(conn)).rstrip("/")}
    return (
        read_only is True
        and all(os.path.abspath(str(folder)).rstrip("/") in own_folders for folder in folders)
        and all(any(str(file) == own or str(file).startswith(f"{own}.wal") for own in own_files)
                for file in files)
    )


def read_store_version(conn: duckdb.DuckDBPyConnection, path: StoreLike) -> int | None:
    """The store schema version; None for an empty database. Other databases are refused."""
    try:
        tables = set(_table_names(conn))
        if not tables:
            return None
        if "store_meta" not in tables:
            raise StoreError(f"{path}: not an llem result store (it has no store_meta table)")
        rows = conn.execute(
            "SELECT value FROM store_meta WHERE key = 'store_schema_version'"
        ).fetchall()
    except duckdb.Error as exc:
        raise store_failure(path, exc, "cannot read store") from exc
    if not rows:
        raise StoreError(f"{path}: store_meta has no store_schema_version")
    try:
        return int(rows[0][0])
    except ValueError as exc:
        raise StoreError(f"{path}: store_schema_version {rows[0][0]!r} is not a number") from exc


def verify_store(conn: duckdb.DuckDBPyConnection, path: StoreLike) -> None:
    """Read every column of every table once, so that DuckDB checks each block's checksum;
    a damaged file is refused here rather than met halfway through later work.

    About 0.1 s for a 20 MB store of 5,000 results; run before a store is written or
    migrated, and before an export, never before a query.
    """
    try:
        for table in _table_names(conn):
            name = '"' + table.replace('"', '""') + '"'
            conn.execute(f"SELECT max(hash(COLUMNS(*))) FROM {name}").fetchall()
    except duckdb.Error as exc:
        raise store_failure(path, exc, "cannot read store") from exc


def _table_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return [row[0] for row in rows]


def store_meta(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every key/value of ``store_meta``."""
    return dict(conn.execute("SELECT key, value FROM store_meta ORDER BY key").fetchall())


def newer_store_error(conn: duckdb.DuckDBPyConnection, path: StoreLike, version: int
                      ) -> StoreError:
    """The error for a store written by a newer llem."""
    meta = store_meta(conn)
    writer = meta.get("llem_version", "an unknown version")
    return StoreError(
        f"{path}: store schema version {version} is newer than this llem supports "
        f"({STORE_SCHEMA_VERSION}); it was last written by llem {writer}: upgrade llem "
        f"(this is {__version__}) to use it"
    )


def _create_store(path: Path) -> None:
    """Build a complete store under a temporary name, then link it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.creating-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        conn = duckdb.connect(str(tmp))
        try:
            _initialise(conn)
        finally:
            conn.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it meanwhile: use theirs
        except OSError:
            if not path.exists():
                os.replace(tmp, path)
    except duckdb.Error as exc:
        raise StoreError(f"{path}: cannot create store: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)


def _initialise(conn: duckdb.DuckDBPyConnection, *, primary_keys: bool = True) -> None:
    """Create every table and view of the current schema in one transaction (a DuckLake has
    no primary keys: its writers keep ids unique under the ingest lock)."""
    conn.begin()
    try:
        for table in TABLES:
            for statement in create_table_sql(table, primary_key=primary_keys):
                conn.execute(statement)
        for statement in VIEWS.values():
            conn.execute(statement)
        now = datetime.now(UTC).isoformat()
        set_meta(
            conn,
            {
                "store_schema_version": str(STORE_SCHEMA_VERSION),
                "created_at": now,
                "created_by_llem_version": __version__,
                "created_with_duckdb_version": duckdb.__version__,
                **writer_meta(),
            },
        )
        conn.commit()
    except BaseException:
        rollback(conn)
        raise
