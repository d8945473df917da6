"""How long ingesting 10,000 v3 aggregated result files takes, validation included.

Side by side on the same records:

* baseline: DuckDB reading them from one NDJSON file into a table (no validation, no
  upgrade, no checks), the fastest way DuckDB itself gets JSON records in;
* llem: ``ingest_paths`` on the 10,000 files: read, JSON Schema validation, v3 models, rows,
  conflict checks, one Arrow insert per table, one transaction.

Prints seconds, results per second and the ratio to the baseline; the target is under 10 s
for llem. A second ingest of the same files (all already present) is timed as well.

Usage: python benchmarks/bench_ingest.py [--results N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llem.store.ingest import ingest_paths  # noqa: E402
from tests import documents  # noqa: E402

TARGET_SEC = 10.0


def make_documents(count: int, run_id: str = "run1") -> list[dict]:
    """``count`` distinct v3 aggregated results (2 processes each) over 10 models; results of
    different ``run_id``s have different ids."""
    template = documents.v3_aggregated()
    out = []
    for i in range(count):
        doc = json.loads(json.dumps(template))
        experiment_id = f"bench/{run_id}/exp-{i:05d}"
        doc["experiment_id"] = experiment_id
        doc["model_name"] = f"org/model-{i % 10}"
        doc["total_energy_j"] = 300.0 + (i % 97)
        for process in doc["process_results"]:
            process["experiment_id"] = experiment_id
            process["model_name"] = doc["model_name"]
        out.append(doc)
    return out


def write_files(folder: Path, docs: list[dict]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, doc in enumerate(docs):
        path = folder / f"r{i:05d}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def baseline_ndjson_sec(folder: Path, docs: list[dict]) -> float:
    """DuckDB loading the same records from one NDJSON file into a table."""
    ndjson = folder / "all.ndjson"
    ndjson.write_text("".join(json.dumps(d) + "\n" for d in docs))
    db = folder / "baseline.duckdb"
    start = time.perf_counter()
    conn = duckdb.connect(str(db))
    conn.execute(
        f"CREATE TABLE results AS SELECT * FROM read_json('{ndjson}', "
        "format='newline_delimited', maximum_object_size=1048576)"
    )
    rows = conn.execute("SELECT count(*) FROM results").fetchall()[0][0]
    conn.close()
    elapsed = time.perf_counter() - start
    assert rows == len(docs), rows
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=10_000)
    parser.add_argument("--keep", type=Path, help="Keep the files and stores here.")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="llem-bench-ingest-"))
    try:
        docs = make_documents(args.results)
        files = write_files(work / "files", docs)
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        baseline = baseline_ndjson_sec(work, docs)

        store = work / "llem.duckdb"
        start = time.perf_counter()
        report = ingest_paths([work / "files"], store)
        llem_sec = time.perf_counter() - start
        assert report.ok and report.results_added == args.results, report.summary()

        start = time.perf_counter()
        again = ingest_paths([work / "files"], store)
        again_sec = time.perf_counter() - start
        assert again.count("already_present") == args.results

        n = args.results
        print(f"{n} v3 aggregated results, {size_mb:.1f} MB of JSON")
        print(f"{'run':<44}{'seconds':>9}{'results/s':>11}{'ratio':>8}")
        rows = [
            ("DuckDB read_json of one NDJSON (baseline)", baseline),
            ("llem ingest of the files (validated)", llem_sec),
            ("llem ingest again (all already present)", again_sec),
        ]
        for name, sec in rows:
            print(f"{name:<44}{sec:>9.2f}{n / sec:>11.0f}{sec / baseline:>8.2f}")
        verdict = "met" if llem_sec < TARGET_SEC else "MISSED"
        print(f"target: llem ingest under {TARGET_SEC:g} s: {verdict}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
