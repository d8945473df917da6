"""The store under stress: a second writer, killed ingests and migrations, version checks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from llem.errors import StoreError
from llem.store.connection import open_store
from llem.store.ddl import STORE_SCHEMA_VERSION
from llem.store.ingest import NEW, ingest_paths
from llem.store.migrations import backup_path
from llem.store.query import QueryError, run_query
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_documents import fetch_all

REPO = Path(__file__).resolve().parents[2]


def _snapshot(store: Path) -> list[tuple]:
    return fetch_all(
        store,
        "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM results), "
        "(SELECT count(*) FROM process_results), (SELECT count(*) FROM timeseries), "
        "(SELECT count(*) FROM ingest_batches), (SELECT sum(total_energy_j) FROM results)",
    )


def _python(code: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )


def _hold_lock(store: Path) -> subprocess.Popen[str]:
    """A process that holds the store's write lock until a line arrives on its stdin."""
    holder = _python(
        """
        import sys, duckdb
        conn = duckdb.connect(sys.argv[1])
        print("holding", flush=True)
        sys.stdin.readline()
        conn.close()
        """,
        str(store),
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


def _wait_for(path: Path, process: subprocess.Popen[str], limit_sec: float = 120.0) -> None:
    deadline = time.monotonic() + limit_sec
    while not path.exists():
        assert process.poll() is None, "the ingest process ended before reaching the point"
        assert time.monotonic() < deadline, "the ingest process never reached the point"
        time.sleep(0.05)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "llem.duckdb"
    open_store(path).close()
    return path


def test_a_second_writer_waits_then_fails_clearly(tmp_path: Path, store: Path) -> None:
    holder = _hold_lock(store)
    messages: list[str] = []
    try:
        good = docs.write(tmp_path, "r.json", docs.v3_aggregated())
        with pytest.raises(StoreError) as err:
            ingest_paths([good], store, lock_timeout_sec=0.5, notify=messages.append)
    finally:
        holder.communicate("\n", timeout=60)
    assert f"PID {holder.pid}" in str(err.value) and "--lock-timeout" in str(err.value)
    assert len(messages) == 1 and "waiting" in messages[0] and f"PID {holder.pid}" in messages[0]
    assert _snapshot(store)[0][0] == 0


def test_a_second_writer_proceeds_once_the_lock_is_free(tmp_path: Path, store: Path) -> None:
    holder = _hold_lock(store)
    assert holder.stdin is not None

    def release(message: str) -> None:
        holder.stdin.write("\n")
        holder.stdin.flush()

    try:
        good = docs.write(tmp_path, "r.json", docs.v3_aggregated())
        report = ingest_paths([good], store, lock_timeout_sec=120, notify=release)
    finally:
        holder.communicate(timeout=60)
    assert report.files[0].status == NEW
    assert _snapshot(store)[0][:2] == (1, 1)


def test_a_reader_waits_for_a_writer_too(store: Path) -> None:
    holder = _hold_lock(store)
    try:
        with pytest.raises(StoreError, match="locked"):
            run_query(store, "SELECT 1", lock_timeout_sec=0.2)
    finally:
        holder.communicate("\n", timeout=60)
    assert run_query(store, "SELECT 1").rows == [(1,)]


def test_a_killed_ingest_leaves_the_store_as_before(tmp_path: Path, store: Path) -> None:
    first = docs.write(tmp_path, "first.json", sdocs.renamed(docs.v3_aggregated(), "before"))
    ingest_paths([first], store)
    before = _snapshot(store)
    files = sdocs.write_all(tmp_path / "more", sdocs.every_format())
    files.append(sdocs.v3_result_with_timeseries(tmp_path / "ts", "c/r/ts"))
    marker = tmp_path / "inside-transaction"
    receipt = tmp_path / "receipt.json"
    # Stop the ingest inside its transaction, after every row has been inserted, and kill it.
    victim = _python(
        """
        import sys, time
        from pathlib import Path
        import llem.store.ingest as ingest
        original = ingest._record_batch
        def stall(*args, **kwargs):
            original(*args, **kwargs)
            Path(sys.argv[1]).touch()
            time.sleep(600)
        ingest._record_batch = stall
        ingest.ingest_paths(sys.argv[4:], sys.argv[2], receipt_path=sys.argv[3])
        """,
        str(marker), str(store), str(receipt), *map(str, files),
    )
    try:
        _wait_for(marker, victim)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert _snapshot(store) == before
    assert not receipt.exists()
    # and the store works: the same files land in a new call
    report = ingest_paths(files, store)
    assert report.ok and report.count(NEW) == len(files)
    assert _snapshot(store)[0][1] == before[0][1] + 10


def test_a_killed_migration_leaves_the_old_store(tmp_path: Path) -> None:
    store = tmp_path / "old.duckdb"
    _build_v0_store(store, [sdocs.renamed(docs.v3_aggregated(), "old-1")])
    marker = tmp_path / "migrating"
    victim = _python(
        """
        import sys, time
        from pathlib import Path
        import llem.store.migrations as migrations
        original = migrations.STEPS[0]
        def stall(conn, notify):
            original(conn, notify)
            Path(sys.argv[1]).touch()
            time.sleep(600)
        migrations.STEPS[0] = stall
        from llem.store.connection import open_store
        open_store(sys.argv[2])
        """,
        str(marker), str(store),
    )
    try:
        _wait_for(marker, victim)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.wait(timeout=60)
    assert fetch_all(store, "SELECT value FROM store_meta WHERE key = 'store_schema_version'") == [
        ("0",)
    ]
    tables = {r[0] for r in fetch_all(store, "SELECT table_name FROM duckdb_tables()")}
    assert tables == {"store_meta", "ingest_batches", "documents"}
    open_store(store).close()
    assert fetch_all(store, "SELECT result_id FROM results") == [("old-1@0123456789abcdef",)]


# --------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------

#: The archive layout of store schema version 0, as an older llem created it.
V0_DDL = """
CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE ingest_batches (
    batch_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL, user_name VARCHAR, host VARCHAR,
    llem_version VARCHAR NOT NULL, duckdb_version VARCHAR NOT NULL,
    files_new INTEGER NOT NULL, files_already_present INTEGER NOT NULL,
    files_refused INTEGER NOT NULL, results_added INTEGER NOT NULL,
    process_results_added INTEGER NOT NULL, timeseries_rows_added BIGINT NOT NULL,
    files JSON NOT NULL);
CREATE TABLE documents (
    content_sha256 VARCHAR PRIMARY KEY, source_path VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL, source_schema_version VARCHAR NOT NULL,
    experiment_id VARCHAR NOT NULL, ingest_batch_id VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL, document JSON NOT NULL);
INSERT INTO store_meta VALUES ('store_schema_version', '0'), ('llem_version', '0.0.9');
INSERT INTO ingest_batches VALUES ('b0', TIMESTAMPTZ '2026-02-01 10:00:00+00',
    TIMESTAMPTZ '2026-02-01 10:00:01+00', 'someone', 'host', '0.0.9', '2.0.1', 0, 0, 0, 0, 0,
    0, '[]');
"""


def _build_v0_store(path: Path, documents: list[dict]) -> None:
    from llem.results.loader import parse_document

    conn = duckdb.connect(str(path))
    conn.execute(V0_DDL)
    for i, document in enumerate(documents):
        loaded = parse_document(document, f"/old/{i}.json")
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, 'b0', "
            "TIMESTAMPTZ '2026-02-01 10:00:00+00' + INTERVAL (?) SECOND, ?)",
            [loaded.content_sha256, f"/old/{i}.json", loaded.format, loaded.schema_version,
             document["experiment_id"], i, json.dumps(document)],
        )
    conn.close()


