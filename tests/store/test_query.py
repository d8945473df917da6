"""SQL over the store, the results commands, the views and the exports."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from llem.cli import main
from llem.errors import StoreError
from llem.store.connection import open_store_read_only
from llem.store.export import export_store
from llem.store.history import compare_results, resolve_result_id
from llem.store.ingest import ingest_paths
from llem.store.query import QueryError, run_query
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_kinds import KINDS, StoreUnderTest, make_store


@pytest.fixture(scope="module", params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store of each kind holding a result of every format, one with a time series."""
    folder = tmp_path_factory.mktemp("query")
    files = sdocs.write_all(folder / "in", sdocs.every_format())
    files.append(sdocs.v3_result_with_timeseries(folder / "ts", "camp/run1/ts"))
    root = folder / "store"
    root.mkdir()
    path = make_store(request.param, root, request).store
    assert ingest_paths(files, path).ok
    return path


def test_query_formats(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    sql = ("SELECT result_id, total_energy_j, model_name FROM results "
           "WHERE result_id IN ('v2-dec', 'v2-jan') ORDER BY 1")
    assert main(["query", "--store", store, "--format", "csv", sql]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["result_id", "total_energy_j", "model_name"],
                    ["v2-dec", "250.0", ""], ["v2-jan", "310.0", "meta-llama/Llama-3.2-1B"]]

    assert main(["query", "--store", store, "--format", "json", sql]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"result_id": "v2-dec", "total_energy_j": 250.0, "model_name": None},
        {"result_id": "v2-jan", "total_energy_j": 310.0, "model_name": "meta-llama/Llama-3.2-1B"},
    ]

    assert main(["query", "--store", store, sql]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["result_id", "total_energy_j", "model_name"]
    assert table[2].split() == ["v2-dec", "250", "NULL"]
    assert table[-1] == "(2 rows)"


def test_json_columns_come_out_as_json(store: str) -> None:
    from llem.store.formatting import render

    result = run_query(store, "SELECT energy_breakdown FROM process_results "
                              "WHERE process_result_id = 'v3-agg@0123456789abcdef/process-0'")
    assert json.loads(render(result, "json"))[0]["energy_breakdown"]["raw_j"] == 150.0


def test_sql_errors_are_one_line(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(QueryError) as err:
        run_query(store, "SELECT * FROM no_such_table")
    assert "no_such_table" in str(err.value) and "\n" not in str(err.value)
    assert main(["query", "--store", store, "SELEC 1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llem: error: SQL error: Parser Error")


def test_query_needs_an_existing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here"):
        run_query(tmp_path / "none.duckdb", "SELECT 1")
    assert not (tmp_path / "none.duckdb").exists()


def test_results_list_show_compare(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "list", "--store", store, "--format", "json",
                 "--model", "gpt2"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["result_id"] for r in listed] == ["gpt2_20260313_142111"]

    assert main(["results", "show", "v2-mc/cycle-1", "--store", store]) == 0
    shown = capsys.readouterr().out
    assert "total_energy_j" in shown and "312" in shown and "process results:" in shown

    assert main(["results", "compare", "v2-mc/cycle-0", "v2-mc/cycle-2", "--store", store,
                 "--format", "json"]) == 0
    fields = {r["field"]: r for r in json.loads(capsys.readouterr().out)}
    energy = fields["total_energy_j"]
    assert energy["B - A"] == 4.0 and energy["B / A"] == pytest.approx(314.0 / 310.0)
    assert energy["differs"] == "*" and fields["model_name"]["differs"] == ""


@pytest.mark.parametrize("width", [80, 300])
def test_results_list_shows_batch_size_and_fits_the_terminal(
    store: str, width: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    assert main(["results", "list", "--store", store]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines[:-1]) <= width  # the note may wrap
    header = lines[0].split()
    assert header[:3] == ["result_id", "model_name", "batch_size"]
    # ids stay recognisable: elided in the middle, the cycle at their end kept
    if width == 80:
        assert any("…" in line and line.split()[0].endswith("/cycle-1") for line in lines[2:])
        assert "left out to fit 80 characters" in lines[-1] and "start_time" in lines[-1]
    else:
        assert "start_time" in header and "left out" not in lines[-1]
    # a batch size of 8 is shown for the v2 result that records it
    v2 = next(line for line in lines if line.startswith("v2-jan"))
    assert " 8 " in v2


def test_results_list_into_a_pipe_is_not_cut(store: str) -> None:
    """Output read by another program (a pipe, a file) keeps every column and whole ids."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "llem", "results", "list", "--store", store],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "start_time" in lines[0].split() and "left out" not in lines[-1]
    assert "…" not in proc.stdout


def test_result_ids_resolve_by_unique_prefix(store: str) -> None:
    conn = open_store_read_only(store)
    try:
        assert resolve_result_id(conn, "gpt2") == "gpt2_20260313_142111"
        with pytest.raises(StoreError, match="ambiguous"):
            resolve_result_id(conn, "v2-mc")
        with pytest.raises(StoreError, match="no result"):
            compare_results(conn, "v2-dec", "nothing")
    finally:
        conn.close()


def test_latest_results_keeps_the_newest_per_experiment_and_config(
    tmp_path: Path, empty_store: StoreUnderTest
) -> None:
    older = sdocs.renamed(docs.v3_aggregated(), "camp/run1/e")
    newer = sdocs.renamed(docs.v3_aggregated(), "camp/run2/e")
    newer["start_time"] = "2026-12-01T12:00:00+00:00"
    newer["end_time"] = "2026-12-01T12:00:30+00:00"
    other_config = sdocs.renamed(docs.v3_aggregated(), "camp/run3/e")
    other_config["config_hash"] = "fedcba9876543210"
    store = empty_store.store
    files = [docs.write(tmp_path, f"{i}.json", d)
             for i, d in enumerate([older, newer, other_config])]
    ingest_paths(files, store)
    latest = run_query(store, "SELECT result_id FROM latest_results ORDER BY 1").rows
    assert latest == [("camp/run2/e@0123456789abcdef",), ("camp/run3/e@fedcba9876543210",)]
    flat = run_query(store, "SELECT * FROM results_flat LIMIT 0")
    assert "energy_per_output_token_j" in flat.columns and "environment" not in flat.columns


def test_parquet_export_reads_back_partitioned(store: str, tmp_path: Path) -> None:
    out = tmp_path / "export"
    report = export_store(store, out, "parquet")
    parts = {p.relative_to(out / "results").parent.as_posix()
             for p in (out / "results").rglob("*.parquet")}
    assert "source_schema_version=2.0.0/model_name=meta-llama%2FLlama-3.2-1B" in parts
    assert "source_schema_version=3.0/model_name=gpt2" in parts
    assert "source_schema_version=2.0.0/model_name=__HIVE_DEFAULT_PARTITION__" in parts
    conn = duckdb.connect()
    back = conn.execute(
        f"SELECT count(*), list(total_energy_j ORDER BY total_energy_j), "
        f"count(DISTINCT source_schema_version) "
        f"FROM read_parquet('{out}/results/**/*.parquet', hive_partitioning=true)"
    ).fetchall()
    # Every value compared exactly (a float sum depends on the order DuckDB adds in).
    original = run_query(store, "SELECT count(*), list(total_energy_j ORDER BY total_energy_j), "
                                "count(DISTINCT source_schema_version) FROM results").rows
    assert back == original
    assert report.rows["results"] == original[0][0]
    versions = conn.execute(
        f"SELECT DISTINCT source_schema_version FROM read_parquet("
        f"'{out}/results/**/*.parquet', hive_partitioning=true) ORDER BY 1"
    ).fetchall()
    assert versions == [("2.0.0",), ("3.0",), ("3.0.0",)]
    ts = conn.execute(f"SELECT count(*) FROM '{out}/timeseries.parquet'").fetchall()
    assert ts == [(report.rows["timeseries"],)] and ts[0][0] == 10


def test_csv_export_and_refusing_a_used_folder(
    store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "csv"
    assert main(["export", "--store", store, "--format", "csv", "--out", str(out)]) == 0
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == run_query(store, "SELECT count(*) FROM results").rows[0][0]
    assert {r["result_id"] for r in rows} >= {"v2-dec", "v3-agg@0123456789abcdef"}
    capsys.readouterr()
    assert main(["export", "--store", store, "--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_latest_results_keeps_every_cycle_of_the_newest_run(tmp_path: Path,
                                                            empty_store: StoreUnderTest) -> None:
    """`FROM latest_results GROUP BY ALL` must average all cycles of the newest run."""
    older = sdocs.renamed(docs.v3_multi_cycle(2), "camp/run1/e")
    newer = sdocs.renamed(docs.v3_multi_cycle(2), "camp/run2/e")
    for cycle in newer["cycle_results"]:
        cycle["start_time"] = "2026-12-01T12:00:00+00:00"
        cycle["end_time"] = "2026-12-01T12:00:30+00:00"
    newer["cycle_results"][1]["end_time"] = "2026-12-01T12:01:30+00:00"
    for cycle in (*older["cycle_results"], *newer["cycle_results"]):
        cycle["effective_config"] = {"config_name": "e"}
    store = empty_store.store
    ingest_paths([docs.write(tmp_path, "old.json", older), docs.write(tmp_path, "new.json", newer)],
                 store)
    latest = run_query(store, "SELECT result_id FROM latest_results ORDER BY 1").rows
    assert latest == [("camp/run2/e@0123456789abcdef/cycle-0",),
                      ("camp/run2/e@0123456789abcdef/cycle-1",)]
    grouped = run_query(store, "SELECT count(*), avg(total_energy_j) FROM latest_results "
                               "GROUP BY experiment_name").rows
    assert grouped == [(2, pytest.approx((310.0 + 312.0) / 2))]
