"""Run SQL typed by users against the store: one statement that only reads, on a sealed
connection.

Three controls of DuckDB's own keep such SQL inside the store, each enough for part of it and
checked before anything runs:

* the connection (:func:`~llem.store.connection.open_store_read_only`) is read-only, reaches
  no file or network beyond the store, loads no extension and has its configuration locked;
* DuckDB's parser splits the SQL, and exactly one statement is run per call, so nothing can
  hide after a ``;`` (behind a comment or inside a string);
* that statement's type, as DuckDB's parser gives it, must be one that only reads: SELECT
  (WITH, DESCRIBE, SHOW and SUMMARIZE parse as SELECT), EXPLAIN of a SELECT, or a PRAGMA
  from :data:`READ_ONLY_PRAGMAS`;
* no name in it may reach past the tables into a DuckLake's machinery (:func:`_outside`): the
  postgres extension's functions run SQL on the catalog's server, and DuckLake's maintenance
  functions delete files, neither of which a read-only attach stops.

A refusal or an SQL mistake comes back as one line (a :class:`QueryError`), never as a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from llem.errors import LlemError
from llem.store.connection import StoreLike, is_sealed, open_store_read_only
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify

#: PRAGMAs that only report. Every other one changes a setting or state and is refused.
READ_ONLY_PRAGMAS = frozenset({
    "collations", "database_list", "database_size", "functions", "metadata_info", "platform",
    "show_databases", "show_tables", "show_tables_expanded", "storage_info", "table_info",
    "user_agent", "version",
})

#: Names no user SQL may use. DuckLake's attached catalog (``__ducklake_metadata_llem``), the
#: postgres extension's functions (``postgres_query`` runs any SQL on the catalog's server)
#: and DuckLake's own functions (``ducklake_*``) by prefix; and DuckLake's per-catalog
#: maintenance macros by name, which delete files or change options even on a read-only
#: attach. ``llem.snapshots()``, ``llem.table_info()`` and ``llem.table_changes()`` read.
OUTSIDE_PREFIXES = ("__ducklake_metadata", "postgres_", "ducklake_")
OUTSIDE_NAMES = frozenset({
    "add_data_files", "cleanup_old_files", "delete_orphaned_files", "expire_snapshots",
    "flush_inlined_data", "merge_adjacent_files", "rewrite_data_files", "set_commit_message",
    "set_option",
})

ALLOWED = "SELECT, WITH, EXPLAIN SELECT, DESCRIBE, SHOW, SUMMARIZE or a read-only PRAGMA"


class QueryError(LlemError):
    """A SQL statement was refused or failed; the message is on one line."""


@dataclass(frozen=True)
class QueryResult:
    """Column names, DuckDB type names and rows of one statement."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


def run_query(
    store: StoreLike,
    sql: str,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    as_of: str | None = None,
) -> QueryResult:
    """Execute one read-only statement ``sql`` on a sealed connection to ``store``; with
    ``as_of`` (a batch id), over the store as it stood right after that batch committed."""
    read_only_statement(sql)  # refused before the store is even opened
    conn = open_store_read_only(store, lock_timeout_sec=lock_timeout_sec, notify=notify,
                                as_of=as_of)
    try:
        return execute(conn, sql)
    finally:
        conn.close()


def execute(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
            ) -> QueryResult:
    """Execute the one statement of ``sql``, if it only reads, and fetch everything.

    ``conn`` must be sealed (opened by :func:`~llem.store.connection.open_store_read_only`);
    anything else is refused before ``sql`` runs.
    """
    statement = read_only_statement(sql)
    require_sealed(conn)
    try:
        cursor = conn.execute(statement, params) if params is not None else conn.execute(statement)
        if cursor.description is None:
            cursor.complete()
            return QueryResult([], [], [])
        columns = [d[0] for d in cursor.description]
        types = [str(d[1]) for d in cursor.description]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {one_line(exc)}") from exc
    return QueryResult(columns, types, rows)


