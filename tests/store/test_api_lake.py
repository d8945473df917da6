"""The Python API on a lab's DuckLake: ``llem.open_store(URL)`` reads the lake itself."""

from __future__ import annotations

from pathlib import Path

import llem
from llem.store.ingest import ingest_paths
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
