"""``--as-of BATCH_ID``: the store as it stood right after one ingest batch committed, and
``llem store history``, which lists the batches such an id can name.

The oracle for "as it stood" is a second store that only ever received the first batch's
files: as of the first batch, the two-batch store must answer as that one does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

import llem
from llem.cli import main
from llem.errors import LlemError
from llem.store.connection import is_sealed, open_store_read_only
from llem.store.ingest import ingest_paths
from llem.store.query import QueryError, run_query
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_kinds import KINDS, StoreUnderTest, make_store

#: Each table and view with the column that identifies its rows.
KEYS = {
    "results": "result_id",
    "process_results": "process_result_id",
    "cycle_statistics": "experiment_id",
    "timeseries": "process_result_id || ':' || t_sec",
    "documents": "content_sha256",
    "latest_results": "result_id",
    "results_flat": "result_id",
}


@dataclass(frozen=True)
class Stores:
    both: str  # two ingests, into a store of each kind
    first_only: Path  # the first ingest's files alone, always a file: the oracle
    first: str  # batch ids of the two ingests
    second: str
    under_test: StoreUnderTest

    @property
    def folder(self) -> Path:
        return self.under_test.root


@pytest.fixture(scope="module", params=KINDS)
def stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    root = tmp_path_factory.mktemp("as-of")
    under_test = make_store(request.param, root, request)
    one = [*sdocs.write_all(root / "one", {
        "agg": sdocs.renamed(docs.v3_aggregated(), "agg-a"),
        "mc": sdocs.renamed(docs.v3_multi_cycle(2), "mc-a"),
    }), sdocs.v3_result_with_timeseries(root / "one" / "ts", "ts-a", samples=5)]
    # A newer run of the same experiment and config: it replaces the first batch's runs in
    # latest_results, so the view as of the first batch must be computed, not filtered.
    two = [*sdocs.write_all(root / "two", {
        "agg": sdocs.renamed(docs.v3_aggregated(), "agg-b"),
        "mc": sdocs.renamed(docs.v2_multi_cycle(3), "mc-b"),
    }), sdocs.v3_result_with_timeseries(root / "two" / "ts", "ts-b", samples=7)]
    both = under_test.store
    first = ingest_paths(one, both)
    second = ingest_paths(two, both)
    assert first.ok and second.ok and first.batch_id and second.batch_id
    first_only = root / "first-only.duckdb"
    assert ingest_paths(one, first_only).ok
    return Stores(both, first_only, first.batch_id, second.batch_id, under_test)


def _keys(store: str | Path, name: str, as_of: str | None = None) -> list[str]:
    sql = f"SELECT {KEYS[name]} FROM {name} ORDER BY 1"
    return [row[0] for row in run_query(store, sql, as_of=as_of).rows]


@pytest.mark.parametrize("name", sorted(KEYS))
def test_as_of_the_first_batch_every_table_and_view_is_the_first_store(
    stores: Stores, name: str
) -> None:
    pinned = _keys(stores.both, name, as_of=stores.first)
    assert pinned == _keys(stores.first_only, name)
    assert pinned != _keys(stores.both, name)  # the second batch changed it


@pytest.mark.parametrize("name", sorted(KEYS))
def test_as_of_the_second_batch_everything_is_there(stores: Stores, name: str) -> None:
    assert _keys(stores.both, name, as_of=stores.second) == _keys(stores.both, name)


def test_ingest_batches_as_of_holds_the_batches_up_to_it(stores: Stores) -> None:
    sql = "SELECT batch_id FROM ingest_batches ORDER BY committed_at"
    assert run_query(stores.both, sql, as_of=stores.first).rows == [(stores.first,)]
    assert run_query(stores.both, sql, as_of=stores.second).rows == [
        (stores.first,), (stores.second,)]


def _query_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("source", ["results", "latest_results", "main.results"])
def test_llem_query_as_of_counts_change(
    stores: Stores, source: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def count(*as_of: str) -> int:
        rows = _query_json(capsys, ["query", "--store", stores.both, *as_of, "--format",
                                    "json", f"SELECT count(*) AS n FROM {source}"])
        return rows[0]["n"]

    alone = run_query(stores.first_only, f"SELECT count(*) FROM {source}").rows[0][0]
    assert count("--as-of", stores.first) == alone
    assert count("--as-of", stores.second) == count() > alone


def test_llem_results_list_as_of(stores: Stores, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*extra: str) -> set[str]:
        rows = _query_json(capsys, ["results", "list", "--store", stores.both,
                                    "--format", "json", *extra])
        return {row["result_id"] for row in rows}

    assert ids("--as-of", stores.first) == set(_keys(stores.first_only, "results"))
    assert ids("--as-of", stores.first, "--latest") == set(
        _keys(stores.first_only, "latest_results"))
    assert ids("--as-of", stores.second) == ids() == set(_keys(stores.both, "results"))


def test_the_python_api_as_of(stores: Stores) -> None:
    with llem.open_store(stores.both, as_of=stores.first) as store:
        assert sorted(store.results()["result_id"]) == _keys(stores.first_only, "results")
        assert sorted(store.results(latest=True)["result_id"]) == _keys(
            stores.first_only, "latest_results")
        assert stores.first in repr(store)
    with llem.open_store(stores.both, as_of=stores.second) as store:
        assert sorted(store.results()["result_id"]) == _keys(stores.both, "results")


@pytest.mark.parametrize("argv", [
    ["query", "SELECT 1"],
    ["results", "list"],
    ["results", "show", "agg-a"],
])
def test_an_unknown_batch_is_one_line_and_exit_2(
    stores: Stores, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = stores.under_test.state()
    assert main([*argv, "--store", stores.both, "--as-of", "19700101T000000Z-nope"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "no ingest batch '19700101T000000Z-nope'" in lines[0], lines
    assert captured.out == ""
    assert stores.under_test.state() == before


def test_a_prefix_of_a_batch_id_is_not_accepted(stores: Stores) -> None:
    """A cited id must go on naming one batch as the store grows, so only full ids count."""
    with pytest.raises(LlemError, match="no ingest batch"):
        llem.open_store(stores.both, as_of=stores.first[:16])


@pytest.mark.parametrize(("template", "reason"), [
    ("ATTACH '{other}' AS v (READ_WRITE)", "nothing was run"),
    ("COPY results TO '{target}'", "nothing was run"),
    ("CREATE TEMP VIEW results AS SELECT 1", "nothing was run"),
    ("DROP VIEW results", "nothing was run"),
    ("SET lock_configuration = false", "nothing was run"),
    ("SELECT 1; DELETE FROM results", "nothing was run"),
    ("SELECT * FROM read_text('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_parquet('{parquet}')", "file system operations are disabled"),
])
def test_as_of_stays_sealed(
    stores: Stores, template: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = stores.folder
    parquet = next((folder / "one" / "ts" / "timeseries").glob("*.parquet"))
    sql = template.format(other=stores.first_only, target=folder / "one" / "agg.json",
                          parquet=parquet)
    before = stores.under_test.state()
    assert main(["query", "--store", stores.both, "--as-of", stores.first, sql]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and reason in lines[0], lines
    with pytest.raises(QueryError, match=reason):
        run_query(stores.both, sql, as_of=stores.first)
    conn = open_store_read_only(stores.both, as_of=stores.first)
    try:
        assert is_sealed(conn)
    finally:
        conn.close()
    assert stores.under_test.state() == before


def test_naming_the_store_catalog(stores: Stores) -> None:
    """As docs/store.md says: on a file, --as-of pins the usual names, not the
    catalog-qualified ones; a DuckLake is attached at the batch's snapshot, names and all."""
    whole = run_query(stores.both, "SELECT count(*) FROM llem.main.results", as_of=stores.first)
    if stores.under_test.kind == "file":
        assert whole.rows == run_query(stores.both, "SELECT count(*) FROM results").rows
    else:
        assert whole.rows == run_query(stores.first_only, "SELECT count(*) FROM results").rows


def test_llem_store_history_lists_the_batches_oldest_first(
    stores: Stores, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _query_json(capsys, ["store", "history", "--store", stores.both,
                                "--format", "json"])
    assert [row["batch_id"] for row in rows] == [stores.first, stores.second]
    assert [row["results_added"] for row in rows] == [
        len(_keys(stores.first_only, "results")),
        len(_keys(stores.both, "results")) - len(_keys(stores.first_only, "results")),
    ]
    assert all(row["files_new"] == 3 and row["committed_at"] for row in rows)
    assert rows[0]["committed_at"] <= rows[1]["committed_at"]
    assert main(["store", "history", "--store", stores.both]) == 0
    table = capsys.readouterr().out
    assert table.index(stores.first) < table.index(stores.second) and "(2 rows)" in table


def test_llem_store_history_of_a_missing_store_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["store", "history", "--store", str(tmp_path / "none.duckdb")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "no store here" in lines[0]
