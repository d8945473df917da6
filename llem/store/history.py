"""The common questions, answered from the store: list results, show one, compare two, and
list the ingest batches (what ``--as-of`` can name).

Each returns a :class:`~llem.store.query.QueryResult`, so the CLI renders it in any output
format. A result can be named by its full id or any unambiguous prefix of it.
"""

from __future__ import annotations

from typing import Any

import duckdb

from llem.errors import StoreError
from llem.store.as_of import BATCH_ORDER
from llem.store.lake import CATALOG, is_lake_connection, names_batch
from llem.store.query import QueryResult, execute

#: Columns of ``llem results list``, most wanted first (a narrow terminal loses the last).
LIST_COLUMNS = (
    "result_id", "model_name", "batch_size", "energy_per_output_token_j",
    "throughput_tokens_per_sec", "energy_source", "precision", "num_cycles", "total_energy_j",
    "output_tokens", "source_schema_version", "start_time",
)

#: Fields compared, in display order; numbers get a difference and a ratio.
COMPARE_FIELDS = (
    "experiment_id", "model_name", "backend", "precision", "batch_size", "gpu_name",
    "num_processes", "source_schema_version", "config_hash", "energy_source",
    "total_energy_j", "adjusted_energy_j", "baseline_power_w", "total_tokens", "output_tokens",
    "energy_per_output_token_j", "throughput_tokens_per_sec", "measured_window_sec",
    "ttft_mean_ms", "itl_mean_ms", "thermal_throttle_detected", "start_time",
)

_NO_RATIO = {"batch_size", "num_processes"}

#: Columns of ``llem store history``: the batch, when and where it committed, what it added.
HISTORY_COLUMNS = (
    "batch_id", "committed_at", "user_name", "host", "llem_version", "files_new",
    "files_already_present", "files_refused", "results_added", "process_results_added",
    "timeseries_rows_added",
)


def list_results(
    conn: duckdb.DuckDBPyConnection,
    *,
    model: str | None = None,
    campaign: str | None = None,
    latest: bool = False,
    limit: int | None = 50,
) -> QueryResult:
    """Results, newest first; optionally one model or campaign, or only the latest per config."""
    where, params = [], []
    if model is not None:
        where.append("model_name = ?")
        params.append(model)
    if campaign is not None:
        where.append("campaign = ?")
        params.append(campaign)
    source = "latest_results" if latest else "results"
    sql = f"SELECT {', '.join(LIST_COLUMNS)} FROM {source}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY start_time DESC NULLS LAST, result_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return execute(conn, sql, params)


def batch_history(conn: duckdb.DuckDBPyConnection) -> QueryResult:
    """Every ingest batch, oldest first, in the commit order ``--as-of`` cuts in; on a
    DuckLake, led by the snapshot each batch committed as (what ``--as-of`` also takes;
    batches brought by one ``llem store copy`` share its snapshot)."""
    columns = ", ".join(f"b.{name}" for name in HISTORY_COLUMNS)
    if not is_lake_connection(conn):
        return execute(conn, f"SELECT {columns} FROM ingest_batches b ORDER BY {BATCH_ORDER}")
    return execute(
        conn,
        f"SELECT s.snapshot_id, {columns} FROM ingest_batches b "
        f"LEFT JOIN {CATALOG}.snapshots() s "
        f"ON {names_batch('s.commit_extra_info', 'b.batch_id')} "
        "ORDER BY s.snapshot_id NULLS LAST, b.committed_at, b.batch_id",
    )


def resolve_result_id(conn: duckdb.DuckDBPyConnection, ident: str) -> str:
    """The full result id for ``ident`` (exact, or a unique prefix)."""
    exact = execute(conn, "SELECT result_id FROM results WHERE result_id = ?", [ident]).rows
    if exact:
        return exact[0][0]
    like = ident.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    matches = execute(
        conn,
        "SELECT result_id FROM results WHERE result_id LIKE ? ESCAPE '\\' ORDER BY result_id "
        "LIMIT 6",
        [like],
    ).rows
    if len(matches) == 1:
        return matches[0][0]
    if not matches:
        raise StoreError(f"no result with id {ident!r} (see 'llem results list')")
    names = ", ".join(m[0] for m in matches[:5])
    more = ", ..." if len(matches) > 5 else ""
    raise StoreError(f"result id {ident!r} is ambiguous: {names}{more}")


def show_result(conn: duckdb.DuckDBPyConnection, ident: str) -> QueryResult:
    """Every column of one result as field/value rows (nested JSON columns included)."""
    result_id = resolve_result_id(conn, ident)
    row = execute(conn, "SELECT * FROM results WHERE result_id = ?", [result_id])
    values = row.rows[0]
    return QueryResult(
        ["field", "value"],
        ["VARCHAR", "VARCHAR"],
        list(zip(row.columns, values, strict=True)),
    )


def show_processes(conn: duckdb.DuckDBPyConnection, ident: str) -> QueryResult:
    """The process results of one result."""
    result_id = resolve_result_id(conn, ident)
    return execute(
        conn,
        "SELECT process_index, gpu_name, total_tokens, output_tokens, total_energy_j, "
        "energy_source, inference_time_sec, start_time, end_time FROM process_results "
        "WHERE result_id = ? ORDER BY process_index",
        [result_id],
    )


def compare_results(conn: duckdb.DuckDBPyConnection, first: str, second: str) -> QueryResult:
    """Two results side by side, with B - A and B / A for numbers and a mark for differences."""
    ids = [resolve_result_id(conn, first), resolve_result_id(conn, second)]
    fields = ", ".join(COMPARE_FIELDS)
    rows = {}
    for result_id in ids:
        found = execute(conn, f"SELECT {fields} FROM results WHERE result_id = ?", [result_id])
        rows[result_id] = dict(zip(found.columns, found.rows[0], strict=True))
    a, b = rows[ids[0]], rows[ids[1]]
    out: list[tuple[Any, ...]] = []
    for name in COMPARE_FIELDS:
        va, vb = a[name], b[name]
        diff: Any = None
        ratio: Any = None
        if _number(va) and _number(vb):
            diff = vb - va
            if name not in _NO_RATIO and va != 0:
                ratio = vb / va
        mark = "" if va == vb else "*"
        out.append((name, va, vb, diff, ratio, mark))
    return QueryResult(
        ["field", f"A: {ids[0]}", f"B: {ids[1]}", "B - A", "B / A", "differs"],
        ["VARCHAR", "VARCHAR", "VARCHAR", "DOUBLE", "DOUBLE", "VARCHAR"],
        out,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
