"""Ingest result files into the store: validate, upgrade, refuse or add, in one transaction.

The work is split so the store's lock is held only briefly: files are read, validated,
converted to rows and their time series read *before* the lock is taken; then, holding the
lock, the incoming ids are looked up in the store, each file is accepted or refused as a
whole, and everything accepted is inserted through Arrow tables in one transaction. A file:

* whose bytes are already stored is *already present* (re-ingesting is a no-op);
* that brings a row under an id the store (or an earlier file of the call) holds with
  different content is *refused*; the same row met again is simply not added twice;
* whose results are the same measurements as stored ones in another of the earlier tool's
  formats (same ``measurement_fingerprint``) is *already present*, with that reason;
* that is not a valid result of any known format is *refused* with the loader's reason;
* whose values no store column can hold (a sum past 64 bits) is *refused*, and only it;
* a folder named that holds no result file is *refused* ("no result files found").

A bad file never takes the others down: whatever is wrong with it, it is refused with one
line and the rest of the call goes on. A time-series file a result names that does not
exist does not refuse the result: it is stored with a warning, and
``results.timeseries_missing`` lists the files whose samples are missing.
:func:`check_paths` gives the same verdict on each file without a store (``llem validate``).
With ``strict`` any refusal refuses the whole call.
The receipt (for the workflow's ingest rule) is written atomically, after the commit; its
place is checked before any work, so a receipt that cannot be written stores nothing.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from llem.columns import table_from_columns
from llem.errors import LlemError, ResultLoadError, StoreError, shown_name
from llem.io import write_json_atomic
from llem.results.loader import LoadedResult, decode_document, is_unicode_text, parse_document
from llem.store.connection import StoreLike, open_store_read_only, store_failure, writing_store
from llem.store.ddl import (
    CYCLE_STATISTICS,
    DOCUMENTS,
    INGEST_BATCHES,
    PROCESS_RESULTS,
    RESULTS,
    TIMESERIES,
    arrow_table,
)
from llem.store.lake import tag_commit
from llem.store.lock import DEFAULT_LOCK_TIMEOUT_SEC, Notify
from llem.store.rows import Provenance, RowSet, build_rows
from llem.store.timeseries import read_timeseries_file, timeseries_rows
from llem.store.write import (
    ROW_KEYS,
    first_rows,
    insert_arrow,
    insert_rowsets,
    rollback,
    set_meta,
    user_name,
    writer_meta,
)
from llem.store_address import LakeAddress, parse_store_address
from llem.version import __version__

NEW = "new"
ALREADY_PRESENT = "already_present"
REFUSED = "refused"

#: Why a folder is refused when nothing in it is a result file.
NO_RESULTS = "no result files found (no *.json under this folder)"

#: What Arrow raises for a Python value its column type cannot hold.
_UNSTORABLE = (pa.ArrowException, OverflowError, TypeError, ValueError)


@dataclass
class FileOutcome:
    """What happened to one file."""

    path: str
    status: str
    reason: str | None = None
    content_sha256: str | None = None
    format: str | None = None  # the document format, once recognised (not in the receipt)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "content_sha256": self.content_sha256,
            "reason": self.reason,
            "warnings": self.warnings,
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
            f"results, {self.timeseries_rows_added} time-series rows added to "
            f"{shown_name(self.store)})"
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


@dataclass(frozen=True)
class FoundFile:
    """A file to read: named itself, or found under a folder that was named."""

    path: Path
    folder: Path | None = None

    @property
    def explicit(self) -> bool:
        return self.folder is None


@dataclass
class _Candidate:
    """A file that loaded; its rows wait for the store's verdict."""

    outcome: FileOutcome
    rows: RowSet
    timeseries: list[tuple[str, pa.Table]] = field(default_factory=list)  # (sha256, rows)


@dataclass
class _Accepted:
    """A file the store takes, with only the rows it does not hold yet."""

    candidate: _Candidate
    rows: RowSet
    timeseries: list[pa.Table]


