"""Copy a store's history into another store (``llem store copy``): file or DuckLake, either way.

A copy brings whole ingest batches, rows unchanged: every row keeps its id, its
``ingest_batch_id`` and every value, so a batch cited in the source names the same rows in
the destination. ``store_meta`` is not copied (the destination keeps its own). Batches the
destination already holds (same batch id) are skipped whole, so a second copy, or a copy
back, adds nothing. A row of a batch to be copied whose id the destination already holds,
from another batch, refuses the whole copy (one line naming it), whether its content is the
same or not: rows are never merged across batches, so every batch stays whole.

The source is read through a sealed read-only connection; the destination is written in one
transaction, holding its write lock, and checked before it commits: per copied batch, the
destination's row count of every table and sum of ``total_energy_j`` of ``results`` and
``process_results`` must equal the source's, else it rolls back. On a DuckLake destination
all copied batches land in one snapshot, whose commit ``extra_info`` lists their ids
(:func:`llem.store.lake.tag_copy`); ``--as-of BATCH_ID`` then reads that snapshot cut to the
batches committed up to BATCH_ID (see :func:`llem.store.lake.batch_commit`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from llem.errors import NoStoreError, StoreError, shown_name
from llem.store.as_of import BATCH_ORDER
from llem.store.connection import StoreLike, open_store_read_only, store_failure, writing_store
from llem.store.ddl import (
    DOCUMENTS,
    INGEST_BATCHES,
    PROCESS_RESULTS,
    RESULTS,
    STORE_META,
    TABLES,
    TIMESERIES,
    Table,
    batch_column,
)
from llem.store.lake import tag_copy
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify
from llem.store.write import ROW_KEYS, insert_arrow, rollback, set_meta, user_name, writer_meta
from llem.store_address import LakeAddress, StoreAddress, parse_store_address

#: The tables a copy brings, in the order it writes them (``store_meta`` stays behind).
COPIED_TABLES: tuple[Table, ...] = tuple(t for t in TABLES if t is not STORE_META)

#: Per table, the column a store holds each value of once, and the column that says whether
#: two rows under it have the same content (documents and time-series files are named by the
#: SHA-256 of their bytes, so their id is their content).
_IDS: dict[str, tuple[str, str]] = {
    DOCUMENTS.name: ("content_sha256", "content_sha256"),
    **{table.name: (key, "fingerprint") for _, table, key in ROW_KEYS},
    TIMESERIES.name: ("timeseries_sha256", "timeseries_sha256"),
}

#: Tables whose energy sums the pre-commit check compares, batch by batch.
_ENERGY_TABLES = (RESULTS.name, PROCESS_RESULTS.name)

#: Rows read from the source and inserted at a time.
_CHUNK_ROWS = 100_000


@dataclass
class CopyReport:
    """What a copy did (or, with ``dry_run``, would do)."""

    source: str
    destination: str
    dry_run: bool
    batches: list[str] = field(default_factory=list)  # copied, in commit order
    batches_present: int = 0  # already in the destination, skipped
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied

    def summary(self) -> str:
        """One line: batches and rows copied (or that would be), and batches skipped."""
        verb = "would copy" if self.dry_run else "copied"
        counts = ", ".join(f"{self.rows.get(t.name, 0)} {t.name}" for t in COPIED_TABLES
                           if t is not INGEST_BATCHES)
        line = (f"{verb} {len(self.batches)} batches ({counts} rows) from "
                f"{shown_name(self.source)} to {shown_name(self.destination)}")
        return f"{line}; {self.batches_present} batches already there"


def copy_store(
    source: StoreLike,
    destination: StoreLike,
    *,
    dry_run: bool = False,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> CopyReport:
    """Copy every batch of ``source`` that ``destination`` lacks into it, in one transaction.

    Args:
        source: the store read from (never written).
        destination: the store written; created if absent (not with ``dry_run``).
        dry_run: only say what would be copied (conflicts are still refused).
        lock_timeout_sec: how long to wait for either store's lock.
        notify: receives progress lines (tables copied, rows).
    """
    src_address, dst_address = parse_store_address(source), parse_store_address(destination)
    if _same_store(src_address, dst_address):
        raise StoreError(f"{shown_name(dst_address)}: the source and the destination of a copy "
                         "are the same store")
    report = CopyReport(str(src_address), str(dst_address), dry_run)
    src = open_store_read_only(src_address, lock_timeout_sec=lock_timeout_sec, notify=notify)
    try:
        batches = _batch_ids(src)
        if dry_run:
            _dry_run(src, dst_address, batches, report, lock_timeout_sec, notify)
            return report
        try:
            with writing_store(dst_address, lock_timeout_sec=lock_timeout_sec,
                               notify=notify) as dst:
                _copy(src, dst, batches, report, isinstance(dst_address, LakeAddress), notify)
        except duckdb.Error as exc:
            raise store_failure(dst_address, exc, "copy failed, nothing copied") from exc
    finally:
        src.close()
    return report


def _same_store(a: StoreAddress, b: StoreAddress) -> bool:
    """Whether two addresses name one store (a DuckLake is its catalog database)."""
    if isinstance(a, LakeAddress) and isinstance(b, LakeAddress):
        return (a.host, a.port, a.dbname) == (b.host, b.port, b.dbname)
    if isinstance(a, Path) and isinstance(b, Path):
        return a.resolve() == b.resolve()
    return False


def _batch_ids(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """The store's batch ids in commit order."""
    rows = conn.execute(f"SELECT batch_id FROM {INGEST_BATCHES.name} ORDER BY {BATCH_ORDER}")
    return [row[0] for row in rows.fetchall()]


