"""The Python API: ``llem.open_store()`` reads the store as sealed as ``llem query`` does."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

import llem
from llem.errors import LlemError
from llem.store.ingest import ingest_paths
from llem.store.query import QueryError
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store.test_query_sealed import REFUSALS, _names, sealed  # noqa: F401
from tests.store_kinds import StoreUnderTest


@pytest.mark.parametrize(("template", "reason"), REFUSALS)
def test_sql_refuses_what_llem_query_refuses(sealed: StoreUnderTest,  # noqa: F811
                                              template: str, reason: str) -> None:
    sql = template.format(**_names(sealed))
    before = sealed.state()
    # refused statements never run; a file read is refused by the sealed connection, at the
    # latest when the relation is read
    refusal = QueryError if reason == "nothing was run" else (QueryError, duckdb.Error)
    with llem.open_store(sealed.store) as store, pytest.raises(refusal) as err:
        store.sql(sql).fetchall()
    assert reason in str(err.value)
    assert sealed.state() == before


def test_sql_gives_a_relation_in_every_form(sealed: StoreUnderTest) -> None:  # noqa: F811
    with llem.open_store(sealed.store) as store:
        relation = store.sql("SELECT result_id, total_energy_j FROM results "
                             "WHERE source_format = ? ORDER BY result_id", ["v2_aggregated"])
        assert isinstance(relation, duckdb.DuckDBPyRelation)
        assert relation.arrow().read_all().column("result_id").to_pylist() == ["v2-dec", "v2-jan"]
        frame = relation.df()
        assert list(frame["result_id"]) == ["v2-dec", "v2-jan"]
    with pytest.raises(LlemError, match="closed"):
        store.sql("SELECT 1")


def test_results_filters_are_values(tmp_path: Path,
                                    empty_store: StoreUnderTest) -> None:
    llem_doc = sdocs.renamed(docs.v3_aggregated(), "camp/run1/exp")
    llem_doc.update(campaign="camp", run_id="run1")
    other = sdocs.renamed(docs.v3_aggregated(), "camp/run2/exp")
    other.update(campaign="camp", run_id="run2", energy_source="estimate")
    paths = [docs.write(tmp_path, "a.json", llem_doc), docs.write(tmp_path, "b.json", other),
             docs.write(tmp_path, "up.json", docs.upstream("gpt2_transformers_v2.0.json"))]
    store_path = empty_store.store
    assert ingest_paths(paths, store_path).ok
    with llem.open_store(store_path) as store:
        everything = store.results()
        assert len(everything) == 3 and "batch_size" in everything.columns
        assert list(store.results(campaign="camp", run="run2")["experiment_id"]) == [
            "camp/run2/exp"]
        assert list(store.results(source="estimate")["run_id"]) == ["run2"]
        assert list(store.results(model="meta-llama/Llama-3.2-1B", run="run1")["run_id"]) == [
            "run1"]
        assert store.results(source_format="later_line")["model_name"].tolist() == ["gpt2"]
        # a value holding SQL is a value that matches nothing
        assert store.results(model="x' OR 1=1; DROP TABLE results; --").empty
        with pytest.raises(LlemError, match="unknown filter"):
            store.results(gpu="H100")
    assert sdocs.fetch_all(store_path, "SELECT count(*) FROM results") == [(3,)]


def test_import_llem_stays_light() -> None:
    import subprocess

    code = ("import sys, llem; llem.open_store; "
            "print(sorted(m for m in ('duckdb', 'pandas', 'llem.store.api') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"