def ingest_paths(
    paths: Sequence[str | Path],
    store: StoreLike,
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
    store: StoreLike,
    strict: bool,
    lock_timeout_sec: float,
    notify: Notify | None,
    receipt_path: str | Path | None,
) -> IngestReport:
    if receipt_path is not None:
        check_writable(receipt_path, "receipt")
    started_at = datetime.now(UTC)
    batch_id = f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
    address = parse_store_address(store)
    report = IngestReport(store=str(address), batch_id=None, strict=strict)
    found = discover(paths, report)
    files = _read_all(found, report)
    known = _known_documents(address, [sha for _, _, sha in files])
    candidates: list[_Candidate] = []
    for entry, content, sha in files:
        if sha in known:
            report.files.append(FileOutcome(str(entry.path), ALREADY_PRESENT, content_sha256=sha))
            continue
        candidate = _load(entry.path, entry.explicit, content, sha, batch_id, started_at, report)
        if candidate is not None:
            candidates.append(candidate)
    _refuse_folders_without_results(found, report)

    lake = isinstance(address, LakeAddress)
    try:
        with writing_store(address, lock_timeout_sec=lock_timeout_sec, notify=notify) as conn:
            _judge_and_write(conn, candidates, report, batch_id, started_at, strict, lake)
    except duckdb.Error as exc:
        raise store_failure(address, exc, "ingest failed, nothing stored") from exc
    if receipt_path is not None and not (strict and not report.ok):
        try:
            write_json_atomic(receipt_path, report.receipt())
        except OSError as exc:
            raise StoreError(
                f"{shown_name(receipt_path)}: batch {report.batch_id} is stored, but its "
                f"receipt could not be written: {exc.strerror or exc}"
            ) from exc
    return report


def check_paths(paths: Sequence[str | Path]) -> IngestReport:
    """Ingest's verdict on each file by itself, without a store (what ``llem validate`` says).

    Every check ingest makes of a file alone runs here: reading, JSON, schema, v3 model, rows,
    time series and storable values; only what needs the store (already present, a
    conflicting id) does not. A file the store would take is ``new``; non-result JSON files
    of folders are skipped, as ingest skips them. Nothing is written.
    """
    started_at = datetime.now(UTC)
    report = IngestReport(store="", batch_id=None, strict=False)
    found = discover(paths, report)
    for entry, content, sha in _read_all(found, report):
        candidate = _load(entry.path, entry.explicit, content, sha, "check", started_at, report)
        if candidate is not None:
            problem = unstorable(candidate.rows)
            if problem is not None:
                candidate.outcome.status, candidate.outcome.reason = REFUSED, problem
    _refuse_folders_without_results(found, report)
    return report


def check_writable(path: str | Path, what: str) -> None:
    """Refuse, before any work, a file that could not be written later (temp file + rename
    in its folder); creates the folder as the later write would."""
    target = Path(path)
    if target.is_dir():
        problem = "it is a folder"
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}."):
                return
        except OSError as exc:
            problem = exc.strerror or str(exc)
    raise StoreError(
        f"{shown_name(path)}: cannot write the {what} there ({problem}); nothing ingested"
    )


def _judge_and_write(
    conn: duckdb.DuckDBPyConnection,
    candidates: list[_Candidate],
    report: IngestReport,
    batch_id: str,
    started_at: datetime,
    strict: bool,
    lake: bool,
) -> None:
    while True:
        accepted = _judge(conn, candidates)
        if strict and not report.ok:
            bad = report.count(REFUSED)
            for a in accepted:
                a.candidate.outcome.status = REFUSED
                a.candidate.outcome.reason = (
                    f"not stored: --strict and {bad} other file(s) were refused"
                )
            accepted = []
        if not accepted:
            return
        try:
            _write_batch(conn, accepted, report, batch_id, started_at, lake)
            return
        except _UNSTORABLE:
            # Some file holds a value no column can take (rare: found by converting the whole
            # batch at once). Refuse exactly those files, then judge the others again.
            unfit = _refuse_unstorable(candidates)
            if not unfit:
                raise
            candidates = [c for c in candidates if c not in unfit]
            for c in candidates:
                c.outcome.status, c.outcome.reason = NEW, None