def _in_batches(table: Table) -> str:
    """A WHERE clause keeping the rows of the batches bound as its one parameter."""
    return f"WHERE {batch_column(table)} IN (SELECT unnest(?::VARCHAR[]))"


def _dry_run(src: duckdb.DuckDBPyConnection, dst_address: StoreAddress, batches: list[str],
             report: CopyReport, lock_timeout_sec: float, notify: Notify | None) -> None:
    """Judge the copy against the destination as it is now, writing nothing."""
    dst = None
    if not (isinstance(dst_address, Path) and not dst_address.exists()):
        try:
            dst = open_store_read_only(dst_address, lock_timeout_sec=lock_timeout_sec,
                                       notify=notify)
        except NoStoreError:
            # A DuckLake catalog database with no store in it yet: the copy would create it.
            if not isinstance(dst_address, LakeAddress):
                raise
    if dst is None:
        report.batches = batches
    else:
        try:
            _plan(src, dst, batches, report)
        finally:
            dst.close()
    for table in COPIED_TABLES:
        report.rows[table.name] = sum(_counts(src, table, report.batches).values())


def _plan(src: duckdb.DuckDBPyConnection, dst: duckdb.DuckDBPyConnection, batches: list[str],
          report: CopyReport) -> None:
    """Fill in the batches to copy; refuse the copy if one of their ids is held."""
    held = set(_counts(dst, INGEST_BATCHES, batches))
    report.batches = [b for b in batches if b not in held]
    report.batches_present = len(batches) - len(report.batches)
    if report.batches:
        _refuse_held_ids(src, dst, report)


def _copy(src: duckdb.DuckDBPyConnection, dst: duckdb.DuckDBPyConnection, batches: list[str],
          report: CopyReport, lake: bool, notify: Notify | None) -> None:
    """Judge, write and check the copy in one transaction of ``dst``."""
    dst.begin()
    try:
        _plan(src, dst, batches, report)
        if not report.batches:
            rollback(dst)
            return
        for table in COPIED_TABLES:
            report.rows[table.name] = _copy_table(src, dst, table, report.batches)
            if notify is not None:
                notify(f"copied {report.rows[table.name]} rows of {table.name}")
        _check(src, dst, report)
        if notify is not None:
            notify(f"checked {len(report.batches)} batches: every table's rows and energy "
                   "sums match the source")
        set_meta(dst, writer_meta())
        if lake:
            tag_copy(dst, report.batches, user_name(), report.source)
        dst.commit()
    except BaseException:
        rollback(dst)
        raise


