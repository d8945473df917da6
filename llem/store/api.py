"""The Python API for analysis: ``llem.open_store()`` and the handle it returns.

The handle reads the store the way ``llem query`` does, one decision in one place: the
connection is :func:`~llem.store.connection.open_store_read_only`'s sealed one, and every
statement passes :func:`~llem.store.query.read_only_statement` before it runs. Filters of
:meth:`Store.results` are bound as parameters, never formatted into the SQL.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from llem.constants import DEFAULT_STORE_PATH
from llem.errors import LlemError
from llem.store.connection import open_store_read_only
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC
from llem.store.query import QueryError, one_line, read_only_statement, require_sealed
from llem.store_address import LakeAddress, StoreAddress, parse_store_address

#: Filters of :meth:`Store.results`: keyword -> column of ``results``.
RESULT_FILTERS = {
    "model": "model_name",
    "campaign": "campaign",
    "run": "run_id",
    "source": "energy_source",
    "source_format": "source_format",
}


class Store:
    """A read-only handle on a result store; close it (or use ``with``) to let writers in.

    Args:
        path: the store: a DuckDB file (default ``results/llem.duckdb``, relative to the
            current folder) or a DuckLake address (``ducklake+postgres://...``).
        lock_timeout_sec: how long to wait while a writer holds the store.
        as_of: a batch id (``llem store history``): every table and view answers as the
            store stood right after that batch committed.
    """

    def __init__(self, path: str | Path | LakeAddress | None = None, *,
                 lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
                 as_of: str | None = None) -> None:
        self.path: StoreAddress = parse_store_address(
            path if path is not None else DEFAULT_STORE_PATH)
        self.as_of = as_of
        self._conn: duckdb.DuckDBPyConnection | None = open_store_read_only(
            self.path, lock_timeout_sec=lock_timeout_sec, as_of=as_of)

    def sql(self, query: str, params: list[Any] | dict[str, Any] | None = None
            ) -> duckdb.DuckDBPyRelation:
        """One read-only statement as a DuckDB relation (``.df()``, ``.pl()``, ``.arrow()``,
        ``.fetchall()``); anything else is refused with :class:`~llem.store.query.QueryError`
        before it runs. ``params`` are bound to ``?`` (or ``$name``) placeholders."""
        statement = read_only_statement(query)
        conn = self._open()
        require_sealed(conn)
        try:
            return conn.sql(statement.query, params=params)
        except duckdb.Error as exc:
            raise QueryError(f"SQL error: {one_line(exc)}") from exc

    def results(self, *, latest: bool = False, **filters: str | None) -> Any:
        """The ``results`` table (``latest_results`` with ``latest=True``) as a pandas
        DataFrame, oldest first; keyword filters (``model``, ``campaign``, ``run``,
        ``source`` = energy source, ``source_format``) keep rows equal to the value."""
        unknown = sorted(set(filters) - set(RESULT_FILTERS))
        if unknown:
            raise LlemError(f"unknown filter(s) {', '.join(unknown)}; filters are "
                            f"{', '.join(RESULT_FILTERS)}")
        where, params = [], []
        for name, value in filters.items():
            if value is not None:
                where.append(f"{RESULT_FILTERS[name]} = ?")
                params.append(value)
        query = f"SELECT * FROM {'latest_results' if latest else 'results'}"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY start_time NULLS LAST, result_id"
        relation = self.sql(query, params)
        try:
            import pandas  # noqa: F401  (DuckDB's .df() needs it)
        except ImportError as exc:
            raise LlemError("Store.results() returns a pandas DataFrame and pandas is not "
                            "installed; use Store.sql(...).arrow() or install pandas") from exc
        return relation.df()

    def close(self) -> None:
        """Close the connection (relations from :meth:`sql` cannot be read after this)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self._conn is not None else "closed"
        pinned = f", as of batch {self.as_of}" if self.as_of is not None else ""
        return f"<llem store {self.path} ({state}, read-only{pinned})>"

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            raise LlemError(f"{self.path}: this store handle is closed")
        return self._conn


def open_store(path: str | Path | LakeAddress | None = None, *,
               lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
               as_of: str | None = None) -> Store:
    """A read-only, sealed handle on the store at ``path`` (default ``results/llem.duckdb``);
    with ``as_of`` (a batch id), as the store stood right after that batch committed."""
    return Store(path, lock_timeout_sec=lock_timeout_sec, as_of=as_of)
