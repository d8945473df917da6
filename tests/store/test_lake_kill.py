"""SIGKILL of an ingest into a DuckLake store, and ``llem store clean`` of what it leaves.

An ingest writes its Parquet files before it commits the catalog entries that name them. A
kill at any moment must leave the store holding all of that batch or none of it, must not
keep the next ingest out (the ingest lock dies with the killed process's connection), and
the Parquet files of a killed ingest, named by no snapshot, must never be read as data.
``llem store clean`` deletes exactly those files, and only ones older than ``--older-than``;
every file of a committed snapshot stays, so ``--as-of`` keeps reading old snapshots.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.postgres import PostgresServer
from tests.store.lake_runs import cli_env, lake_rows, llem, result_files

BATCH_FILES = 200
#: Seconds after the start at which the random trials kill; a 200-file ingest takes 2-6 s.
KILL_WINDOW_SEC = (0.0, 6.0)
SEED = 20261202


def _database(lake_store: str) -> str:
    return lake_store.split("?", 1)[0].rsplit("/", 1)[-1]


def _data_dir(lake_store: str) -> Path:
    return Path(lake_store.split("data_path=", 1)[1])


def _data_files(lake_store: str) -> set[str]:
    """Names of the Parquet files in the store's data folder."""
    return {path.name for path in _data_dir(lake_store).rglob("*.parquet")}


def _catalog_files(postgres: PostgresServer, lake_store: str) -> set[str]:
    """Names of every data and delete file the catalog names, in any snapshot, read straight
    from its PostgreSQL tables (DuckLake names each file by a fresh UUID)."""
    out = postgres.psql(_database(lake_store), "SELECT path FROM ducklake_data_file UNION ALL "
                                               "SELECT path FROM ducklake_delete_file")
    return {Path(line).name for line in out.splitlines() if line.strip()}


def _orphans(postgres: PostgresServer, lake_store: str) -> set[str]:
    return _data_files(lake_store) - _catalog_files(postgres, lake_store)


def _start_ingest(lake_store: str, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "llem", "ingest", "--store", lake_store,
                             str(folder)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=cli_env())


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _kill_during_write(lake_store: str, folder: Path) -> None:
    """Start an ingest and SIGKILL it the moment its first Parquet file appears (frozen by
    SIGSTOP first, so that it cannot reach its commit in between)."""
    before = _data_files(lake_store)
    proc = _start_ingest(lake_store, folder)
    try:
        deadline = time.monotonic() + 120
        while not _data_files(lake_store) - before:
            assert proc.poll() is None, "the ingest ended before it wrote a data file"
            assert time.monotonic() < deadline, "the ingest wrote no data file in 120 s"
            time.sleep(0.001)
        os.kill(proc.pid, signal.SIGSTOP)
    finally:
        _kill(proc)


def _check_whole_batches(lake_store: str, expected_results: int) -> None:
    """Every batch holds exactly the results, documents and files it recorded."""
    batches = lake_rows(lake_store, "SELECT batch_id, results_added, files_new "
                                    "FROM ingest_batches")
    per_batch = dict(lake_rows(lake_store, "SELECT ingest_batch_id, count(*) FROM results "
                                           "GROUP BY ingest_batch_id"))
    docs_per_batch = dict(lake_rows(lake_store, "SELECT ingest_batch_id, count(*) FROM "
                                                "documents GROUP BY ingest_batch_id"))
    for batch_id, results_added, files_new in batches:
        assert per_batch.get(batch_id, 0) == results_added, batch_id
        assert docs_per_batch.get(batch_id, 0) == files_new, batch_id
    assert set(per_batch) <= {b for b, _, _ in batches}  # no result outside a batch
    assert lake_rows(lake_store, "SELECT count(*), count(DISTINCT result_id) FROM results") == [
        (expected_results, expected_results)]


@pytest.mark.slow  # several 200-file ingests, each killed and then redone
def test_sigkill_of_an_ingest_stores_all_of_its_batch_or_none(
        lake_store: str, postgres: PostgresServer, tmp_path: Path) -> None:
    seed = result_files(tmp_path / "seed", 1, "seed")
    assert llem("ingest", "--store", lake_store, str(seed[0])).returncode == 0
    rng = random.Random(SEED)
    moments: list[float | None] = [rng.uniform(*KILL_WINDOW_SEC) for _ in range(4)]
    moments.insert(2, None)  # None: killed during the write, at its first Parquet file
    stored = 1
    for trial, moment in enumerate(moments):
        folder = tmp_path / f"batch{trial}"
        result_files(folder, BATCH_FILES, f"k{trial}")
        if moment is None:
            _kill_during_write(lake_store, folder)
        else:
            proc = _start_ingest(lake_store, folder)
            try:
                proc.wait(timeout=moment)
            except subprocess.TimeoutExpired:
                pass
            finally:
                _kill(proc)

        landed = lake_rows(lake_store, "SELECT count(*) FROM results "
                                       f"WHERE experiment_id LIKE 'k{trial}/%'")[0][0]
        assert landed in (0, BATCH_FILES), (trial, moment, landed)
        _check_whole_batches(lake_store, stored + landed)
        if moment is None:
            assert landed == 0
            assert _orphans(postgres, lake_store), "the killed write left no Parquet file"

        redo = llem("ingest", "--store", lake_store, str(folder), "--lock-timeout", "30")
        assert redo.returncode == 0, redo.stderr
        added = BATCH_FILES - landed
        assert redo.stdout.startswith(f"{added} new, {landed} already present, 0 refused")
        stored += BATCH_FILES
        _check_whole_batches(lake_store, stored)
        assert lake_rows(lake_store, "SELECT count(DISTINCT ingest_batch_id) FROM results "
                                     f"WHERE experiment_id LIKE 'k{trial}/%'") == [(1,)]


