"""A lab's DuckLake store (catalog in PostgreSQL, Parquet data) next to the embedded file store.

Starts its own PostgreSQL server (tests/postgres.py) and measures, each against a baseline
run in the same script:

* ingest: 8 ``llem ingest`` processes of N results each, started together, into one lake:
  wall time, and its ratio to ONE ``llem ingest`` of the same 8*N results into a file store;
  then every result is checked to be in the lake exactly once;
* query: ``SELECT model_name, batch_size, count(*), avg(energy_per_output_token_j) FROM
  results GROUP BY ALL`` over M results in each kind of store (rows made by SQL, as
  bench_query.py makes them): median of repeated runs on an open read-only connection, and
  of whole calls (open, query, close), lake / file; the target is within 3x;
* readers under writers: ``llem.open_store(URL).sql(...)`` repeated while 4 ``llem ingest``
  processes of N results each write into the lake, against the same reads with no writer:
  median and max latency, their ratio, and reads that took over 1 s, for the whole read
  (open, query, close) and for the query on the open handle (a reader never waits for a
  writer; on a small machine it shares the CPUs with them).

The default sizes run in a few minutes on 2 cores; ``--full`` takes the target sizes
(N = 1,000, M = 100,000).

Usage: python benchmarks/bench_lake.py [--full] [--per-ingester N] [--query-results M]
                                       [--repeats R] [--idle-reads K]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_ingest import make_documents, write_files  # noqa: E402
from bench_query import insert_results, median_ms  # noqa: E402

import llem  # noqa: E402
from llem.store.connection import open_store, open_store_read_only, writing_store  # noqa: E402
from llem.store.query import execute, run_query  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

GROUP_BY = ("SELECT model_name, batch_size, count(*), avg(energy_per_output_token_j) "
            "FROM results GROUP BY ALL")
READ = "SELECT count(*) FROM results"
QUERY_TARGET_RATIO = 3.0
SLOW_READ_SEC = 1.0
INGESTERS = 8
WRITERS = 4
#: Writers queue for the lake's ingest lock one after another; none may give up waiting.
LOCK_TIMEOUT_SEC = 3600


@dataclass
class Figure:
    """One line of the printed table."""

    what: str
    value: str
    ratio: str = ""


def _ingest_command(store: str, folders: list[Path]) -> list[str]:
    return [sys.executable, "-m", "llem", "ingest", "--store", store,
            "--lock-timeout", str(LOCK_TIMEOUT_SEC), *map(str, folders)]


def _env() -> dict[str, str]:
    """This checkout's llem in the ingest processes, single-threaded like the tests."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def start_ingests(store: str, folders: list[Path]) -> list[subprocess.Popen[str]]:
    """One ``llem ingest`` process per folder, all started before any is waited for."""
    return [subprocess.Popen(_ingest_command(store, [folder]), env=_env(), text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for folder in folders]


def finish(processes: list[subprocess.Popen[str]]) -> None:
    """Wait for every process; a failed ingest stops the benchmark with its output."""
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"llem ingest failed ({process.returncode}):\n{out}")


def make_folders(work: Path, runs: list[str], per_run: int) -> list[Path]:
    """A folder of ``per_run`` result files for each run id (ids differ between runs)."""
    for run in runs:
        write_files(work / run, make_documents(per_run, run_id=run))
    return [work / run for run in runs]


def check_once(store: str, runs: list[str], per_run: int) -> int:
    """Assert that the store holds each result of ``runs`` exactly once; their count."""
    expected = {f"bench/{run}/exp-{i:05d}" for run in runs for i in range(per_run)}
    conn = open_store_read_only(store)
    try:
        rows = conn.execute("SELECT experiment_id, count(*) FROM results GROUP BY ALL").fetchall()
    finally:
        conn.close()
    counts = dict(rows)
    assert set(counts) == expected, f"{len(expected - set(counts))} results missing"
    assert all(n == 1 for n in counts.values()), "a result is stored more than once"
    return len(counts)


def bench_ingest(pg: PostgresServer, work: Path, per_ingester: int) -> tuple[str, list[Figure]]:
    """8 concurrent ingesters into a lake against one of 8*N into a file; the lake's URL."""
    lake = pg.lake_url(pg.create_database("bench"), work / "lake-data")
    runs = [f"ingester{k}" for k in range(INGESTERS)]
    folders = make_folders(work / "files", runs, per_ingester)
    start = time.perf_counter()
    finish(start_ingests(lake, folders))
    lake_sec = time.perf_counter() - start
    present = check_once(lake, runs, per_ingester)
    print(f"ingest: {present} of {INGESTERS * per_ingester} results in the lake, each exactly "
          "once", flush=True)

    start = time.perf_counter()
    finish([subprocess.Popen(_ingest_command(str(work / "file.duckdb"), folders), env=_env(),
                             text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)])
    file_sec = time.perf_counter() - start
    total = INGESTERS * per_ingester
    return lake, [
        Figure(f"ingest {total}: 1 process into a file (baseline)", f"{file_sec:.1f} s", "1.00"),
        Figure(f"ingest {total}: {INGESTERS} processes into the lake", f"{lake_sec:.1f} s",
               f"{lake_sec / file_sec:.2f}"),
    ]


def _same_groups(first: list[tuple], second: list[tuple]) -> bool:
    """The same groups and counts, averages equal up to the order of addition."""
    first, second = sorted(first), sorted(second)
    return len(first) == len(second) and all(
        a[:3] == b[:3] and math.isclose(a[3], b[3], rel_tol=1e-9)
        for a, b in zip(first, second, strict=True))


