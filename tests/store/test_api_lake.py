"""The Python API on a lab's DuckLake: ``llem.open_store(URL)`` reads the lake itself."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

import llem
from llem.store.ingest import ingest_paths
from llem.store.query import QueryError, run_query
from llem.store_address import parse_store_address
from tests import documents as docs
from tests import store_documents as sdocs


def test_open_store_reads_a_lake_by_its_address(lake_store: str, tmp_path: Path) -> None:
    first = docs.write(tmp_path, "a.json", sdocs.renamed(docs.v3_aggregated(), "camp/run1/a"))
    second = docs.write(tmp_path, "b.json", sdocs.renamed(docs.v3_aggregated(), "camp/run1/b"))
    batch_a = ingest_paths([first], lake_store).batch_id
    assert ingest_paths([second], lake_store).ok

    with llem.open_store(lake_store) as store:
        ids = store.sql("SELECT experiment_id FROM results ORDER BY 1").fetchall()
        assert ids == [("camp/run1/a",), ("camp/run1/b",)]
        assert lake_store in repr(store)
    with llem.open_store(lake_store, as_of=batch_a) as store:
        assert list(store.results()["experiment_id"]) == ["camp/run1/a"]


def test_sealed_reads_reach_the_lakes_parquet_files_and_nothing_else(
        lake_store: str, tmp_path: Path) -> None:
    # 100 results in one batch go to Parquet files in the data folder (a few rows would be
    # kept in the catalog database instead, which a sealed read reaches without files)
    folder = tmp_path / "results"
    folder.mkdir()
    for i in range(100):
        doc = sdocs.renamed(docs.v3_aggregated(), f"camp/run1/exp-{i:03d}")
        doc["total_energy_j"] = 300.0 + i
        docs.write(folder, f"r{i:03d}.json", doc)
    assert ingest_paths([folder], lake_store).ok
    data_path = parse_store_address(lake_store).data_path
    assert list(Path(data_path, "main", "results").glob("*.parquet"))

    energy = run_query(lake_store, "SELECT sum(total_energy_j) FROM results").rows
    assert energy == [(sum(300.0 + i for i in range(100)),)]
    with llem.open_store(lake_store) as store:
        assert store.sql("SELECT count(DISTINCT experiment_id) FROM results").fetchall() == [
            (100,)]
        outside = folder / "r000.json"
        with pytest.raises((QueryError, duckdb.Error), match="disabled by configuration"):
            store.sql(f"SELECT * FROM read_text('{outside}')").fetchall()