def test_store_clean_deletes_only_orphaned_files_and_time_travel_still_works(
        lake_store: str, postgres: PostgresServer, tmp_path: Path) -> None:
    first = result_files(tmp_path / "a", 60, "a")
    done = llem("ingest", "--store", lake_store, str(tmp_path / "a"))
    assert done.returncode == 0, done.stderr
    first_batch = done.stdout.split("batch ", 1)[1].split()[0]
    result_files(tmp_path / "b", 60, "b")
    assert llem("ingest", "--store", lake_store, str(tmp_path / "b")).returncode == 0
    result_files(tmp_path / "killed", BATCH_FILES, "killed")
    _kill_during_write(lake_store, tmp_path / "killed")
    orphans = _orphans(postgres, lake_store)
    assert orphans
    kept = _data_files(lake_store) - orphans
    assert kept == _catalog_files(postgres, lake_store) & _data_files(lake_store)

    # By default only files older than an hour go: these are seconds old.
    fresh = llem("store", "clean", "--store", lake_store)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.splitlines()[-1].startswith("deleted 0 orphaned data file(s)")
    assert _data_files(lake_store) == kept | orphans

    dry = llem("store", "clean", "--store", lake_store, "--older-than", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert {Path(line).name for line in dry.stdout.splitlines()[:-1]} == orphans
    assert dry.stdout.splitlines()[-1].startswith(f"would delete {len(orphans)} orphaned")
    assert _data_files(lake_store) == kept | orphans

    clean = llem("store", "clean", "--store", lake_store, "--older-than", "0")
    assert clean.returncode == 0, clean.stderr
    assert {Path(line).name for line in clean.stdout.splitlines()[:-1]} == orphans
    assert _data_files(lake_store) == kept

    assert lake_rows(lake_store, "SELECT count(*) FROM results") == [(120,)]
    as_of = llem("query", "--store", lake_store, "--as-of", first_batch, "--format", "json",
                 "SELECT count(*) AS n, min(experiment_id) AS lo, max(experiment_id) AS hi "
                 "FROM results")
    assert as_of.returncode == 0, as_of.stderr
    assert json.loads(as_of.stdout) == [{"n": len(first), "lo": "a/e0000", "hi": "a/e0059"}]
    history = json.loads(llem("store", "history", "--store", lake_store, "--format",
                              "json").stdout)
    for row in history:  # every committed snapshot still reads whole
        snap = llem("query", "--store", lake_store, "--as-of", str(row["snapshot_id"]),
                    "--format", "json", "SELECT count(*) AS n FROM results")
        assert snap.returncode == 0, snap.stderr
        assert json.loads(snap.stdout)[0]["n"] == sum(
            r["results_added"] for r in history if r["snapshot_id"] <= row["snapshot_id"])
    # The next ingest works after all this.
    again = llem("ingest", "--store", lake_store, str(tmp_path / "killed"))
    assert again.returncode == 0, again.stderr
    assert lake_rows(lake_store, "SELECT count(*) FROM results") == [(120 + BATCH_FILES,)]


def test_store_clean_of_a_file_store_says_there_is_nothing_to_clean(tmp_path: Path) -> None:
    store = tmp_path / "llem.duckdb"
    result_files(tmp_path / "f", 2, "f")
    assert llem("ingest", "--store", str(store), str(tmp_path / "f")).returncode == 0
    before = store.read_bytes()

    done = llem("store", "clean", "--store", str(store), "--older-than", "0")

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{store}: a DuckDB file store keeps its data inside the file, and a " \
                          "killed ingest leaves nothing in it: nothing to clean\n"
    assert store.read_bytes() == before


def test_store_clean_refuses_a_negative_age_and_a_missing_lake(
        lake_store: str, tmp_path: Path) -> None:
    negative = llem("store", "clean", "--store", lake_store, "--older-than", "-1")
    assert negative.returncode == 2
    assert negative.stderr == "llem: error: --older-than -1: give a number of seconds >= 0\n"
    missing = llem("store", "clean", "--store", lake_store)
    assert missing.returncode == 2
    assert len(missing.stderr.splitlines()) == 1 and "no store here" in missing.stderr
    assert not list(_data_dir(lake_store).iterdir())
