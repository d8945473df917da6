"""How long a group-by over 100,000 stored results takes.

Builds a store with llem's own DDL and fills ``results`` with 100,000 synthetic rows (20
models x 4 precisions x 5 batch sizes, nested JSON columns filled as ingest fills them), then
times, side by side:

* baseline: the same group-by over an in-memory DuckDB table holding only the columns the
  query reads (the floor for DuckDB on this machine);
* llem: the group-by on the store opened read-only (connection already open);
* llem, whole call: open the store read-only, run it, close (what ``llem query`` does);
* the ``latest_results`` view, grouped the same way.

Prints the median of repeated runs in milliseconds and the ratio to the baseline; the target
is under 100 ms for the group-by.

Usage: python benchmarks/bench_query.py [--results N] [--repeats N]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llem.store.connection import open_store, open_store_read_only  # noqa: E402
from llem.store.query import run_query  # noqa: E402

TARGET_MS = 100.0

GROUP_BY = (
    "SELECT model_name, precision, batch_size, count(*) AS n, "
    "sum(total_energy_j) AS energy_j, avg(energy_per_output_token_j) AS j_per_token, "
    "avg(throughput_tokens_per_sec) AS tokens_per_sec, "
    "quantile_cont(energy_per_output_token_j, 0.5) AS median_j_per_token "
    "FROM {source} WHERE energy_source IS NOT NULL GROUP BY ALL ORDER BY ALL"
)

_ENV = (
    '{"gpu":{"name":"NVIDIA A100-SXM4-80GB","vram_total_mb":81920.0,"compute_capability":'
    '"8.0","pcie_gen":4,"mig_enabled":false},"cuda":{"version":"12.4","driver_version":'
    '"550.54.15","cudnn_version":"9.1"},"thermal":{"temperature_c":41.0,"power_limit_w":400.0,'
    '"default_power_limit_w":400.0,"fan_speed_pct":null},"cpu":{"governor":"performance",'
    '"model":"AMD EPYC 7763","platform":"Linux"},"container":{"detected":false,"runtime":null},'
    '"collected_at":"2026-11-01T12:00:00+00:00"}'
)


def fill(store: Path, count: int) -> None:
    """``count`` result rows through the real DDL, made by SQL (no files involved)."""
    conn = open_store(store)
    insert_results(conn, count)
    conn.close()


def insert_results(conn: duckdb.DuckDBPyConnection, count: int) -> None:
    """Insert ``count`` synthetic result rows into the store open on ``conn``."""
    conn.execute(
        f"""
        INSERT INTO results BY NAME
        SELECT
            'bench/run1/exp-' || i AS result_id,
            'bench/run1/exp-' || i AS experiment_id,
            'exp-' || (i % 400) AS experiment_name,
            'bench' AS campaign, 'run1' AS run_id,
            'v3_aggregated' AS source_format, '3.0.0' AS source_schema_version,
            'org/model-' || (i % 20) AS model_name, 'pytorch' AS backend,
            ['float32', 'float16', 'bfloat16', 'int8'][1 + (i // 20) % 4] AS precision,
            (2 ** ((i // 80) % 5))::INTEGER AS batch_size,
            md5(((i % 400) || '-' || (i // 400) % 3)::VARCHAR)[:16] AS config_hash,
            1 AS num_processes, 'NVIDIA A100-SXM4-80GB' AS gpu_name,
            2000 + i % 700 AS total_tokens, 1000 AS input_tokens, 1000 + i % 700 AS output_tokens,
            300.0 + (i % 97) AS total_energy_j, 200.0 + (i % 97) AS adjusted_energy_j,
            60.0 AS baseline_power_w, 'fresh' AS baseline_method,
            'nvml_counter' AS energy_source,
            (300.0 + (i % 97)) / (1000 + i % 700) AS energy_per_output_token_j,
            (1000 + i % 700) / 20.0 AS throughput_tokens_per_sec,
            'reported' AS throughput_source, 20.0 AS measured_window_sec,
            TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS start_time,
            TIMESTAMPTZ '2026-01-01 00:00:00+00' + INTERVAL (i) MINUTE + INTERVAL 20 SECOND
            AS end_time,
            false AS times_assumed_utc, '{_ENV}' AS environment,
            '{{"tpot_ms": 12.5}}' AS extended_metrics,
            md5(i::VARCHAR) AS fingerprint, md5(i::VARCHAR) AS measurement_fingerprint,
            md5(i::VARCHAR) || md5(i::VARCHAR) AS content_sha256,
            '/results/bench/exp-' || i || '/result.json' AS source_path,
            'bench-batch' AS ingest_batch_id, TIMESTAMPTZ '2026-11-28 00:00:00+00' AS ingested_at
        FROM range({count}) t(i)
        """
    )


def median_ms(run, repeats: int) -> float:
    run()  # warm caches once
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llem-bench-query-"))
    try:
        store = work / "llem.duckdb"
        fill(store, args.results)

        baseline_conn = duckdb.connect()
        columns = ("model_name, precision, batch_size, total_energy_j, "
                   "energy_per_output_token_j, throughput_tokens_per_sec, energy_source")
        reader = open_store_read_only(store)
        baseline_conn.register(
            "columns", reader.sql(f"SELECT {columns} FROM results").to_arrow_table()
        )
        baseline_conn.execute("CREATE TABLE flat AS SELECT * FROM columns")
        expected = reader.execute(GROUP_BY.format(source="results")).fetchall()
        assert baseline_conn.execute(GROUP_BY.format(source="flat")).fetchall() == expected

        runs = [
            ("in-memory table of the columns (baseline)",
             lambda: baseline_conn.execute(GROUP_BY.format(source="flat")).fetchall()),
            ("store, read-only connection open",
             lambda: reader.execute(GROUP_BY.format(source="results")).fetchall()),
            ("store, open + query + close (llem query)",
             lambda: run_query(store, GROUP_BY.format(source="results"))),
            ("latest_results view, connection open",
             lambda: reader.execute(GROUP_BY.format(source="latest_results")).fetchall()),
        ]
        results = [(name, median_ms(fn, args.repeats)) for name, fn in runs]
        reader.close()
        baseline = results[0][1]
        print(f"group-by over {args.results} results ({len(expected)} groups), "
              f"median of {args.repeats}")
        print(f"{'run':<44}{'ms':>9}{'ratio':>8}")
        for name, ms in results:
            print(f"{name:<44}{ms:>9.1f}{ms / baseline:>8.2f}")
        verdict = "met" if results[1][1] < TARGET_MS else "MISSED"
        print(f"target: group-by on the store under {TARGET_MS:g} ms: {verdict}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
