"""Run SQL against the store, read-only.

The store is opened with DuckDB's ``read_only`` flag, so no statement can change it; SQL
mistakes come back as one line naming DuckDB's complaint, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from llem.errors import LlemError
from llem.store.connection import Notify, open_store_read_only
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC


class QueryError(LlemError):
    """A SQL statement failed; the message is DuckDB's, on one line."""


@dataclass(frozen=True)
class QueryResult:
    """Column names, DuckDB type names and rows of one statement."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def run_query(
    store: str | Path,
    sql: str,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> QueryResult:
    """Execute ``sql`` on a read-only connection to ``store``."""
    conn = open_store_read_only(store, lock_timeout_sec=lock_timeout_sec, notify=notify)
    try:
        return execute(conn, sql)
    finally:
        conn.close()


def execute(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
            ) -> QueryResult:
    """Execute one statement (the last, if several) and fetch everything."""
    if not sql.strip():
        raise QueryError("empty SQL statement")
    try:
        cursor = conn.execute(sql, params) if params is not None else conn.execute(sql)
        if cursor.description is None:
            cursor.complete()
            return QueryResult([], [], [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {_one_line(exc)}") from exc
    return QueryResult(columns, types, rows)


def _one_line(exc: BaseException) -> str:
    """DuckDB's message without its caret diagram, on one line."""
    text = str(exc)
    kept = []
    for line in text.splitlines():
        if line.startswith("LINE ") or set(line.strip()) <= {"^"}:
            break
        kept.append(line.strip())
    return " ".join(part for part in kept if part) or text.strip()
