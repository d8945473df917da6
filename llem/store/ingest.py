"""Ingest result files into the store: validate, upgrade, refuse or add, in one transaction.

The work is split so the store's lock is held only briefly: files are read, validated,
converted to rows and their time series read *before* the lock is taken; then, holding the
lock, the incoming ids are looked up in the store, each file is accepted or refused as a
whole, and everything accepted is inserted through Arrow tables in one transaction. A file:

* whose bytes are already stored is *already present* (re-ingesting is a no-op);
* that brings a row under an id the store (or an earlier file of the call) holds with
  different content is *refused*; the same row met again is simply not added twice;
* that is not a valid result of any known format is *refused* with the loader's reason.

With ``strict`` any refusal refuses the whole call. The receipt (for the workflow's ingest
rule) is written atomically, after the commit.
"""

from __future__ import annotations

import gc
import getpass
import hashlib
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from llem import __version__
from llem.columns import table_from_columns
from llem.errors import LlemError, ResultLoadError, StoreError
from llem.io import write_json_atomic
from llem.loader import LoadedResult, decode_document, parse_document
from llem.store.connection import open_store, open_store_read_only, set_meta, writer_meta
from llem.store.ddl import (
    CYCLE_STATISTICS,
    DOCUMENTS,
    INGEST_BATCHES,
    PROCESS_RESULTS,
    RESULTS,
    TIMESERIES,
    Table,
    arrow_table,
)
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC
from llem.store.rows import Provenance, RowSet, build_rows
from llem.store.timeseries import read_timeseries_file, timeseries_rows

Notify = Callable[[str], None]

NEW = "new"
ALREADY_PRESENT = "already_present"
REFUSED = "refused"


@dataclass
class FileOutcome:
    """What happened to one file."""

    path: str
    status: str
    reason: str | None = None
    content_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "content_sha256": self.content_sha256,
            "reason": self.reason,
        }