def require_sealed(conn: duckdb.DuckDBPyConnection) -> None:
    """Refuse, before any user SQL runs, a connection that is not sealed (one that could write
    or reach files), whoever opened it."""
    try:
        sealed = is_sealed(conn)
    except duckdb.Error as exc:
        raise QueryError(f"cannot check the connection: {one_line(exc)}") from exc
    if not sealed:
        raise QueryError(
            "refusing to run SQL on a connection that can write or reach files; open the store "
            "with llem.store.connection.open_store_read_only (nothing was run)"
        )


def read_only_statement(sql: str) -> duckdb.Statement:
    """The single statement of ``sql`` as DuckDB parses it; :class:`QueryError` unless it
    only reads (see the module docstring)."""
    if not sql.strip():
        raise QueryError("empty SQL statement")
    statements = _parse(sql)
    if not statements:
        raise QueryError("no SQL statement (only comments)")
    if len(statements) > 1:
        raise QueryError(
            f"the SQL holds {len(statements)} statements; llem query runs exactly one per call "
            "(nothing was run)"
        )
    statement = statements[0]
    refused = _outside(statement.query) or _refusal(statement)
    if refused is not None:
        raise QueryError(
            f"llem query is read-only: {refused} is refused (allowed: one {ALLOWED} over the "
            "store's tables and views; 'llem export' writes files); nothing was run"
        )
    return statement


def _refusal(statement: duckdb.Statement) -> str | None:
    """What in ``statement`` does more than read; None if it only reads."""
    kind = statement.type
    words = _words(statement.query)
    first = words[0][1].upper() if words else kind.name
    named = first if first == kind.name else f"{first} (a {kind.name} statement)"
    if kind == duckdb.StatementType.SELECT:
        return None
    if kind == duckdb.StatementType.PRAGMA:
        name = words[1][1].strip('"').lower() if len(words) > 1 else ""
        return None if name in READ_ONLY_PRAGMAS else f"PRAGMA {name}"
    if kind == duckdb.StatementType.EXPLAIN:
        inner = _parse(_explained(statement.query, words))
        if len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT:
            return None
        return "EXPLAIN of a statement other than SELECT (EXPLAIN ANALYZE would run it)"
    return named


def _outside(query: str) -> str | None:
    """The first name in ``query`` that reaches past the store's tables, as a refusal."""
    for _, word in _words(query):
        name = word.strip('"').lower()
        if name.startswith(OUTSIDE_PREFIXES) or name in OUTSIDE_NAMES:
            return f"{word} (it reaches past the store's tables)"
    return None


def _explained(query: str, words: list[tuple[int, str]]) -> str:
    """The statement after ``EXPLAIN``, ``EXPLAIN ANALYZE`` or ``EXPLAIN (options)``."""
    at = 1
    if at < len(words) and words[at][1].upper() == "ANALYZE":
        at += 1
    elif at < len(words) and words[at][1] == "(":
        depth = 0
        while at < len(words):
            depth += {"(": 1, ")": -1}.get(words[at][1], 0)
            at += 1
            if depth == 0:
                break
    if at >= len(words):
        return ""
    return query.encode()[words[at][0]:].decode()


def _words(query: str) -> list[tuple[int, str]]:
    """(UTF-8 byte offset, text) of each token of ``query`` but comments, by DuckDB's tokenizer."""
    data = query.encode()
    try:
        tokens = duckdb.tokenize(query)
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {one_line(exc)}") from exc
    ends = [offset for offset, _ in tokens[1:]] + [len(data)]
    return [
        (offset, data[offset:end].decode(errors="replace").strip())
        for (offset, kind), end in zip(tokens, ends, strict=True)
        if kind != duckdb.token_type.comment
    ]


def _parse(sql: str) -> list[duckdb.Statement]:
    """DuckDB's statements of ``sql``; a parser error as one line."""
    if not sql.strip():
        return []
    try:
        return list(duckdb.extract_statements(sql))
    except duckdb.Error as exc:
        raise QueryError(f"SQL error: {one_line(exc)}") from exc


def one_line(exc: BaseException) -> str:
    """DuckDB's message without its caret diagram, on one line."""
    text = str(exc)
    kept = []
    for line in text.splitlines():
        if line.startswith("LINE ") or set(line.strip()) <= {"^"}:
            break
        kept.append(line.strip())
    return " ".join(part for part in kept if part) or text.strip()
