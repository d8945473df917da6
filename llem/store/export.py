"""Export the store's tables as Parquet or CSV files for other tools.

Parquet: ``results/`` is hive-partitioned by ``source_schema_version`` and ``model_name``
(``results/source_schema_version=3.0.0/model_name=<model>/*.parquet``, ``/`` in a model name
written as ``%2F``, a missing model as ``__HIVE_DEFAULT_PARTITION__``); the partition columns
are kept inside the files too, so their exact text survives the round trip through
``read_parquet(..., hive_partitioning=true)``. Every other table is one file. CSV: one file
per table, nested data as JSON text.

The export is written into a temporary folder next to ``out`` and renamed into place, so an
interrupted export leaves no half-written folder behind. A place that cannot be written, or
a damaged store, is refused before anything is written. The store is opened read-only and
sealed like ``llem query``'s, except that DuckDB lets it write under that temporary folder;
only the fixed statements below run on it, never SQL typed by a user.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from llem.errors import StoreError, shown_name
from llem.store import EXPORT_FORMATS
from llem.store.connection import StoreLike, open_store_read_only, verify_store
from llem.store.ddl import RESULTS, TABLES
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify

PARTITION_COLUMNS = ("source_schema_version", "model_name")


@dataclass
class ExportReport:
    """Where the export went and how many rows each table had."""

    out_dir: Path
    rows: dict[str, int] = field(default_factory=dict)


def export_store(
    store: StoreLike,
    out_dir: str | Path,
    fmt: str,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> ExportReport:
    """Write every table of ``store`` under ``out_dir`` (absent or empty) as ``fmt``."""
    if fmt not in EXPORT_FORMATS:
        raise StoreError(f"unknown export format {fmt!r} (choose from parquet, csv)")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StoreError(f"{out}: exists and is not an empty folder; choose a new --out")
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise StoreError(
            f"{shown_name(out)}: cannot write the export there: {exc.strerror or exc}"
        ) from exc
    report = ExportReport(out)
    try:
        conn = open_store_read_only(
            store, lock_timeout_sec=lock_timeout_sec, notify=notify, export_dir=tmp
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        verify_store(conn, store)
        for table in TABLES:
            count = _run(conn, f"SELECT count(*) FROM {table.name}")[0][0]
            report.rows[table.name] = count
            if fmt == "parquet" and table is RESULTS:
                if count:
                    target = tmp / table.name
                    partitions = ", ".join(PARTITION_COLUMNS)
                    _run(
                        conn,
                        f"COPY (SELECT * FROM {table.name} ORDER BY result_id) TO "
                        f"{_literal(target)} (FORMAT parquet, PARTITION_BY ({partitions}), "
                        "WRITE_PARTITION_COLUMNS true)",
                    )
            elif fmt == "parquet":
                target = tmp / f"{table.name}.parquet"
                _run(conn, f"COPY {table.name} TO {_literal(target)} (FORMAT parquet)")
            else:
                target = tmp / f"{table.name}.csv"
                _run(conn, f"COPY {table.name} TO {_literal(target)} (FORMAT csv, HEADER)")
        conn.close()
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    except BaseException:
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _run(conn: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    """Rows of one of the export's own statements; a DuckDB failure as one line."""
    try:
        return conn.execute(sql).fetchall()
    except duckdb.Error as exc:
        raise StoreError(f"export failed: {' '.join(str(exc).split())}") from exc


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"