def _layout(store: Path) -> list[tuple]:
    return fetch_all(
        store,
        "SELECT table_name, column_name, data_type, is_nullable, ordinal_position "
        "FROM information_schema.columns ORDER BY table_name, ordinal_position",
    )


def test_an_older_store_is_migrated_with_a_backup(tmp_path: Path) -> None:
    old = [
        sdocs.renamed(docs.v2_aggregated_dec2025(), "old-dec"),
        sdocs.renamed(docs.v2_multi_cycle(3), "old-mc"),
        docs.upstream("gpt2_pytorch_v2.0.json"),
    ]
    store = tmp_path / "old.duckdb"
    _build_v0_store(store, old)
    notes: list[str] = []
    new = docs.write(tmp_path, "new.json", sdocs.renamed(docs.v3_aggregated(), "new"))
    report = ingest_paths([new], store, notify=notes.append)
    assert report.ok
    assert any("migrating" in n and "schema version 0" in n for n in notes)

    # the backup is the untouched old store
    backup = backup_path(store, 0)
    assert fetch_all(backup, "SELECT value FROM store_meta WHERE key='store_schema_version'") == [
        ("0",)
    ]
    assert fetch_all(backup, "SELECT count(*) FROM documents") == [(3,)]
    # the migrated store has the current layout and rows derived from the old documents
    fresh = tmp_path / "fresh.duckdb"
    open_store(fresh).close()
    assert _layout(store) == _layout(fresh)
    meta = dict(fetch_all(store, "SELECT key, value FROM store_meta"))
    assert meta["store_schema_version"] == str(STORE_SCHEMA_VERSION)
    assert "migrated_from_v0_at" in meta
    rows = dict(fetch_all(store, "SELECT result_id, total_energy_j FROM results"))
    assert rows == {
        "old-dec": 250.0, "old-mc/cycle-0": 310.0, "old-mc/cycle-1": 312.0,
        "old-mc/cycle-2": 314.0, "gpt2_20260313_142111": pytest.approx(228.03882500813023),
        "new@0123456789abcdef": 310.0,
    }
    assert fetch_all(store, "SELECT DISTINCT ingest_batch_id FROM results WHERE result_id LIKE "
                       "'old-%'") == [("b0",)]
    assert fetch_all(store, "SELECT count(*) FROM process_results") == [(2 + 6 + 2,)]
    assert fetch_all(store, "SELECT count(*) FROM cycle_statistics") == [(1,)]