@dataclass
class IngestReport:
    """Outcome of one ingest call."""

    store: str
    batch_id: str | None
    strict: bool
    files: list[FileOutcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    results_added: int = 0
    process_results_added: int = 0
    cycle_statistics_added: int = 0
    timeseries_rows_added: int = 0
    committed_at: datetime | None = None

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> bool:
        """True when nothing was refused (the CLI's exit status 0)."""
        return self.count(REFUSED) == 0

    def summary(self) -> str:
        """One line: new, already present, refused, and rows added."""
        line = (
            f"{self.count(NEW)} new, {self.count(ALREADY_PRESENT)} already present, "
            f"{self.count(REFUSED)} refused"
        )
        if self.skipped:
            line += f", {len(self.skipped)} non-result JSON skipped"
        return (
            f"{line} ({self.results_added} results, {self.process_results_added} process "
            f"results, {self.timeseries_rows_added} time-series rows added to {self.store})"
        )

    def receipt(self) -> dict[str, Any]:
        """The JSON receipt: batch id, counts and every file."""
        return {
            "store": self.store,
            "batch_id": self.batch_id,
            "committed_at": self.committed_at.isoformat() if self.committed_at else None,
            "llem_version": __version__,
            "strict": self.strict,
            "counts": {
                "new": self.count(NEW),
                "already_present": self.count(ALREADY_PRESENT),
                "refused": self.count(REFUSED),
                "skipped_non_result": len(self.skipped),
                "results_added": self.results_added,
                "process_results_added": self.process_results_added,
                "cycle_statistics_added": self.cycle_statistics_added,
                "timeseries_rows_added": self.timeseries_rows_added,
            },
            "files": [f.to_json() for f in self.files],
            "skipped": self.skipped,
        }


@dataclass
class _Candidate:
    """A file that loaded; its rows wait for the store's verdict."""

    outcome: FileOutcome
    rows: RowSet
    timeseries: list[tuple[str, pa.Table]] = field(default_factory=list)  # (sha256, rows)


def ingest_paths(
    paths: Sequence[str | Path],
    store: str | Path,
    *,
    strict: bool = False,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
    receipt_path: str | Path | None = None,
) -> IngestReport:
    """Ingest files and folders (``*.json`` found recursively) into ``store``."""
    with _gc_paused():
        return _ingest(paths, store, strict, lock_timeout_sec, notify, receipt_path)


def _ingest(
    paths: Sequence[str | Path],
    store: str | Path,
    strict: bool,
    lock_timeout_sec: float,
    notify: Notify | None,
    receipt_path: str | Path | None,
) -> IngestReport:
    started_at = datetime.now(UTC)
    batch_id = f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    report = IngestReport(store=str(store), batch_id=None, strict=strict)
    files = _read_all(discover(paths, report), report)
    known = _known_documents(store, [sha for _, _, _, sha in files])
    candidates: list[_Candidate] = []
    for path, explicit, content, sha in files:
        if sha in known:
            report.files.append(FileOutcome(str(path), ALREADY_PRESENT, content_sha256=sha))
            continue
        candidate = _load(path, explicit, content, sha, batch_id, started_at, report)
        if candidate is not None:
            candidates.append(candidate)

    conn = open_store(store, lock_timeout_sec=lock_timeout_sec, notify=notify)
    try:
        _judge_and_write(conn, candidates, report, batch_id, started_at, strict)
    except duckdb.Error as exc:
        raise StoreError(
            f"{store}: ingest failed, nothing stored: {' '.join(str(exc).split())}"
        ) from exc
    finally:
        conn.close()
    if receipt_path is not None and not (strict and not report.ok):
        write_json_atomic(receipt_path, report.receipt())
    return report


def _judge_and_write(
    conn: duckdb.DuckDBPyConnection,
    candidates: list[_Candidate],
    report: IngestReport,
    batch_id: str,
    started_at: datetime,
    strict: bool,
) -> None:
    accepted = _judge(conn, candidates)
    if strict and not report.ok:
        bad = report.count(REFUSED)
        for c in accepted:
            c.outcome.status = REFUSED
            c.outcome.reason = f"not stored: --strict and {bad} other file(s) were refused"
        accepted = []
    if accepted:
        _write_batch(conn, accepted, report, batch_id, started_at)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while many small objects are built and dropped.

    Bulk ingest creates millions of short-lived objects without reference cycles; the
    collector's repeated passes over them cost about a quarter of the run time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def migrate_only(
    store: str | Path,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> None:
    """Open (creating or migrating) a store without ingesting anything."""
    open_store(store, lock_timeout_sec=lock_timeout_sec, notify=notify).close()


# --------------------------------------------------------------------------------------
# reading files (no lock held)
# --------------------------------------------------------------------------------------


def discover(paths: Iterable[str | Path], report: IngestReport) -> list[tuple[Path, bool]]:
    """Files named, and ``*.json`` under folders named (hidden entries skipped), in order.

    Each file appears once; the flag says whether it was named explicitly.
    """
    found: list[tuple[Path, bool]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            walked = sorted(
                p for p in path.rglob("*.json")
                if p.is_file() and not any(part.startswith(".")
                                           for part in p.relative_to(path).parts)
            )
            entries = [(p, False) for p in walked]
        elif path.exists():
            entries = [(path, True)]
        else:
            report.files.append(FileOutcome(str(path), REFUSED, "no such file or folder"))
            continue
        for entry, explicit in entries:
            key = Path(os.path.abspath(entry))
            if key not in seen:
                seen.add(key)
                found.append((entry, explicit))
    return found


def _read_all(
    found: list[tuple[Path, bool]], report: IngestReport
) -> list[tuple[Path, bool, bytes, str]]:
    """Each file's bytes and their SHA-256; unreadable files are refused."""
    out = []
    for path, explicit in found:
        try:
            content = path.read_bytes()
        except OSError as exc:
            report.files.append(
                FileOutcome(str(path), REFUSED, f"cannot read: {exc.strerror or exc}")
            )
            continue
        out.append((path, explicit, content, hashlib.sha256(content).hexdigest()))
    return out


def _known_documents(store: str | Path, shas: list[str]) -> set[str]:
    """Which of these files the store already holds, looked up without waiting for a lock.

    Only saves work: the verdict is taken again under the write lock. Documents are never
    removed, so a file found here is still present then.
    """
    path = Path(store)
    if not shas or not path.is_file():
        return set()
    try:
        conn = open_store_read_only(path, lock_timeout_sec=0)
    except LlemError:
        return set()  # locked, older or not a store: the write phase decides
    try:
        return set(_existing(conn, DOCUMENTS.name, "content_sha256", "content_sha256", shas))
    finally:
        conn.close()


def _load(
    path: Path,
    explicit: bool,
    content: bytes,
    content_sha256: str,
    batch_id: str,
    started_at: datetime,
    report: IngestReport,
) -> _Candidate | None:
    """Load and convert one file; a refusal or a skip is recorded in ``report``."""
    source = str(path)
    outcome = FileOutcome(source, NEW)
    try:
        text, document = decode_document(content, source)
    except ResultLoadError as exc:
        outcome.status, outcome.reason = REFUSED, _reason(exc, source)
        report.files.append(outcome)
        return None
    if not explicit and not looks_like_result(document):
        report.skipped.append(source)  # e.g. spec.json or a receipt in a results folder
        return None
    try:
        loaded = parse_document(document, source, content_sha256)
        outcome.content_sha256 = loaded.content_sha256
        prov = Provenance(loaded.content_sha256, os.path.abspath(path), batch_id, started_at)
        rows = build_rows(loaded, prov, text)
        candidate = _Candidate(outcome, rows)
        _read_timeseries(candidate, loaded, batch_id)
    except LlemError as exc:
        outcome.status, outcome.reason = REFUSED, _reason(exc, source)
        report.files.append(outcome)
        return None
    except (TypeError, ValueError, ArithmeticError) as exc:
        # Values the schema let through but no store column can hold: this file only.
        outcome.status, outcome.reason = REFUSED, f"cannot be stored: {_reason(exc, source)}"
        report.files.append(outcome)
        return None
    report.files.append(outcome)
    return candidate


#: Keys of which every result shape has at least one (per-process, aggregated, multi-cycle,
#: later line); the loader dispatches on the same keys.
_SHAPE_KEYS = frozenset({
    "process_index", "timestamps", "aggregation", "total_energy_j", "cycle_results",
    "statistics", "measurement_config_hash",
})


def looks_like_result(document: object) -> bool:
    """Whether a JSON document found in a folder is meant as a result (and so is loaded,
    and refused if broken) rather than another file of a results folder (spec, environment,
    baseline, warmup, receipt), which is skipped."""
    return (
        isinstance(document, dict)
        and "experiment_id" in document
        and not _SHAPE_KEYS.isdisjoint(document)
    )


def _read_timeseries(candidate: _Candidate, loaded: LoadedResult, batch_id: str) -> None:
    for ref in candidate.rows.timeseries_refs:
        data, table = read_timeseries_file(ref.path)
        sha = hashlib.sha256(data).hexdigest()
        rows = timeseries_rows(
            ref.path, sha, table,
            result_id=ref.result_id,
            content_sha256=loaded.content_sha256,
            ingest_batch_id=batch_id,
        )
        candidate.timeseries.append((sha, rows))


def _reason(exc: BaseException, source: str) -> str:
    text = " ".join(str(exc).split())
    return text.removeprefix(f"{source}: ")


# --------------------------------------------------------------------------------------
# judging against the store (lock held)
# --------------------------------------------------------------------------------------

_KEYS: tuple[tuple[str, Table, str], ...] = (
    ("results", RESULTS, "result_id"),
    ("process_results", PROCESS_RESULTS, "process_result_id"),
    ("cycle_statistics", CYCLE_STATISTICS, "experiment_id"),
)


def _judge(conn: duckdb.DuckDBPyConnection, candidates: list[_Candidate]) -> list[_Candidate]:
    """Accept or refuse each file as a whole; drop rows the store (or the call) already has."""
    stored_docs = _existing(conn, DOCUMENTS.name, "content_sha256", "source_path",
                            [c.outcome.content_sha256 for c in candidates])
    stored: dict[str, dict[str, str]] = {}
    for kind, table, key in _KEYS:
        ids = [row[key] for c in candidates for row in getattr(c.rows, kind)]
        stored[kind] = _existing(conn, table.name, key, "fingerprint", ids)
    stored_ts = set(_existing(conn, TIMESERIES.name, "timeseries_sha256", "timeseries_sha256",
                              [sha for c in candidates for sha, _ in c.timeseries]))

    accepted: list[_Candidate] = []
    batch_docs: dict[str, str] = {}
    batch: dict[str, dict[str, str]] = {kind: {} for kind, _, _ in _KEYS}
    batch_ts: set[str] = set()
    for c in candidates:
        sha = c.outcome.content_sha256 or ""
        if sha in stored_docs or sha in batch_docs:
            c.outcome.status = ALREADY_PRESENT
            earlier = batch_docs.get(sha)
            if earlier is not None:
                c.outcome.reason = f"same content as {earlier}"
            continue
        conflict = _first_conflict(c, stored, batch)
        if conflict is not None:
            c.outcome.status, c.outcome.reason = REFUSED, conflict
            continue
        for kind, _, key in _KEYS:
            kept = []
            for row in getattr(c.rows, kind):
                if row[key] in stored[kind] or row[key] in batch[kind]:
                    continue  # the same row, already stored or coming from an earlier file
                batch[kind][row[key]] = row["fingerprint"]
                kept.append(row)
            setattr(c.rows, kind, kept)
        fresh = []
        for ts_sha, table in c.timeseries:
            if ts_sha not in stored_ts and ts_sha not in batch_ts:
                batch_ts.add(ts_sha)
                fresh.append((ts_sha, table))
        c.timeseries = fresh
        batch_docs[sha] = c.outcome.path
        accepted.append(c)
    return accepted


def _first_conflict(
    c: _Candidate, stored: dict[str, dict[str, str]], batch: dict[str, dict[str, str]]
) -> str | None:
    for kind, _, key in _KEYS:
        for row in getattr(c.rows, kind):
            ident = row[key]
            for where, known in (("the store", stored[kind]), ("an earlier file of this call",
                                                                batch[kind])):
                fingerprint = known.get(ident)
                if fingerprint is not None and fingerprint != row["fingerprint"]:
                    label = key.replace("_", " ")
                    return (f"{label} {ident!r} is already in {where} with different content; "
                            "stored results are never replaced")
    return None


def _existing(
    conn: duckdb.DuckDBPyConnection, table: str, key: str, value: str, ids: list[Any]
) -> dict[str, str]:
    """``{key: value}`` of stored rows whose key is among ``ids``."""
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    incoming = table_from_columns({"k": wanted}, pa.schema([("k", pa.string())]))
    conn.register("_llem_incoming_keys", incoming)
    try:
        rows = conn.execute(
            f"SELECT t.{key}, t.{value} FROM {table} t "
            f"JOIN _llem_incoming_keys i ON t.{key} = i.k"
        ).fetchall()
    finally:
        conn.unregister("_llem_incoming_keys")
    return dict(rows)


# --------------------------------------------------------------------------------------
# writing (lock held, one transaction)
# --------------------------------------------------------------------------------------


def _write_batch(
    conn: duckdb.DuckDBPyConnection,
    accepted: list[_Candidate],
    report: IngestReport,
    batch_id: str,
    started_at: datetime,
) -> None:
    timeseries = [table for c in accepted for _, table in c.timeseries]
    conn.begin()
    try:
        counts = insert_rowsets(conn, [c.rows for c in accepted], with_documents=True)
        ts_rows = insert_arrow(conn, TIMESERIES, timeseries)
        report.results_added = counts[RESULTS.name]
        report.process_results_added = counts[PROCESS_RESULTS.name]
        report.cycle_statistics_added = counts[CYCLE_STATISTICS.name]
        report.timeseries_rows_added = ts_rows
        report.batch_id = batch_id
        report.committed_at = datetime.now(UTC)
        _record_batch(conn, report, started_at)
        conn.commit()
    except BaseException:
        report.batch_id = None
        report.committed_at = None
        conn.rollback()
        raise


def _record_batch(conn: duckdb.DuckDBPyConnection, report: IngestReport,
                  started_at: datetime) -> None:
    """The ``ingest_batches`` row and the store's last-writer keys (inside the transaction)."""
    row = {
        "batch_id": report.batch_id,
        "started_at": started_at,
        "committed_at": report.committed_at,
        "user_name": _user_name(),
        "host": socket.gethostname(),
        "llem_version": __version__,
        "duckdb_version": duckdb.__version__,
        "files_new": report.count(NEW),
        "files_already_present": report.count(ALREADY_PRESENT),
        "files_refused": report.count(REFUSED),
        "results_added": report.results_added,
        "process_results_added": report.process_results_added,
        "timeseries_rows_added": report.timeseries_rows_added,
        "files": json.dumps([f.to_json() for f in report.files], ensure_ascii=False),
    }
    insert_arrow(conn, INGEST_BATCHES, [arrow_table(INGEST_BATCHES, [row])])
    set_meta(conn, writer_meta())


def insert_rowsets(
    conn: duckdb.DuckDBPyConnection, rowsets: list[RowSet], *, with_documents: bool
) -> dict[str, int]:
    """Insert the rows of many files, one Arrow table per store table; returns row counts."""
    counts = {}
    tables: list[tuple[Table, list[dict[str, Any]]]] = [
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


def _user_name() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. in some containers
        return None