def _copy_table(src: duckdb.DuckDBPyConnection, dst: duckdb.DuckDBPyConnection, table: Table,
                batches: list[str]) -> int:
    """Insert the rows of ``batches`` from ``src`` into ``dst``, a chunk at a time."""
    columns = ", ".join(table.column_names)
    reader = src.execute(f"SELECT {columns} FROM {table.name} {_in_batches(table)}",
                         [batches]).to_arrow_reader(_CHUNK_ROWS)
    return sum(insert_arrow(dst, table, [pa.Table.from_batches([chunk])])
               for chunk in _chunks(reader))


def _chunks(reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _refuse_held_ids(src: duckdb.DuckDBPyConnection, dst: duckdb.DuckDBPyConnection,
                     report: CopyReport) -> None:
    """One line naming the first row of the batches to copy whose id ``dst`` holds."""
    for table in COPIED_TABLES:
        if table.name not in _IDS:
            continue
        key, content = _IDS[table.name]
        incoming = src.execute(
            f"SELECT DISTINCT {key} AS k, {content} AS c, ingest_batch_id AS b "
            f"FROM {table.name} {_in_batches(table)}", [report.batches]).to_arrow_table()
        if not incoming.num_rows:
            continue
        dst.register("_llem_copy_ids", incoming)
        try:
            found = dst.execute(
                f"SELECT i.k, i.b, t.ingest_batch_id, t.{content} = i.c FROM {table.name} t "
                "JOIN _llem_copy_ids i ON t." + key + " = i.k ORDER BY i.b, i.k LIMIT 1"
            ).fetchall()
        finally:
            dst.unregister("_llem_copy_ids")
        if found:
            ident, batch, held_in, same = found[0]
            how = ("with the same content, from another batch (a copy brings whole batches "
                   "and never merges rows across them)" if same else "with different content")
            raise StoreError(
                f"{shown_name(report.destination)}: {table.name}.{key} {ident!r} of batch "
                f"{batch} is already in the destination (batch {held_in}) {how}; nothing "
                "copied")


def _counts(conn: duckdb.DuckDBPyConnection, table: Table, batches: list[str]) -> dict[str, int]:
    """Rows of ``table`` per batch, for the batches that have any."""
    column = batch_column(table)
    rows = conn.execute(f"SELECT {column}, count(*) FROM {table.name} {_in_batches(table)} "
                        f"GROUP BY {column}", [batches]).fetchall()
    return dict(rows)


def _energy_sums(conn: duckdb.DuckDBPyConnection, table: Table,
                 batches: list[str]) -> dict[str, tuple[int, float]]:
    """Per batch, how many rows have a ``total_energy_j`` and their exact sum (``math.fsum``:
    the same whatever order the store returns them in)."""
    data = conn.execute(
        f"SELECT ingest_batch_id, total_energy_j FROM {table.name} {_in_batches(table)} "
        "AND total_energy_j IS NOT NULL", [batches]).to_arrow_table()
    values: dict[str, list[float]] = {}
    for batch, energy in zip(data.column(0).to_pylist(), data.column(1).to_pylist(),
                             strict=True):
        values.setdefault(batch, []).append(energy)
    return {batch: (len(v), math.fsum(v)) for batch, v in values.items()}


def _check(src: duckdb.DuckDBPyConnection, dst: duckdb.DuckDBPyConnection,
           report: CopyReport) -> None:
    """Refuse to commit unless each copied batch has, in ``dst``, the source's row counts
    and energy sums (read inside the open transaction)."""
    for table in COPIED_TABLES:
        checks = [("rows", _counts)]
        if table.name in _ENERGY_TABLES:
            checks.append(("(rows with energy, sum of total_energy_j)", _energy_sums))
        for what, measure in checks:
            want, got = measure(src, table, report.batches), measure(dst, table, report.batches)
            for batch in report.batches:
                if want.get(batch) != got.get(batch):
                    raise StoreError(
                        f"{shown_name(report.destination)}: copy check failed, nothing "
                        f"copied: {table.name} of batch {batch}: {what} {got.get(batch)} "
                        f"in the destination, {want.get(batch)} in the source")