def _refuse_unstorable(candidates: list[_Candidate]) -> list[_Candidate]:
    """Mark refused, and return, the files whose own rows Arrow cannot convert."""
    unfit = []
    for c in candidates:
        problem = unstorable(c.rows)
        if problem is not None:
            c.outcome.status, c.outcome.reason = REFUSED, problem
            unfit.append(c)
    return unfit


def unstorable(rows: RowSet) -> str | None:
    """Why one file's rows cannot be stored (a value its column type cannot hold), or None.

    The same conversion as the batch insert, per file; slow, so run by ``llem validate`` and,
    in ingest, only after a whole batch failed to convert.
    """
    tables = [(DOCUMENTS, [rows.document]), (RESULTS, rows.results),
              (PROCESS_RESULTS, rows.process_results),
              (CYCLE_STATISTICS, rows.cycle_statistics)]
    for table, table_rows in tables:
        if not table_rows:
            continue
        try:
            arrow_table(table, table_rows)
        except _UNSTORABLE as exc:
            for column in table.columns:
                try:
                    arrow_table(table, [{column.name: r.get(column.name)} for r in table_rows])
                except _UNSTORABLE:
                    return (f"cannot be stored: {table.name}.{column.name} does not fit its "
                            f"{column.type} column: {' '.join(str(exc).split())}")
            return f"cannot be stored: {table.name}: {' '.join(str(exc).split())}"
    return None


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
    store: StoreLike,
    *,
    lock_timeout_sec: float = DEFAULT_LOCK_TIMEOUT_SEC,
    notify: Notify | None = None,
) -> None:
    """Open (creating or migrating) a store without ingesting anything."""
    with writing_store(store, lock_timeout_sec=lock_timeout_sec, notify=notify):
        pass


# --------------------------------------------------------------------------------------
# reading files (no lock held)
# --------------------------------------------------------------------------------------


def discover(paths: Iterable[str | Path], report: IngestReport) -> list[FoundFile]:
    """Files named, and ``*.json`` under folders named (hidden entries skipped), in order.

    Each file appears once. A folder without any ``*.json`` is refused, and so is a file
    whose name is not UTF-8 text (no store column or receipt can hold it).
    """
    found: list[FoundFile] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            walked = sorted(
                p for p in path.rglob("*.json")
                if p.is_file() and not any(part.startswith(".")
                                           for part in p.relative_to(path).parts)
            )
            entries = [FoundFile(p, path) for p in walked]
            if not entries:
                report.files.append(FileOutcome(_text_name(path), REFUSED, NO_RESULTS))
        elif path.exists():
            entries = [FoundFile(path)]
        else:
            report.files.append(
                FileOutcome(_text_name(path), REFUSED, "no such file or folder")
            )
            continue
        for entry in entries:
            if not is_unicode_text(str(entry.path)):
                report.files.append(FileOutcome(
                    _text_name(entry.path), REFUSED,
                    "file name is not UTF-8 text; rename the file to ingest it",
                ))
                continue
            key = Path(os.path.abspath(entry.path))
            if key not in seen:
                seen.add(key)
                found.append(entry)
    return found


def _text_name(path: Path) -> str:
    """``path`` as text any output can hold: bytes that are not UTF-8 shown as ``\\xff``."""
    text = str(path)
    return text if is_unicode_text(text) else os.fsencode(path).decode("utf-8", "backslashreplace")


def _read_all(
    found: list[FoundFile], report: IngestReport
) -> list[tuple[FoundFile, bytes, str]]:
    """Each file's bytes and their SHA-256; unreadable files are refused."""
    out = []
    for entry in found:
        try:
            content = entry.path.read_bytes()
        except OSError as exc:
            report.files.append(
                FileOutcome(str(entry.path), REFUSED, f"cannot read: {exc.strerror or exc}")
            )
            continue
        out.append((entry, content, hashlib.sha256(content).hexdigest()))
    return out


