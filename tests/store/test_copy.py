"""``llem store copy``: a store's whole history moved into another store, file or DuckLake.

The oracle is the source itself: after a copy every table of the destination, read back with
``SELECT *`` in a fixed order, must equal the source's value for value, and ``--as-of`` any
copied batch must answer as the source does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from llem.cli import main
from llem.errors import StoreError
from llem.store.connection import open_store_read_only
from llem.store.copy import COPIED_TABLES, copy_store
from llem.store.history import batch_history
from llem.store.ingest import ingest_paths
from llem.store.query import run_query
from tests import documents as docs
from tests import store_documents as sdocs

KINDS = ("file", "lake")


def _dump(store: str | Path) -> dict[str, list[tuple]]:
    """Every copied table, every column, in one fixed order."""
    return {t.name: run_query(store, f"SELECT * FROM {t.name} ORDER BY ALL").rows
            for t in COPIED_TABLES}


def _store(kind: str, name: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "lake":
        return request.getfixturevalue("lake_store")
    return str(tmp_path / f"{name}.duckdb")


def _first_files(root: Path) -> list[Path]:
    return [*sdocs.write_all(root / "one", {
        "agg": sdocs.renamed(docs.v3_aggregated(), "agg-a"),
        "mc": sdocs.renamed(docs.v3_multi_cycle(2), "mc-a"),
    }), sdocs.v3_result_with_timeseries(root / "one" / "ts", "ts-a", samples=5)]


@pytest.fixture
def source(tmp_path: Path) -> tuple[Path, list[str]]:
    """A file store of two batches (aggregated, multi-cycle, time series), and their ids."""
    store = tmp_path / "source.duckdb"
    two = [*sdocs.write_all(tmp_path / "two", {
        "agg": sdocs.renamed(docs.v3_aggregated(), "agg-b"),
        "v2": sdocs.renamed(docs.v2_multi_cycle(3), "mc-b"),
    }), sdocs.v3_result_with_timeseries(tmp_path / "two" / "ts", "ts-b", samples=7)]
    first, second = ingest_paths(_first_files(tmp_path), store), ingest_paths(two, store)
    assert first.ok and second.ok and first.batch_id and second.batch_id
    return store, [first.batch_id, second.batch_id]


def test_file_to_lake_to_file_keeps_every_table_value_for_value(
        source: tuple[Path, list[str]], lake_store: str, tmp_path: Path) -> None:
    src, batches = source
    want = _dump(src)
    assert all(want[name] for name in want)  # every table has rows to compare
    there = copy_store(src, lake_store)
    assert there.batches == batches
    back = tmp_path / "back.duckdb"
    assert copy_store(lake_store, back).batches == batches
    assert _dump(lake_store) == want
    assert _dump(back) == want


def test_as_of_each_copied_batch_on_a_lake_answers_as_the_source(
        source: tuple[Path, list[str]], lake_store: str) -> None:
    src, batches = source
    copy_store(src, lake_store)
    for batch in batches:
        for table in COPIED_TABLES:
            sql = f"SELECT * FROM {table.name} ORDER BY ALL"
            assert (run_query(lake_store, sql, as_of=batch).rows
                    == run_query(src, sql, as_of=batch).rows), (batch, table.name)
        sql = "SELECT result_id FROM latest_results ORDER BY 1"
        assert run_query(lake_store, sql, as_of=batch).rows == run_query(
            src, sql, as_of=batch).rows
    # Both batches came in the copy's one snapshot, which history shows for each.
    conn = open_store_read_only(lake_store)
    try:
        history = batch_history(conn)
    finally:
        conn.close()
    rows = [dict(zip(history.columns, row, strict=True)) for row in history.rows]
    assert [r["batch_id"] for r in rows] == batches
    assert rows[0]["snapshot_id"] is not None
    assert rows[0]["snapshot_id"] == rows[1]["snapshot_id"]


@pytest.mark.parametrize("kind", KINDS)
def test_copying_twice_or_back_adds_nothing(
        kind: str, source: tuple[Path, list[str]], tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    src, batches = source
    dest = _store(kind, "dest", tmp_path, request)
    assert copy_store(src, dest).batches == batches
    after_first = _dump(dest)
    again = copy_store(src, dest)
    assert (again.batches, again.batches_present) == ([], 2)
    assert _dump(dest) == after_first
    source_before = _dump(src)
    assert copy_store(dest, src).batches == []
    assert _dump(src) == source_before


def _conflicting_store(dest: str, tmp_path: Path, same_content: bool) -> None:
    """Ingest into ``dest`` a batch of its own holding one id the source holds: the very
    same file, or a different result under the same result id."""
    if same_content:
        files = _first_files(tmp_path / "dest-files")[:1]
    else:
        doc = sdocs.renamed(docs.v3_aggregated(energy_j=(151.0, 160.0)), "agg-a")
        files = sdocs.write_all(tmp_path / "dest-files", {"agg": doc})
    assert ingest_paths(files, dest).ok


@pytest.mark.parametrize("same_content", [False, True], ids=["different", "same"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_id_held_from_another_batch_refuses_the_whole_copy(
        kind: str, same_content: bool, source: tuple[Path, list[str]], tmp_path: Path,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = source
    dest = _store(kind, "dest", tmp_path, request)
    _conflicting_store(dest, tmp_path, same_content)
    before = _dump(dest)
    assert main(["store", "copy", "--from", str(src), "--to", dest]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("llem: error: ")
    assert "nothing copied" in err[0]
    if same_content:
        assert "documents.content_sha256" in err[0] and "same content" in err[0]
    else:
        assert "'agg-a" in err[0] and "different content" in err[0]
    assert _dump(dest) == before


def test_the_cli_prints_progress_on_stderr_and_one_summary_line(
        source: tuple[Path, list[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    src, _ = source
    dest = tmp_path / "dest.duckdb"
    assert main(["store", "copy", "--from", str(src), "--to", str(dest), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("would copy 2 batches (") and len(out.splitlines()) == 1
    assert not dest.exists()
    assert main(["store", "copy", "--from", str(src), "--to", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("copied 2 batches (") and len(out.splitlines()) == 1
    results = run_query(src, "SELECT count(*) FROM results").rows[0][0]
    assert f" {results} results, " in out
    assert "llem: copied 2 rows of ingest_batches" in err
    assert "llem: checked 2 batches" in err
    assert main(["store", "copy", "--from", str(src), "--to", str(dest), "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("would copy 0 batches")


def test_a_store_cannot_be_copied_into_itself(source: tuple[Path, list[str]]) -> None:
    src, _ = source
    before = _dump(src)
    with pytest.raises(StoreError, match="the same store"):
        copy_store(src, src.parent / "." / src.name)
    assert _dump(src) == before


#: The copy, in a child process that stops for good right after its k-th progress line
#: (each is written inside the destination's open transaction), to be killed there.
_HELD_COPY = """
import sys, time
from llem.store.copy import copy_store
stop_at, seen = int(sys.argv[3]), []
def hold(message):
    seen.append(message)
    if len(seen) == stop_at:
        print("holding: " + message, file=sys.stderr, flush=True)
        time.sleep(600)
copy_store(sys.argv[1], sys.argv[2], notify=hold)
"""


@pytest.mark.parametrize("stop_at", [1, 4, 7])
@pytest.mark.parametrize("kind", KINDS)
def test_a_killed_copy_leaves_the_destination_as_before(
        kind: str, stop_at: int, source: tuple[Path, list[str]], tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    src, batches = source
    dest = _store(kind, "dest", tmp_path, request)
    own = sdocs.write_all(tmp_path / "own", {"own": sdocs.renamed(docs.v3_aggregated(), "own")})
    assert ingest_paths(own, dest).ok
    before = _dump(dest)
    child = subprocess.Popen([sys.executable, "-c", _HELD_COPY, str(src), dest, str(stop_at)],
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stderr.readline() if child.stderr is not None else ""
        assert line.startswith("holding: "), line
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert _dump(dest) == before
    # The destination works on: the next copy brings everything.
    assert copy_store(src, dest, lock_timeout_sec=30).batches == batches
    after = _dump(dest)
    assert after["ingest_batches"] == sorted(before["ingest_batches"]
                                             + _dump(src)["ingest_batches"])