def test_a_newer_store_is_refused_untouched(tmp_path: Path, store: Path) -> None:
    conn = duckdb.connect(str(store))
    conn.execute("UPDATE store_meta SET value = '99' WHERE key = 'store_schema_version'")
    conn.close()
    good = docs.write(tmp_path, "r.json", docs.v3_aggregated())
    with pytest.raises(StoreError, match="newer than this llem supports") as err:
        ingest_paths([good], store)
    assert "upgrade llem" in str(err.value)
    with pytest.raises(StoreError, match="newer"):
        run_query(store, "SELECT 1")
    assert fetch_all(store, "SELECT count(*) FROM documents") == [(0,)]
    assert not backup_path(store, 99).exists()


def test_a_database_that_is_no_store_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    conn = duckdb.connect(str(other))
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.close()
    with pytest.raises(StoreError, match="not an llem result store"):
        open_store(other)


def test_query_cannot_modify_the_store(tmp_path: Path, store: Path) -> None:
    ingest_paths([docs.write(tmp_path, "r.json", docs.v3_aggregated())], store)
    before = _snapshot(store)
    for sql in ("DELETE FROM results", "DROP TABLE results",
                "UPDATE store_meta SET value = '5'", "CREATE TABLE x AS SELECT 1"):
        with pytest.raises(QueryError) as err:
            run_query(store, sql)
        assert "\n" not in str(err.value) and "read-only" in str(err.value)
    assert _snapshot(store) == before


