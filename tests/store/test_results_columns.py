"""The wider results table (store schema 3): what every row carries, and the migration to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from llem.store.ddl import STORE_SCHEMA_VERSION
from llem.store.ingest import ingest_paths
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_documents import fetch_all
from tests.store_kinds import StoreUnderTest

#: Columns added in store schema version 3.
V3_COLUMNS = (
    "num_devices", "gpu_names", "gpu_uuids", "host", "slurm_job_id",
    "adjusted_energy_per_output_token_j", "avg_power_w", "ttft_p50_ms", "ttft_p95_ms",
    "itl_p50_ms", "itl_p95_ms", "latency_unavailable_reason", "thermal_throttle_duration_sec",
    "num_cycles", "energy_per_output_token_ci_95_lower", "energy_per_output_token_ci_95_upper",
    "throughput_ci_95_lower", "throughput_ci_95_upper", "ci_n", "interval_unavailable_reason",
)

_ENV = {
    "gpu": {"name": "NVIDIA H100", "uuid": "GPU-aaaa", "index": 0},
    "cpu": {"platform": "Linux"},
    "collected_at": "2026-11-01T11:59:00+00:00",
    "host": "node17",
    "slurm_job_id": "4242",
}


def gpu_result(experiment_id: str) -> dict[str, Any]:
    """An llem result on one GPU under SLURM, with latency percentiles and a throttle."""
    doc = sdocs.renamed(docs.v3_aggregated((150.0, 160.0)), experiment_id)
    doc["environment"] = _ENV
    doc["aggregation"]["num_processes"] = 2
    doc["measured_window"] = {"start_time": "2026-11-01T12:00:00+00:00",
                              "end_time": "2026-11-01T12:00:10+00:00", "duration_sec": 10.0}
    doc["energy_breakdown"] = {"raw_j": 310.0, "adjusted_j": 290.0, "baseline_power_w": 2.0,
                               "baseline_method": "fresh"}
    doc["latency_stats"] = {
        "ttft_mean_ms": 21.0, "ttft_median_ms": 20.0, "ttft_p95_ms": 30.0, "ttft_p99_ms": 31.0,
        "ttft_min_ms": 10.0, "ttft_max_ms": 32.0, "ttft_samples": 8,
        "itl_mean_ms": 5.0, "itl_median_ms": 4.5, "itl_p95_ms": 9.0, "itl_samples": 50,
    }
    doc["thermal_throttle"] = {"detected": True, "hw_slowdown": True,
                               "throttle_duration_sec": 1.25, "max_temperature_c": 84.0}
    for process in doc["process_results"]:
        process["gpu_id"] = 0
        process["environment"] = _ENV
    return doc


def test_every_row_has_the_columns_researchers_compare_on(
    tmp_path: Path, empty_store: StoreUnderTest
) -> None:
    store = empty_store.store
    cpu = sdocs.renamed(docs.v3_aggregated((150.0,)), "cpu-run")
    cpu["process_results"][0]["gpu_id"] = -1
    cpu["process_results"][0]["gpu_name"] = ""
    paths = [docs.write(tmp_path, "gpu.json", gpu_result("gpu-run")),
             docs.write(tmp_path, "cpu.json", cpu),
             docs.write(tmp_path, "up.json", docs.upstream("gpt2_transformers_v2.0.json"))]
    assert ingest_paths(paths, store).ok
    columns = ", ".join(V3_COLUMNS)
    rows = {r[0]: dict(zip(("id", *V3_COLUMNS), r, strict=True)) for r in fetch_all(
        store, f"SELECT experiment_id, {columns} FROM results")}
    gpu = rows["gpu-run"]
    assert (gpu["num_devices"], json.loads(gpu["gpu_names"]), json.loads(gpu["gpu_uuids"])) == (
        1, ["NVIDIA H100"], ["GPU-aaaa"])
    assert (gpu["host"], gpu["slurm_job_id"]) == ("node17", "4242")
    assert gpu["avg_power_w"] == 31.0  # 310 J over a 10 s window
    assert gpu["adjusted_energy_per_output_token_j"] == 290.0 / 512
    assert (gpu["ttft_p50_ms"], gpu["ttft_p95_ms"], gpu["itl_p50_ms"], gpu["itl_p95_ms"]) == (
        20.0, 30.0, 4.5, 9.0)
    assert gpu["latency_unavailable_reason"] is None
    assert gpu["thermal_throttle_duration_sec"] == 1.25
    assert (gpu["num_cycles"], gpu["ci_n"]) == (1, None)
    assert "one cycle" in gpu["interval_unavailable_reason"]
    # a CPU-only run ran on 0 GPUs; unknown figures are null with a reason
    assert rows["cpu-run"]["num_devices"] == 0
    assert rows["cpu-run"]["gpu_uuids"] is None
    upstream = next(r for k, r in rows.items() if k.startswith("gpt2"))
    assert upstream["ttft_p50_ms"] is None
    assert "no latency statistics" in upstream["latency_unavailable_reason"]
    # the flat view carries them too
    flat = {r[0] for r in fetch_all(store, "SELECT column_name FROM duckdb_columns() "
                                           "WHERE table_name = 'results_flat'")}
    assert {"batch_size", "host", "avg_power_w", "itl_p95_ms", "ci_n"} <= flat


def test_cycles_of_a_multi_cycle_result_carry_its_intervals_and_n(tmp_path: Path) -> None:
    path = sdocs.aggregated_multi_cycle(tmp_path / "result.json", "c")
    store = tmp_path / "s.duckdb"
    assert ingest_paths([path], store).ok
    rows = fetch_all(store, "SELECT cycle_id, num_cycles, ci_n, "
                            "energy_per_output_token_ci_95_lower, "
                            "energy_per_output_token_ci_95_upper, throughput_ci_95_lower, "
                            "interval_unavailable_reason FROM results ORDER BY cycle_id")
    assert [r[:3] for r in rows] == [(0, 2, 2), (1, 2, 2)]
    low, high, throughput_low, reason = rows[0][3:]
    assert 0 < low < 0.4 < 0.9 < high
    assert throughput_low > 0 and reason is None


def _downgrade_to_v2(store: Path) -> None:
    """Give a current store the layout of store schema version 2."""
    from llem.store.ddl import VIEWS

    conn = duckdb.connect(str(store))
    for name in VIEWS:
        conn.execute(f"DROP VIEW {name}")
    for column in V3_COLUMNS:
        conn.execute(f"ALTER TABLE results DROP COLUMN {column}")
    conn.execute("UPDATE store_meta SET value = '2' WHERE key = 'store_schema_version'")
    conn.close()


def test_a_version_2_store_is_migrated_to_the_wider_results_table(tmp_path: Path) -> None:
    store = tmp_path / "llem.duckdb"
    first = [docs.write(tmp_path, "gpu.json", gpu_result("gpu-run")),
             sdocs.v3_result_with_timeseries(tmp_path / "ts", "camp/run1/ts")]
    assert ingest_paths(first, store).ok
    samples = fetch_all(store, "SELECT count(*) FROM timeseries")
    _downgrade_to_v2(store)

    notes: list[str] = []
    report = ingest_paths([], store, notify=notes.append)
    assert report.ok
    assert any("migrating" in n and "schema version 2" in n for n in notes)
    assert sdocs.column_layout(store) == sdocs.fresh_store_layout(tmp_path)
    meta = dict(fetch_all(store, "SELECT key, value FROM store_meta"))
    assert meta["store_schema_version"] == str(STORE_SCHEMA_VERSION) == "3"
    assert "migrated_from_v2_at" in meta
    assert (tmp_path / "llem.duckdb.v2.bak").is_file()
    assert fetch_all(store, "SELECT host, avg_power_w, itl_p95_ms FROM results "
                            "WHERE experiment_id = 'gpu-run'") == [("node17", 31.0, 9.0)]
    assert fetch_all(store, "SELECT count(*) FROM timeseries") == samples
