"""``--as-of SNAPSHOT`` and ``--as-of TIME`` on a DuckLake store, and what a file store says
of them.

Each ingest into a lake is one snapshot; ``llem store history`` names it. As of that
snapshot, or of any time between it and the next ingest's, the lake answers as it did right
after that ingest, which is also what ``--as-of BATCH_ID`` gives on either kind of store.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from llem.cli import main
from llem.store.ingest import ingest_paths
from llem.store.query import run_query
from tests import documents as docs
from tests import store_documents as sdocs
from tests.postgres import PostgresServer

COUNT = "SELECT count(*) AS n FROM results"


@dataclass(frozen=True)
class Lake:
    store: str
    first: str  # batch ids
    second: str
    between: datetime  # a time after the first ingest committed and before the second began


@pytest.fixture(scope="module")
def lake(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("as-of-lake")
    store = postgres.lake_url(postgres.create_database(), root / "data")
    one = sdocs.write_all(root / "one", {"a": sdocs.renamed(docs.v3_aggregated(), "a")})
    two = sdocs.write_all(root / "two", {"b": sdocs.renamed(docs.v3_aggregated(), "b"),
                                         "c": sdocs.renamed(docs.v3_multi_cycle(2), "c")})
    first = ingest_paths(one, store)
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    second = ingest_paths(two, store)
    assert first.ok and second.ok and first.batch_id and second.batch_id
    return Lake(store, first.batch_id, second.batch_id, between)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _snapshots(lake: Lake, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    rows = _json(capsys, ["store", "history", "--store", lake.store, "--format", "json"])
    return {row["batch_id"]: row["snapshot_id"] for row in rows}


def test_history_names_the_snapshot_of_each_batch(
    lake: Lake, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshots = _snapshots(lake, capsys)
    assert list(snapshots) == [lake.first, lake.second]
    assert snapshots[lake.first] < snapshots[lake.second]


@pytest.mark.parametrize("command", [
    ["query", "--format", "json", COUNT],
    ["results", "list", "--format", "json"],
])
def test_a_snapshot_a_time_and_a_batch_give_the_same_answer(
    lake: Lake, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    snapshots = _snapshots(lake, capsys)
    answers = {
        how: _json(capsys, [*command, "--store", lake.store, "--as-of", value])
        for how, value in (("batch", lake.first), ("snapshot", str(snapshots[lake.first])),
                           ("time", lake.between.isoformat()))
    }
    assert answers["batch"] == answers["snapshot"] == answers["time"]
    now = _json(capsys, [*command, "--store", lake.store])
    assert answers["batch"] != now
    assert _json(capsys, [*command, "--store", lake.store, "--as-of",
                          str(snapshots[lake.second])]) == now


def test_a_time_without_offset_is_utc(lake: Lake) -> None:
    naive = lake.between.replace(tzinfo=None).isoformat()
    assert run_query(lake.store, COUNT, as_of=naive).rows == run_query(
        lake.store, COUNT, as_of=lake.first).rows


@pytest.mark.parametrize(("value", "said"), [
    ("999999", "No snapshot found"),
    ("1999-01-01T00:00:00+00:00", "No snapshot found"),
    ("19990101T000000Z-nope", "no ingest batch '19990101T000000Z-nope'"),
])
def test_an_as_of_the_lake_does_not_hold_is_one_line(
    lake: Lake, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["query", "--store", lake.store, "--as-of", value, "SELECT 1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], lines


@pytest.mark.parametrize("value", ["3", "2026-12-01T09:30:00+00:00"])
def test_a_file_store_says_snapshots_and_times_are_a_lakes(
    tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "llem.duckdb"
    assert ingest_paths([docs.write(tmp_path, "a.json", docs.v3_aggregated())], store).ok
    assert main(["query", "--store", str(store), "--as-of", value, "SELECT 1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "an embedded store answers --as-of BATCH_ID" in lines[0], lines