#: What store schema version 1 had where version 2 differs (the rest is the same).
_V1_LATEST_RESULTS = (
    "CREATE VIEW latest_results AS SELECT * FROM results QUALIFY row_number() OVER ("
    "PARTITION BY coalesce(experiment_name, experiment_id), config_hash "
    "ORDER BY end_time DESC NULLS LAST, ingested_at DESC, result_id DESC) = 1"
)


def _downgrade_to_v1(store: Path) -> None:
    """Give a current store the layout of store schema version 1."""
    conn = duckdb.connect(str(store))
    conn.execute("DROP VIEW latest_results")
    conn.execute("DROP VIEW results_flat")
    for column in ("model_provenance", "measurement_fingerprint", "timeseries_missing"):
        conn.execute(f"ALTER TABLE results DROP COLUMN {column}")
    for column in ("latency_ci_95_lower", "latency_ci_95_upper"):
        conn.execute(f"ALTER TABLE cycle_statistics DROP COLUMN {column}")
    for table in ("results", "process_results", "cycle_statistics"):
        for column in ("start_time", "end_time"):
            conn.execute(f"ALTER TABLE {table} ALTER {column} TYPE TIMESTAMP")
    for table in ("results", "process_results"):
        conn.execute(f"ALTER TABLE {table} RENAME times_assumed_utc TO timestamps_utc")
    conn.execute(_V1_LATEST_RESULTS)
    conn.execute("CREATE VIEW results_flat AS SELECT result_id, timestamps_utc FROM results")
    conn.execute("UPDATE store_meta SET value = '1' WHERE key = 'store_schema_version'")
    conn.close()


def test_a_v1_store_is_migrated_keeping_its_time_series(tmp_path: Path) -> None:
    store = tmp_path / "v1.duckdb"
    series = sdocs.v3_result_with_timeseries(tmp_path / "exp", "c/r/ts", samples=4)
    later = docs.write(tmp_path, "later.json", docs.upstream("gpt2_pytorch_v2.0.json"))
    assert ingest_paths([series, later], store).ok
    _downgrade_to_v1(store)
    for path in (tmp_path / "exp" / "timeseries").iterdir():
        path.unlink()  # the samples now exist only in the store

    notes: list[str] = []
    open_store(store, notify=notes.append).close()
    assert any("schema version 1" in n for n in notes)
    assert fetch_all(backup_path(store, 1), "SELECT value FROM store_meta WHERE "
                     "key = 'store_schema_version'") == [("1",)]
    fresh = tmp_path / "fresh.duckdb"
    open_store(fresh).close()
    assert _layout(store) == _layout(fresh)
    rows = fetch_all(store, "SELECT result_id, output_tokens, times_assumed_utc, "
                     "typeof(start_time) FROM results ORDER BY 1")
    assert rows == [("c/r/ts@0123456789abcdef", 512, False, "TIMESTAMP WITH TIME ZONE"),
                    ("gpt2_20260313_142111", 640, True, "TIMESTAMP WITH TIME ZONE")]
    assert fetch_all(store, "SELECT count(*) FROM timeseries t JOIN results r "
                     "USING (result_id)") == [(8,)]


def test_a_migration_keeps_the_earlier_of_two_documents_under_one_id(tmp_path: Path) -> None:
    first = sdocs.renamed(docs.v2_aggregated_dec2025(), "twice")
    second = docs.clone(first)
    second["total_energy_j"] = first["total_energy_j"] + 1.0
    store = tmp_path / "old.duckdb"
    _build_v0_store(store, [first, second])
    notes: list[str] = []
    open_store(store, notify=notes.append).close()
    assert fetch_all(store, "SELECT result_id, total_energy_j FROM results") == [
        ("twice", first["total_energy_j"])
    ]
    assert fetch_all(store, "SELECT count(*) FROM documents") == [(2,)]
    assert {n for n in notes if "kept the earlier one" in n} == {
        "/old/1.json: results 'twice' differs from an earlier document; kept the earlier one"
    }