def bench_query(pg: PostgresServer, work: Path, count: int, repeats: int) -> list[Figure]:
    """The group-by over ``count`` results in a file store and in a lake."""
    file_store = work / "query.duckdb"
    conn = open_store(file_store)
    insert_results(conn, count)
    conn.close()
    lake = pg.lake_url(pg.create_database("query"), work / "query-lake-data")
    with writing_store(lake) as conn:
        insert_results(conn, count)

    figures = []
    for kind, store in (("file", str(file_store)), ("lake", lake)):
        reader = open_store_read_only(store)
        try:
            groups = execute(reader, GROUP_BY).rows
            open_ms = median_ms(lambda r=reader: execute(r, GROUP_BY), repeats)
        finally:
            reader.close()
        call_ms = median_ms(lambda s=store: run_query(s, GROUP_BY), repeats)
        figures.append((kind, groups, open_ms, call_ms))
    (_, file_groups, file_open, file_call), (_, lake_groups, lake_open, lake_call) = figures
    assert _same_groups(file_groups, lake_groups), "the lake answers other groups"
    open_ratio, call_ratio = lake_open / file_open, lake_call / file_call
    verdict = "met" if open_ratio <= QUERY_TARGET_RATIO else "MISSED"
    print(f"query: {len(file_groups)} groups over {count} results, same in both; median of "
          f"{repeats}; target lake/file within {QUERY_TARGET_RATIO:g}x: {verdict}", flush=True)
    return [
        Figure(f"group-by over {count}, file, connection open", f"{file_open:.1f} ms", "1.00"),
        Figure(f"group-by over {count}, lake, connection open", f"{lake_open:.1f} ms",
               f"{open_ratio:.2f}"),
        Figure(f"group-by over {count}, file, open+query+close", f"{file_call:.1f} ms", "1.00"),
        Figure(f"group-by over {count}, lake, open+query+close", f"{lake_call:.1f} ms",
               f"{call_ratio:.2f}"),
    ]


def timed_read(store: str) -> tuple[float, float]:
    """One reader by the Python API: seconds to open the store, query and close it, and
    seconds of the query alone."""
    start = time.perf_counter()
    with llem.open_store(store) as handle:
        query_start = time.perf_counter()
        handle.sql(READ).fetchall()
        query_sec = time.perf_counter() - query_start
    return time.perf_counter() - start, query_sec


def _latency_figures(label: str, reads: list[tuple[float, float]],
                     baseline: list[tuple[float, float]] | None) -> list[Figure]:
    """Median (with its ratio to the baseline's), max and reads over 1 s, for the whole
    read and for its query alone."""
    figures = []
    for part, what in ((0, "open+query+close"), (1, "query on the open handle")):
        seconds = [read[part] for read in reads]
        median_ms = statistics.median(seconds) * 1000.0
        base_ms = statistics.median(read[part] for read in baseline or reads) * 1000.0
        slow = sum(1 for sec in seconds if sec > SLOW_READ_SEC)
        figures += [
            Figure(f"{what}, {label}: median", f"{median_ms:.0f} ms",
                   f"{median_ms / base_ms:.2f}"),
            Figure(f"{what}, {label}: max", f"{max(seconds) * 1000.0:.0f} ms"),
            Figure(f"{what}, {label}: over {SLOW_READ_SEC:g} s", f"{slow} of {len(seconds)}"),
        ]
    return figures


def bench_readers(lake: str, work: Path, per_writer: int, idle_reads: int,
                  earlier_runs: list[str]) -> list[Figure]:
    """Reader latency with no writer, then while 4 ingesters write into ``lake`` (which
    holds ``per_writer`` results of each of ``earlier_runs``)."""
    runs = [f"writer{k}" for k in range(WRITERS)]
    folders = make_folders(work / "writer-files", runs, per_writer)
    timed_read(lake)  # warm once
    idle = [timed_read(lake) for _ in range(idle_reads)]
    writers = start_ingests(lake, folders)
    busy = []
    while any(process.poll() is None for process in writers):
        busy.append(timed_read(lake))
    finish(writers)
    check_once(lake, earlier_runs + runs, per_writer)
    print(f"readers: {len(busy)} reads while {WRITERS} ingesters of {per_writer} results wrote; "
          "every result of theirs landed once", flush=True)
    return (_latency_figures("no writer (baseline)", idle, None)
            + _latency_figures(f"{WRITERS} writing", busy, idle))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true",
                        help="Target sizes: 1,000 results per ingester, 100,000 to query.")
    parser.add_argument("--per-ingester", type=int, help="Results per ingest process.")
    parser.add_argument("--query-results", type=int, help="Results in the queried stores.")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--idle-reads", type=int, default=30)
    args = parser.parse_args()
    per_ingester = args.per_ingester or (1000 if args.full else 100)
    query_results = args.query_results or (100_000 if args.full else 20_000)

    work = Path(tempfile.mkdtemp(prefix="llem-bench-lake-"))
    try:
        with PostgresServer() as pg:
            lake, figures = bench_ingest(pg, work, per_ingester)
            figures += bench_query(pg, work, query_results, args.repeats)
            figures += bench_readers(lake, work, per_ingester, args.idle_reads,
                                     [f"ingester{k}" for k in range(INGESTERS)])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"DuckLake on PostgreSQL against the file store ({os.cpu_count()} CPUs)")
    print(f"{'run':<58}{'value':>12}{'ratio':>8}")
    for figure in figures:
        print(f"{figure.what:<58}{figure.value:>12}{figure.ratio:>8}")


if __name__ == "__main__":
    main()
