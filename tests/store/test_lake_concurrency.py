"""Many writers on one DuckLake store, as real ``llem ingest`` processes started together.

A lab's lake has no unique constraints; llem keeps each file and each id once by judging and
writing under one advisory lock in the catalog database. These tests race real processes
through a start barrier and check what a user relies on: every file lands exactly once, the
same file raced by several writers is stored once, two files claiming one id with different
content never both land, readers never wait for a writer, and a writer that cannot get the
lock in time says so in one line and stores nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.store.lake import ingest_lock
from llem.store_address import parse_store_address
from tests import documents as docs
from tests.store.lake_runs import lake_rows, llem, race, result_files
from tests.store_documents import renamed

WRITERS = 8
TRIALS = 10
RACERS = 4
CLASHES = 5


def _summary(proc) -> str:
    """The ingest's summary line (stdout's first line)."""
    return proc.stdout.splitlines()[0] if proc.stdout else ""


def test_concurrent_ingests_of_different_files_all_land_once(lake_store: str,
                                                              tmp_path: Path) -> None:
    groups = [result_files(tmp_path / f"w{i}", 3, f"camp/w{i}") for i in range(WRITERS)]
    commands = [["ingest", "--store", lake_store, *map(str, files)] for files in groups]

    [done] = race(tmp_path / "race", [commands])

    for proc in done:
        assert proc.returncode == 0, proc.stderr
        assert _summary(proc).startswith("3 new, 0 already present, 0 refused"), proc.stdout
    expected = sorted(f"camp/w{i}/e{j:04d}" for i in range(WRITERS) for j in range(3))
    counts = lake_rows(lake_store, "SELECT experiment_id, count(*) FROM results "
                                   "GROUP BY experiment_id ORDER BY experiment_id")
    assert counts == [(experiment_id, 1) for experiment_id in expected]
    batches = lake_rows(lake_store, "SELECT batch_id, results_added FROM ingest_batches")
    assert len(batches) == WRITERS
    assert all(added == 3 for _, added in batches)
    # Each batch is its own snapshot, tagged with the batch's id.
    history = json.loads(llem("store", "history", "--store", lake_store, "--format",
                              "json").stdout)
    assert sorted(row["batch_id"] for row in history) == sorted(b for b, _ in batches)
    assert len({row["snapshot_id"] for row in history}) == WRITERS


@pytest.mark.slow  # many rounds of racing processes
def test_the_same_file_raced_by_several_writers_is_stored_once(lake_store: str,
                                                               tmp_path: Path) -> None:
    # The lake exists before the races, so each race is about one file, not the first ingest.
    seed = result_files(tmp_path / "seed", 1, "camp/seed")
    assert llem("ingest", "--store", lake_store, str(seed[0])).returncode == 0
    paths = [result_files(tmp_path / f"t{trial}", 1, f"camp/t{trial}")[0]
             for trial in range(TRIALS)]
    rounds = [[["ingest", "--store", lake_store, str(path)]] * RACERS for path in paths]

    for trial, done in enumerate(race(tmp_path / "race", rounds)):
        summaries = [_summary(proc) for proc in done]
        assert [proc.returncode for proc in done] == [0] * RACERS, [p.stderr for p in done]
        new = [s for s in summaries if s.startswith("1 new, 0 already present, 0 refused")]
        present = [s for s in summaries if s.startswith("0 new, 1 already present, 0 refused")]
        assert (len(new), len(present)) == (1, RACERS - 1), (trial, summaries)
        stored = lake_rows(lake_store, "SELECT count(*) FROM results WHERE experiment_id = "
                                       f"'camp/t{trial}/e0000'")
        assert stored == [(1,)], trial
    documents = lake_rows(lake_store, "SELECT count(*), count(DISTINCT content_sha256) "
                                      "FROM documents")
    assert documents == [(TRIALS + 1, TRIALS + 1)]
    assert lake_rows(lake_store, "SELECT count(*) FROM ingest_batches") == [(TRIALS + 1,)]


@pytest.mark.slow  # several rounds of racing processes
def test_two_files_with_one_id_and_different_content_never_both_land(lake_store: str,
                                                                     tmp_path: Path) -> None:
    seed = result_files(tmp_path / "seed", 1, "camp/seed")
    assert llem("ingest", "--store", lake_store, str(seed[0])).returncode == 0
    rounds = []
    for trial in range(CLASHES):
        experiment_id = f"camp/clash{trial}/e0"
        paths = [docs.write(tmp_path, f"clash{trial}_{energy}.json",
                            renamed(docs.v3_aggregated((energy, energy)), experiment_id))
                 for energy in (150.0, 175.0)]
        rounds.append([["ingest", "--store", lake_store, str(path)] for path in paths])

    for trial, done in enumerate(race(tmp_path / "race", rounds)):
        experiment_id = f"camp/clash{trial}/e0"
        codes = sorted(proc.returncode for proc in done)
        assert codes == [0, 1], [(p.stdout, p.stderr) for p in done]
        refused = next(proc for proc in done if proc.returncode == 1)
        assert "different content" in refused.stderr, refused.stderr
        assert _summary(refused).startswith("0 new, 0 already present, 1 refused")
        stored = lake_rows(lake_store, "SELECT count(*) FROM results "
                                       f"WHERE experiment_id = '{experiment_id}'")
        assert stored == [(1,)]
        documents = lake_rows(lake_store, "SELECT count(*) FROM documents "
                                          f"WHERE source_path LIKE '%clash{trial}_%'")
        assert documents == [(1,)]


def test_readers_answer_while_an_ingest_holds_the_lock(lake_store: str, tmp_path: Path) -> None:
    files = result_files(tmp_path / "f", 2, "camp/r")
    assert llem("ingest", "--store", lake_store, *map(str, files)).returncode == 0

    with ingest_lock(parse_store_address(lake_store), timeout_sec=10):
        query = llem("query", "--store", lake_store, "--format", "json",
                     "SELECT count(*) AS n FROM results", timeout_sec=60)
        listing = llem("results", "list", "--store", lake_store, "--format", "json",
                       timeout_sec=60)

    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": 2}]
    assert listing.returncode == 0, listing.stderr
    listed = sorted(row["result_id"] for row in json.loads(listing.stdout))
    assert listed == [rid for (rid,) in lake_rows(lake_store, "SELECT result_id FROM results "
                                                             "ORDER BY result_id")]
    assert len(listed) == 2
    assert "waiting" not in query.stderr + listing.stderr


def test_a_writer_that_cannot_get_the_lock_gives_up_in_one_line(lake_store: str,
                                                                tmp_path: Path) -> None:
    first = result_files(tmp_path / "a", 1, "camp/a")
    assert llem("ingest", "--store", lake_store, str(first[0])).returncode == 0
    late = result_files(tmp_path / "b", 1, "camp/b")

    with ingest_lock(parse_store_address(lake_store), timeout_sec=10):
        proc = llem("ingest", "--store", lake_store, "--lock-timeout", "1", str(late[0]),
                    timeout_sec=60)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert [line for line in lines if "waiting" in line] == [
        f"llem: waiting up to 1 s for another ingest into {parse_store_address(lake_store)} "
        "to commit"]
    errors = [line for line in lines if line.startswith("llem: error:")]
    assert len(errors) == 1 and len(lines) == 2, proc.stderr
    assert "held the store's write lock for over 1 s; gave up" in errors[0]
    assert lake_rows(lake_store, "SELECT count(*) FROM results") == [(1,)]
    assert lake_rows(lake_store, "SELECT count(*) FROM ingest_batches") == [(1,)]
    assert lake_rows(lake_store, "SELECT count(*) FROM documents") == [(1,)]
