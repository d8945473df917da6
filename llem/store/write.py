"""The low-level writes into a store: rows through Arrow, ``store_meta`` keys, and which rows
of a file are new.

Both the ingest transaction (:mod:`llem.store.ingest`) and the migration steps
(:mod:`llem.store.migrations`) write through these functions, on a connection they hold;
nothing here opens, begins or commits anything.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Container, Mapping
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa

from llem.store.ddl import CYCLE_STATISTICS, DOCUMENTS, PROCESS_RESULTS, RESULTS, Table, arrow_table
from llem.store.rows import RowSet
from llem.version import __version__

Row = dict[str, Any]

#: The row kinds of a :class:`~llem.store.rows.RowSet` that a store holds once per id: the
#: attribute, its table and its id column.
ROW_KEYS: tuple[tuple[str, Table, str], ...] = (
    ("results", RESULTS, "result_id"),
    ("process_results", PROCESS_RESULTS, "process_result_id"),
    ("cycle_statistics", CYCLE_STATISTICS, "experiment_id"),
)


def first_rows(
    rows: RowSet,
    seen: dict[str, dict[str, str]],
    *,
    held: Mapping[str, Mapping[str, str]] | None = None,
    skip_results: Container[str] = (),
) -> tuple[dict[str, list[Row]], list[tuple[str, str]]]:
    """The rows of one file whose id is not held yet, by kind; the first row under an id wins.

    Args:
        rows: the file's rows.
        seen: ``{kind: {id: fingerprint}}`` of rows kept so far; each kept row is added.
        held: ids held elsewhere (the store), never kept again and not added to ``seen``.
        skip_results: result ids whose rows are left out (and not recorded).

    Returns the kept rows by kind, and ``(kind, id)`` for each row left out because its id
    is held with a different fingerprint.
    """
    kept: dict[str, list[Row]] = {}
    differing: list[tuple[str, str]] = []
    for kind, _, key in ROW_KEYS:
        kept[kind] = []
        known = seen.setdefault(kind, {})
        elsewhere = held.get(kind, {}) if held is not None else {}
        for row in getattr(rows, kind):
            ident = row[key]
            if ident in known or ident in elsewhere:
                earlier = known[ident] if ident in known else elsewhere[ident]
                if earlier != row["fingerprint"]:
                    differing.append((kind, ident))
                continue
            if row.get("result_id") in skip_results:
                continue
            known[ident] = row["fingerprint"]
            kept[kind].append(row)
    return kept, differing


def insert_rowsets(
    conn: duckdb.DuckDBPyConnection, rowsets: list[RowSet], *, with_documents: bool
) -> dict[str, int]:
    """Insert the rows of many files, one Arrow table per store table; returns row counts."""
    counts = {}
    tables: list[tuple[Table, list[Row]]] = [
        (RESULTS, [r for rs in rowsets for r in rs.results]),
        (PROCESS_RESULTS, [r for rs in rowsets for r in rs.process_results]),
        (CYCLE_STATISTICS, [r for rs in rowsets for r in rs.cycle_statistics]),
    ]
    if with_documents:
        tables.insert(0, (DOCUMENTS, [rs.document for rs in rowsets]))
    for table, rows in tables:
        counts[table.name] = insert_arrow(conn, table, [arrow_table(table, rows)] if rows else [])
    return counts


def insert_arrow(conn: duckdb.DuckDBPyConnection, table: Table, parts: list[pa.Table]) -> int:
    """Insert Arrow tables with the declared columns of ``table``; returns the row count."""
    parts = [p for p in parts if p.num_rows]
    if not parts:
        return 0
    data = pa.concat_tables(parts) if len(parts) > 1 else parts[0]
    view = f"_llem_incoming_{table.name}"
    conn.register(view, data)
    try:
        conn.execute(f"INSERT INTO {table.name} BY NAME SELECT * FROM {view}")
    finally:
        conn.unregister(view)
    return data.num_rows


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if any is still open: a commit that failed (a
    DuckLake whose catalog refused it) has already ended it, and a second error from the
    rollback would hide the first."""
    with contextlib.suppress(duckdb.TransactionException):
        conn.rollback()


def set_meta(conn: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    """Insert or replace ``store_meta`` keys (delete, then insert: a DuckLake has no keys
    for INSERT OR REPLACE to find; called inside the writer's transaction)."""
    for key, value in values.items():
        conn.execute("DELETE FROM store_meta WHERE key = ?", [key])
        conn.execute("INSERT INTO store_meta (key, value) VALUES (?, ?)", [key, value])


def user_name() -> str | None:
    """The operating-system user running this process, as batches and snapshots record it
    (None where there is no passwd entry, as in some containers)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def writer_meta() -> dict[str, str]:
    """Keys recording who last wrote the store."""
    return {
        "llem_version": __version__,
        "duckdb_version": duckdb.__version__,
        "last_written_at": datetime.now(UTC).isoformat(),
    }