def _refuse_folders_without_results(found: list[FoundFile], report: IngestReport) -> None:
    """Refuse each folder named whose ``*.json`` files were all skipped as non-results."""
    skipped = set(report.skipped)
    folders: dict[Path, bool] = {}
    for entry in found:
        if entry.folder is not None:
            has_result = folders.get(entry.folder, False) or str(entry.path) not in skipped
            folders[entry.folder] = has_result
    for folder, has_result in folders.items():
        if not has_result:
            report.files.append(FileOutcome(
                str(folder), REFUSED,
                "no result files found (every *.json under this folder is another kind of "
                "file, e.g. a spec or a receipt)",
            ))


def _known_documents(store: Path | LakeAddress, shas: list[str]) -> set[str]:
    """Which of these files the store already holds, looked up without waiting for a lock.

    Only saves work: the verdict is taken again under the write lock. Documents are never
    removed, so a file found here is still present then.
    """
    if not shas or (isinstance(store, Path) and not store.is_file()):
        return set()
    try:
        conn = open_store_read_only(store, lock_timeout_sec=0)
    except LlemError:
        return set()  # locked, older, damaged or not a store: the write phase decides
    try:
        return set(_existing(conn, DOCUMENTS.name, "content_sha256", "content_sha256", shas))
    except duckdb.Error:
        return set()  # e.g. a damaged file: the write phase checks it and says so
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
        outcome.format = loaded.format
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
    """Read every time-series file the result names; a missing one is a warning and is
    recorded on the result's row (a file that exists but cannot be read refuses it)."""
    missing: dict[str, list[str]] = {}
    for ref in candidate.rows.timeseries_refs:
        if not ref.path.exists():
            missing.setdefault(ref.result_id, []).append(str(ref.path))
            candidate.outcome.warnings.append(
                f"time-series file {shown_name(ref.path)} is missing: the result is stored "
                "without its samples (results.timeseries_missing)"
            )
            continue
        data, table = read_timeseries_file(ref.path)
        sha = hashlib.sha256(data).hexdigest()
        rows = timeseries_rows(
            ref.path, sha, table,
            result_id=ref.result_id,
            content_sha256=loaded.content_sha256,
            ingest_batch_id=batch_id,
        )
        candidate.timeseries.append((sha, rows))
    for row in candidate.rows.results:
        if row["result_id"] in missing:
            row["timeseries_missing"] = json.dumps(missing[row["result_id"]])


def _reason(exc: BaseException, source: str) -> str:
    text = " ".join(str(exc).split())
    return text.removeprefix(f"{shown_name(source)}: ")


# --------------------------------------------------------------------------------------
# judging against the store (lock held)
# --------------------------------------------------------------------------------------

def _judge(conn: duckdb.DuckDBPyConnection, candidates: list[_Candidate]) -> list[_Accepted]:
    """Accept or refuse each file as a whole; keep only rows the store (or the call) lacks."""
    stored_docs = _existing(conn, DOCUMENTS.name, "content_sha256", "source_path",
                            [c.outcome.content_sha256 for c in candidates])
    stored: dict[str, dict[str, str]] = {}
    for kind, table, key in ROW_KEYS:
        ids = [row[key] for c in candidates for row in getattr(c.rows, kind)]
        stored[kind] = _existing(conn, table.name, key, "fingerprint", ids)
    stored_measurements = _existing(conn, RESULTS.name, "result_id", "measurement_fingerprint",
                                    list(stored["results"]))
    stored_formats = _existing(conn, RESULTS.name, "result_id", "source_format",
                               list(stored["results"]))
    stored_ts = set(_existing(conn, TIMESERIES.name, "timeseries_sha256", "timeseries_sha256",
                              [sha for c in candidates for sha, _ in c.timeseries]))

    accepted: list[_Accepted] = []
    batch_docs: dict[str, str] = {}
    batch: dict[str, dict[str, str]] = {kind: {} for kind, _, _ in ROW_KEYS}
    batch_measurements: dict[str, tuple[str, str]] = {}  # result_id -> (fingerprint, path)
    batch_ts: set[str] = set()
    for c in candidates:
        sha = c.outcome.content_sha256 or ""
        if sha in stored_docs or sha in batch_docs:
            c.outcome.status = ALREADY_PRESENT
            earlier = batch_docs.get(sha)
            if earlier is not None:
                c.outcome.reason = f"same content as {shown_name(earlier)}"
            continue
        same = _same_measurements(c, stored["results"], stored_measurements, stored_formats,
                                  batch["results"], batch_measurements)
        conflict = _first_conflict(c, stored, batch, set(same))
        if conflict is not None:
            c.outcome.status, c.outcome.reason = REFUSED, conflict
            continue
        # The same row, already stored or coming from an earlier file, is not added twice;
        # nor are the rows of a measurement stored from another format.
        kept, _ = first_rows(c.rows, batch, held=stored, skip_results=same)
        for row in kept["results"]:
            batch_measurements[row["result_id"]] = (row["measurement_fingerprint"],
                                                    c.outcome.path)
        if same and not any(kept.values()):
            c.outcome.status = ALREADY_PRESENT
            c.outcome.reason = "same measurement, other format: " + "; ".join(
                f"{rid!r} is stored from {shown_name(where)}" for rid, where in same.items())
            continue
        fresh = []
        for ts_sha, table in c.timeseries:
            if ts_sha not in stored_ts and ts_sha not in batch_ts:
                batch_ts.add(ts_sha)
                fresh.append(table)
        batch_docs[sha] = c.outcome.path
        accepted.append(_Accepted(c, replace(c.rows, **kept), fresh))
    return accepted


