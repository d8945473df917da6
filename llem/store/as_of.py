"""The store as it stood right after one ingest batch committed (``--as-of BATCH_ID``).

Every row of every table but ``store_meta`` names the batch that added it
(``ingest_batch_id``; ``batch_id`` in ``ingest_batches``), and rows are never changed or
removed afterwards, so the store as of batch X is every row of the batches committed up to and
including X. :func:`pin_as_of` shows exactly that to the SQL that runs on a sealed connection
afterwards: temporary views named like the tables, each filtering the store's table by batch,
and temporary copies of the store's views, computed over those. DuckDB looks an unqualified
name (and one qualified by ``main.``) up in the ``temp`` catalog first, so ``FROM results``,
``FROM main.results`` and ``FROM latest_results`` all see the pinned state.

This is a convenience for citing results, not a boundary: a name qualified by the store's own
catalog (``llem.main.results`` for ``llem.duckdb``, the file's stem) still reads the whole
table. The whole store is readable by whoever can run a query anyway; the pinned views make
the usual queries answer for one state of it, and SQL that names the catalog opts out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from llem.errors import StoreError
from llem.store.ddl import INGEST_BATCHES, TABLES, VIEWS, batch_column, sql_string
from llem.store.lock import store_error


@dataclass(frozen=True)
class AsOf:
    """What ``--as-of`` names: exactly one of an ingest batch, a DuckLake snapshot id, or a
    time (the last snapshot committed at or before it)."""

    batch_id: str | None = None
    snapshot: int | None = None
    time: datetime | None = None


def parse_as_of(text: str) -> AsOf:
    """``--as-of``'s value: digits are a snapshot id, an ISO 8601 time with its separators
    (``2026-12-01T09:30:00+01:00``, ``2026-12-01``) is a time (UTC when no offset is given),
    anything else a batch id (whose leading ``20261201T093000Z`` is not read as a time)."""
    text = text.strip()
    if not text:
        raise StoreError("--as-of: empty value (give a batch id, a snapshot id or a time)")
    if text.isdigit():
        return AsOf(snapshot=int(text))
    if "-" not in text[:8]:
        return AsOf(batch_id=text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return AsOf(batch_id=text)
    return AsOf(time=moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC))


#: Commit order of ingest batches: the order ``llem store history`` lists and ``--as-of``
#: cuts in (the store's single writer commits them one after another; the id breaks a tie).
BATCH_ORDER = "committed_at, batch_id"

#: Tables shown whole under ``--as-of`` (metadata, not results of any batch).
UNFILTERED = ("store_meta",)


def pin_as_of(conn: duckdb.DuckDBPyConnection, path: str | Path, batch_id: str) -> None:
    """Make ``conn`` answer as the store stood right after ``batch_id`` committed.

    ``batch_id`` must be a batch id exactly as ``ingest_batches`` holds it (no prefix: a cited
    id must keep naming the same batch as the store grows); an unknown one is one line.
    """
    try:
        catalog = _quoted(conn.execute("SELECT current_database()").fetchone()[0])
        known = conn.execute(
            f"SELECT count(*) FROM {catalog}.main.{INGEST_BATCHES.name} WHERE batch_id = ?",
            [batch_id],
        ).fetchone()[0]
    except duckdb.Error as exc:
        raise store_error(path, exc, "cannot read store") from exc
    if not known:
        raise StoreError(f"{path}: no ingest batch {batch_id!r} in this store (the full id, "
                         f"as 'llem store history --store {path}' lists it)")
    cut = sql_string(batch_id)
    included = (
        f"SELECT b.batch_id FROM {catalog}.main.{INGEST_BATCHES.name} b, "
        f"(SELECT committed_at, batch_id FROM {catalog}.main.{INGEST_BATCHES.name} "
        f"WHERE batch_id = {cut}) c "
        "WHERE b.committed_at < c.committed_at "
        "OR (b.committed_at = c.committed_at AND b.batch_id <= c.batch_id)"
    )
    try:
        for table in TABLES:
            if table.name in UNFILTERED:
                continue
            column = batch_column(table)
            conn.execute(
                f"CREATE TEMP VIEW {table.name} AS SELECT * FROM {catalog}.main.{table.name} "
                f"WHERE {column} IN ({included})"
            )
        for name, statement in VIEWS.items():
            prefix = f"CREATE VIEW {name} AS "
            if not statement.startswith(prefix):  # pragma: no cover - ddl.py declares them so
                raise StoreError(f"view {name}: unexpected declaration")
            # Its unqualified table names now resolve to the temporary views above.
            conn.execute(f"CREATE TEMP VIEW {name} AS " + statement[len(prefix):])
    except duckdb.Error as exc:
        raise store_error(path, exc, "cannot read store") from exc



def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

