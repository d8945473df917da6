"""What measuring cost, in the store: columns, `llem results show`, and the migration to them."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from llem.cli import main
from llem.store.ddl import STORE_SCHEMA_VERSION
from llem.store.ingest import ingest_paths
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_documents import fetch_all
from tests.store_kinds import StoreUnderTest

COST_COLUMNS = ("sampler_cpu_sec", "sampler_cpu_fraction", "sampler_reads",
                "sampler_mean_read_ms", "instrumentation")


def _cost(cpu_sec: float, reads: int, process_cpu_sec: float) -> dict:
    return {
        "sampler_served": ["throttle_reasons", "phase_split"], "sample_interval_ms": 100.0,
        "sampler_cpu_sec": cpu_sec, "reads": reads, "mean_read_ms": 0.25,
        "process_cpu_sec": process_cpu_sec, "cpu_fraction": cpu_sec / process_cpu_sec,
    }


def measured_result(experiment_id: str) -> dict:
    """A v3 aggregated result whose ranks and aggregate carry their instrumentation cost."""
    doc = sdocs.renamed(docs.v3_aggregated(), experiment_id)
    for process in doc["process_results"]:
        process["instrumentation"] = _cost(0.01, 300, 20.0)
    doc["instrumentation"] = _cost(0.02, 600, 40.0)
    return doc


def test_the_cost_is_queryable_and_shown(tmp_path: Path, empty_store: StoreUnderTest,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    store = empty_store.store
    files = [docs.write(tmp_path, "new.json", measured_result("camp/run1/cost")),
             docs.write(tmp_path, "old.json", sdocs.renamed(docs.v3_aggregated(), "old"))]
    assert ingest_paths(files, store).ok
    rows = dict((r[0], r[1:]) for r in fetch_all(
        store, "SELECT result_id, sampler_cpu_sec, sampler_cpu_fraction, sampler_reads, "
        "sampler_mean_read_ms, instrumentation->>'$.sampler_served[0]' FROM results"))
    assert rows["camp/run1/cost@0123456789abcdef"] == (
        0.02, pytest.approx(0.0005), 600, 0.25, "throttle_reasons")
    assert rows["old@0123456789abcdef"] == (None, None, None, None, None)  # not recorded
    assert fetch_all(store, "SELECT process_index, sampler_cpu_sec, sampler_reads FROM "
                     "process_results WHERE experiment_id = 'camp/run1/cost' ORDER BY 1") == [
        (0, 0.01, 300), (1, 0.01, 300)]

    assert main(["results", "show", "camp/run1/cost", "--store", str(store)]) == 0
    shown = capsys.readouterr().out
    for name in COST_COLUMNS:
        assert name in shown
    assert main(["results", "show", "camp/run1/cost", "--store", str(store),
                 "--format", "json"]) == 0
    fields = {row["field"]: row["value"] for row in json.loads(capsys.readouterr().out)}
    assert fields["sampler_reads"] == 600 and fields["sampler_cpu_sec"] == 0.02


def _downgrade_to_v1(store: Path) -> None:
    """Give a current store the layout and fingerprints of store schema version 1."""
    from llem.store.ddl import VIEWS

    conn = duckdb.connect(str(store))
    for name in VIEWS:
        conn.execute(f"DROP VIEW {name}")
    for table in ("results", "process_results"):
        for column in COST_COLUMNS:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        # version 1 fingerprinted a form without the instrumentation field
        conn.execute(f"UPDATE {table} SET fingerprint = 'v1-' || fingerprint")
    for statement in VIEWS.values():
        conn.execute(statement)
    conn.execute("UPDATE store_meta SET value = '1' WHERE key = 'store_schema_version'")
    conn.close()


def test_a_version_1_store_is_migrated_to_the_cost_columns(tmp_path: Path) -> None:
    store = tmp_path / "llem.duckdb"
    cost_doc = measured_result("camp/run1/cost")
    first = [docs.write(tmp_path, "cost.json", cost_doc),
             sdocs.v3_result_with_timeseries(tmp_path / "ts", "camp/run1/ts")]
    assert ingest_paths(first, store).ok
    timeseries_rows = fetch_all(store, "SELECT count(*) FROM timeseries")
    _downgrade_to_v1(store)

    notes: list[str] = []
    # the same result again, in a file with other bytes: the same rows, so not a conflict
    again = tmp_path / "again.json"
    again.write_text(json.dumps(cost_doc, indent=2))
    report = ingest_paths([again], store, notify=notes.append)
    assert report.ok, [f.reason for f in report.files]
    assert any("migrating" in n and "schema version 1" in n for n in notes)

    assert sdocs.column_layout(store) == sdocs.fresh_store_layout(tmp_path)
    meta = dict(fetch_all(store, "SELECT key, value FROM store_meta"))
    assert meta["store_schema_version"] == str(STORE_SCHEMA_VERSION)
    assert "migrated_from_v1_at" in meta
    assert fetch_all(store, "SELECT sampler_cpu_sec, sampler_reads FROM results WHERE "
                     "experiment_id = 'camp/run1/cost'") == [(0.02, 600)]
    assert fetch_all(store, "SELECT count(*) FROM results") == [(2,)]
    assert fetch_all(store, "SELECT count(*) FROM timeseries") == timeseries_rows
    assert fetch_all(store, "SELECT count(*) FROM results WHERE fingerprint LIKE 'v1-%'") == [
        (0,)]
