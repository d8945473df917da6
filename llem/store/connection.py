"""Create, check and open result stores.

A new store is built under a temporary name and linked into place, so a store file either
does not exist or holds the full current schema. Opening for writing checks the store's
schema version: an older store is migrated forward (see :mod:`llem.store.migrations`); a
store newer than this llem is refused with a message saying so, before anything is touched,
and every table of a store opened for writing is read through once first, so that a damaged
file is refused (one line saying so) before anything is written into it or reported ready.
Opening read-only never changes the store, and seals the connection so that SQL run on it
reaches nothing but the store (see :data:`SEALED_CONFIG`).
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from llem.errors import StoreError
from llem.store.as_of import pin_as_of
from llem.store.ddl import STORE_SCHEMA_VERSION, TABLES, VIEWS, create_table_sql
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify, connect_waiting, store_error
from llem.store.migrations import migrate
from llem.store.write import set_meta, writer_meta
from llem.version import __version__


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
            raise StoreError(f"{path}: no store here")
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
    path: str | Path,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    export_dir: Path | None = None,
    as_of: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open an existing store read-only and sealed (:data:`SEALED_CONFIG`).

    The connection can read the store's tables and views and nothing else, so it is the one
    that SQL typed by users runs on. ``export_dir`` is for ``llem export`` only: its own COPY
    statements may then write files under that folder, and nowhere else. ``as_of`` (a batch
    id) makes the tables and views answer as the store stood right after that batch
    committed (:func:`llem.store.as_of.pin_as_of`).
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no store here (create one with 'llem ingest --store {path} "
                         "FILES...')")
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
            conn.execute("SET allowed_directories = ?", [[str(Path(export_dir).resolve())]])
            conn.execute("SET enable_external_access = false")
            conn.execute("SET lock_configuration = true")
        version = read_store_version(conn, path)
        if version is None:
            raise StoreError(f"{path}: empty store (nothing ingested yet)")
        if version > STORE_SCHEMA_VERSION:
            raise newer_store_error(conn, path, version)
        if version < STORE_SCHEMA_VERSION:
            raise StoreError(
                f"{path}: store schema version {version} is older than this llem's "
                f"({STORE_SCHEMA_VERSION}); migrate it with 'llem ingest --store {path}' "
                "(a backup copy is kept)"
            )
        if as_of is not None:
            pin_as_of(conn, path, as_of)
    except BaseException:
        conn.close()
        raise
    return conn


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
        "(SELECT path FROM duckdb_databases() WHERE database_name = current_database())"
    ).fetchall()  # fetched to the end, so that no unfinished result blocks a relation
    if not rows:
        return False
    row = rows[0]
    values, (folders, files, temp_dir, read_only, db_path) = row[: len(names)], row[len(names):]
    if any(bool(value) != SEALED_CONFIG[name] for name, value in zip(names, values, strict=True)):
        return False
    # DuckDB itself allows the store's temporary folder and its own files.
    own_folder = str(temp_dir).rstrip("/")
    return (
        read_only is True
        and all(str(folder).rstrip("/") == own_folder for folder in folders)
        and db_path is not None
        and all(str(file) == db_path or str(file).startswith(f"{db_path}.wal") for file in files)
    )


def read_store_version(conn: duckdb.DuckDBPyConnection, path: str | Path) -> int | None:
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
        raise store_error(path, exc, "cannot read store") from exc
    if not rows:
        raise StoreError(f"{path}: store_meta has no store_schema_version")
    try:
        return int(rows[0][0])
    except ValueError as exc:
        raise StoreError(f"{path}: store_schema_version {rows[0][0]!r} is not a number") from exc


def verify_store(conn: duckdb.DuckDBPyConnection, path: str | Path) -> None:
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
        raise store_error(path, exc, "cannot read store") from exc


def _table_names(conn: duckdb.DuckDBPyConnection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    ).fetchall()
    return [row[0] for row in rows]


def store_meta(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every key/value of ``store_meta``."""
    return dict(conn.execute("SELECT key, value FROM store_meta ORDER BY key").fetchall())


def newer_store_error(conn: duckdb.DuckDBPyConnection, path: Path, version: int) -> StoreError:
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


def _initialise(conn: duckdb.DuckDBPyConnection) -> None:
    """Create every table and view of the current schema in one transaction."""
    conn.begin()
    try:
        for table in TABLES:
            for statement in create_table_sql(table):
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
        conn.rollback()
        raise
