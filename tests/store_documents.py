"""Documents and files for the store tests, built on the format builders of ``documents.py``.

The format builders reuse one experiment id across formats; the store treats a second,
different document under an id as a conflict, so these helpers give each document its own id
and write the time-series Parquet files llem results name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from llem.store.lake import connect_lake
from llem.store_address import LakeAddress, parse_store_address

from . import documents as docs


def fetch_all(store: str | Path, sql: str) -> list[tuple]:
    """Rows of ``sql`` run on the store (a file, or a DuckLake address), opened read-only
    by DuckDB itself, not through llem's reading path."""
    address = parse_store_address(store)
    if isinstance(address, LakeAddress):
        conn = connect_lake(address, read_only=True)
    else:
        conn = duckdb.connect(str(address), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def column_layout(store: Path) -> list[tuple]:
    """Every table's columns and their types, in order."""
    return fetch_all(store, "SELECT table_name, column_name, data_type FROM "
                            "information_schema.columns ORDER BY table_name, ordinal_position")


def fresh_store_layout(folder: Path) -> list[tuple]:
    """The column layout of a store made new by this llem: what a migration must end with."""
    from llem.store.connection import open_store

    fresh = folder / "fresh.duckdb"
    open_store(fresh).close()
    return column_layout(fresh)


def renamed(document: dict[str, Any], experiment_id: str) -> dict[str, Any]:
    """A copy of ``document`` with ``experiment_id`` changed everywhere it identifies."""
    doc = docs.clone(document)
    doc["experiment_id"] = experiment_id
    for process in doc.get("process_results", []):
        process["experiment_id"] = experiment_id
    for cycle in doc.get("cycle_results", []):
        cycle["experiment_id"] = experiment_id
        for process in cycle.get("process_results", []):
            process["experiment_id"] = experiment_id
    return doc


def every_format() -> dict[str, dict[str, Any]]:
    """One document per format, each under its own experiment id (file stem -> document)."""
    return {
        "v2_dec_aggregated": renamed(docs.v2_aggregated_dec2025(), "v2-dec"),
        "v2_jan_aggregated": renamed(docs.v2_aggregated_jan2026(), "v2-jan"),
        "v2_jan_raw": renamed(docs.v2_raw_jan2026(rank=0), "v2-lone"),
        "v2_multi_cycle": renamed(docs.v2_multi_cycle(3), "v2-mc"),
        "v3_raw": renamed(docs.v3_raw(rank=0), "v3-lone"),
        "v3_aggregated": renamed(docs.v3_aggregated(), "v3-agg"),
        "v3_multi_cycle": renamed(docs.v3_multi_cycle(2), "v3-mc"),
        "later_line_3_0": docs.upstream("gpt2_transformers_v2.0.json"),
    }


def write_all(folder: Path, documents: dict[str, dict[str, Any]]) -> list[Path]:
    """Write each document as ``<name>.json``; returns the paths in order."""
    folder.mkdir(parents=True, exist_ok=True)
    return [docs.write(folder, f"{name}.json", doc) for name, doc in documents.items()]


def timeseries_table(rank: int, samples: int = 5, power_w: float = 200.0) -> pa.Table:
    """Samples of one GPU at 0.1 s intervals, in the TimeSeriesRecord columns."""
    t = [i * 0.1 for i in range(samples)]
    return pa.table(
        {
            "rank": pa.array([rank] * samples, pa.int64()),
            "device_id": [f"GPU-{rank:08d}-uuid"] * samples,
            "device_index": pa.array([rank] * samples, pa.int64()),
            "t_sec": t,
            "in_window": [True] * samples,
            "power_w": [power_w + i for i in range(samples)],
            "energy_j": [power_w * x for x in t],
            "temperature_c": [55.0] * samples,
            "sm_clock_mhz": [1410.0] * samples,
            "mem_clock_mhz": [1593.0] * samples,
            "gpu_utilization_pct": [90.0] * samples,
            "mem_utilization_pct": [40.0] * samples,
            "memory_used_mb": [2048.0] * samples,
            "clock_event_reasons": pa.array([0] * samples, pa.int64()),
        }
    )


def v3_result_with_timeseries(
    folder: Path, experiment_id: str = "camp/run1/exp-ts", samples: int = 5
) -> Path:
    """A v3 experiment folder laid out as llem writes it; returns the result path.

    ``raw/process_<rank>.json`` name ``../timeseries/process_<rank>.parquet`` (relative to the
    raw file); ``result.json`` embeds them and lists ``timeseries/process_<rank>.parquet``
    (relative to itself) in ``timeseries_paths``.
    """
    doc = renamed(docs.v3_aggregated(), experiment_id)
    (folder / "timeseries").mkdir(parents=True, exist_ok=True)
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    names = []
    for process in doc["process_results"]:
        rank = process["process_index"]
        pq.write_table(
            timeseries_table(rank, samples), folder / "timeseries" / f"process_{rank}.parquet"
        )
        process["timeseries_path"] = f"../timeseries/process_{rank}.parquet"
        (folder / "raw" / f"process_{rank}.json").write_text(json.dumps(process))
        names.append(f"timeseries/process_{rank}.parquet")
    doc["timeseries_paths"] = names
    doc["timeseries_path"] = names[0]
    path = folder / "result.json"
    path.write_text(json.dumps(doc))
    return path


def aggregated_multi_cycle(path: Path, campaign: str, *, batch_size: int | None = None,
                           model_name: str | None = None) -> Path:
    """A two-cycle result of experiment ``mc`` built the way llem aggregates one (40 J and
    90 J over 100 output tokens, 4 s and 10 s), written to ``path``."""
    from llem.aggregate import aggregate_cycles
    from llem.config.campaign import make_spec, parse_experiment
    from llem.domain.experiment import AggregatedResult

    spec = make_spec(parse_experiment({"config_name": "mc", "model_name": "tiny",
                                       "num_cycles": 2}), campaign, "run1")
    effective: dict[str, Any] = {"config_name": "mc"}
    if batch_size is not None:
        effective["batching"] = {"batch_size": batch_size}
    cycles = []
    for k, energy in enumerate((40.0, 90.0)):
        doc = docs.v3_aggregated((energy,))
        doc.update(cycle_id=k, output_tokens=100, energy_per_output_token_j=energy / 100,
                   output_tokens_per_second=100 / (4.0 + 6 * k))
        if model_name is not None:
            doc["model_name"] = model_name
        doc["effective_config"] = effective
        cycles.append(AggregatedResult.model_validate(doc))
    path.write_text(aggregate_cycles(cycles, spec).model_dump_json())
    return path