def _same_measurements(
    c: _Candidate,
    stored: dict[str, str],
    stored_measurements: dict[str, str],
    stored_formats: dict[str, str],
    batch: dict[str, str],
    batch_measurements: dict[str, tuple[str, str]],
) -> dict[str, str]:
    """Result ids of this file held, with other content, by the same measurement written in
    another format (``{result_id: where it is stored from}``)."""
    same: dict[str, str] = {}
    for row in c.rows.results:
        rid, measured = row["result_id"], row["measurement_fingerprint"]
        if stored.get(rid) not in (None, row["fingerprint"]):
            if stored_measurements.get(rid) == measured:
                same[rid] = f"a {stored_formats.get(rid)} file in the store"
        elif batch.get(rid) not in (None, row["fingerprint"]):
            earlier_fp, earlier_path = batch_measurements.get(rid, (None, ""))
            if earlier_fp == measured:
                same[rid] = earlier_path
    return same


def _first_conflict(
    c: _Candidate,
    stored: dict[str, dict[str, str]],
    batch: dict[str, dict[str, str]],
    same_measurements: set[str],
) -> str | None:
    for kind, _, key in ROW_KEYS:
        for row in getattr(c.rows, kind):
            if row.get("result_id") in same_measurements:
                continue  # another format of a stored measurement: not a conflict
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
    accepted: list[_Accepted],
    report: IngestReport,
    batch_id: str,
    started_at: datetime,
    lake: bool,
) -> None:
    timeseries = [table for a in accepted for table in a.timeseries]
    conn.begin()
    try:
        counts = insert_rowsets(conn, [a.rows for a in accepted], with_documents=True)
        ts_rows = insert_arrow(conn, TIMESERIES, timeseries)
        report.results_added = counts[RESULTS.name]
        report.process_results_added = counts[PROCESS_RESULTS.name]
        report.cycle_statistics_added = counts[CYCLE_STATISTICS.name]
        report.timeseries_rows_added = ts_rows
        report.batch_id = batch_id
        report.committed_at = datetime.now(UTC)
        _record_batch(conn, report, started_at)
        if lake:
            tag_commit(conn, batch_id, user_name())
        conn.commit()
    except BaseException:
        report.batch_id = None
        report.committed_at = None
        rollback(conn)
        raise


def _record_batch(conn: duckdb.DuckDBPyConnection, report: IngestReport,
                  started_at: datetime) -> None:
    """The ``ingest_batches`` row and the store's last-writer keys (inside the transaction)."""
    row = {
        "batch_id": report.batch_id,
        "started_at": started_at,
        "committed_at": report.committed_at,
        "user_name": user_name(),
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
