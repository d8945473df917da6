"""User SQL reaches the store's tables and views and nothing else.

Every statement here is one a hostile user could type into ``llem query`` (or hand to the
Python API). Refused ones must come back as one line with a non-zero exit and leave every file
as it was: the store, a second store beside it, a file a COPY could overwrite, a folder an
EXPORT could create.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llem.cli import main
from llem.store.connection import is_sealed, open_store_read_only
from llem.store.history import list_results
from llem.store.ingest import ingest_paths
from llem.store.query import QueryError, execute, run_query
from tests import documents as docs
from tests import store_documents as sdocs

REPO = Path(__file__).resolve().parents[2]

#: Statements that must be refused; {store}, {other}, {target}, {folder}, {dump} and
#: {parquet} name the store, a second store, an existing file, the folder holding them all,
#: a folder that must not appear and a Parquet file outside the store.
REFUSED = [
    "ATTACH '{other}' AS v (READ_WRITE); DELETE FROM v.results",
    "ATTACH '{other}' AS v",
    "ATTACH '{other}' AS v (READ_WRITE)",
    "ATTACH '{store}' AS w (READ_WRITE)",
    "DETACH llem",
    "USE system",
    "ATTACH '{other}' AS v; USE v; DETACH llem; ATTACH '{store}' AS w (READ_WRITE); "
    "DELETE FROM w.results",
    "COPY (SELECT 1) TO '{target}'",
    "COPY results TO '{folder}/x.parquet'",
    "COPY results TO '{other}' (FORMAT csv)",
    "EXPORT DATABASE '{dump}'",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET threads",
    "SET threads = 1",
    "PRAGMA threads = 1",
    "PRAGMA enable_profiling",
    "PRAGMA profiling_output = '{folder}/profile.json'",
    "PRAGMA force_checkpoint",
    "CREATE TABLE t AS SELECT 1",
    "CREATE TEMP TABLE t (x INTEGER)",
    "INSERT INTO store_meta VALUES ('k', 'v')",
    "DELETE FROM results",
    "UPDATE results SET total_energy_j = 0",
    "DROP TABLE results",
    "WITH doomed AS (SELECT 1) DELETE FROM results",
    "CHECKPOINT",
    "CALL checkpoint()",
    "CALL pragma_table_info('results')",
    "BEGIN TRANSACTION",
    "SET VARIABLE x = 1",
    "PREPARE p AS SELECT 1",
    "VACUUM",
    "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{target}'",
    "SELECT 1; DELETE FROM results",
    "SELECT 1 /* a note */; DELETE FROM results",
    "SELECT 1 -- a note\n; DELETE FROM results",
    "SELECT 'a;b'; ATTACH '{other}' AS v (READ_WRITE)",
]

#: Reads of files outside the store: they parse as SELECT, so the connection refuses them.
FILE_READS = [
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('{parquet}')",
    "SELECT * FROM '{parquet}'",
    "SELECT * FROM glob('/root/**')",
    "SELECT * FROM read_blob('{other}')",
    "SELECT * FROM sniff_csv('{target}')",
]

#: Every refused statement with the words its one-line refusal must hold.
REFUSALS = [(sql, "nothing was run") for sql in REFUSED] + [
    (sql, "file system operations are disabled by configuration") for sql in FILE_READS
]

#: Statements that only read, and what their output must contain.
ALLOWED = [
    ("SELECT count(*) AS n FROM results", "9"),
    ("SELECT result_id FROM latest_results WHERE result_id = 'v2-dec'", "v2-dec"),
    ("WITH e AS (SELECT total_energy_j FROM results) SELECT max(total_energy_j) FROM e", "314"),
    ("EXPLAIN SELECT * FROM results", "physical_plan"),
    ("EXPLAIN ANALYZE SELECT count(*) FROM results", "analyzed_plan"),
    ("DESCRIBE results", "total_energy_j"),
    ("SHOW TABLES", "latest_results"),
    ("SUMMARIZE results", "total_energy_j"),
    ("PRAGMA table_info('results')", "energy_source"),
    ("FROM results SELECT count(*) AS n", "9"),
    ("SELECT 'a;b' AS s", "a;b"),
    ("SELECT 1 AS one; -- a trailing comment", "one"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store, a second store, an existing file and a Parquet file, side by side."""
    root = tmp_path_factory.mktemp("sealed")
    inputs = tmp_path_factory.mktemp("sealed-inputs")
    assert ingest_paths(sdocs.write_all(inputs / "all", sdocs.every_format()),
                        root / "llem.duckdb").ok
    other = docs.write(inputs, "other.json", docs.v3_aggregated())
    assert ingest_paths([other], root / "other.duckdb").ok
    (root / "target.txt").write_text("precious\n")
    pq.write_table(pa.table({"secret": ["outside the store"]}), root / "outside.parquet")
    return root


def _names(folder: Path) -> dict[str, str]:
    return {
        "store": str(folder / "llem.duckdb"), "other": str(folder / "other.duckdb"),
        "target": str(folder / "target.txt"), "folder": str(folder),
        "dump": str(folder / "dump"), "parquet": str(folder / "outside.parquet"),
    }


def _files(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``: any new, changed or removed file shows."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _refused_in_one_line(err: str, reason: str = "nothing was run") -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("llem: error: ") and reason in lines[0], lines[0]


@pytest.mark.parametrize(("template", "reason"), REFUSALS)
def test_llem_query_refuses_and_leaves_every_file_alone(
    folder: Path, template: str, reason: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(folder)
    sql = template.format(**_names(folder))
    before = _files(folder)
    assert main(["query", "--store", str(folder / "llem.duckdb"), sql]) == 2
    captured = capsys.readouterr()
    _refused_in_one_line(captured.err, reason)
    assert captured.out == ""
    assert _files(folder) == before


@pytest.mark.parametrize("template", [
    "ATTACH '{other}' AS v (READ_WRITE); DELETE FROM v.results",
    "ATTACH '{other}' AS v; USE v; DETACH llem; ATTACH '{store}' AS w (READ_WRITE); "
    "DELETE FROM w.results",
    "COPY results TO '{other}' (FORMAT csv)",
    "SELECT 1 -- a note\n; DELETE FROM results",
])
def test_python_m_llem_query_refuses_too(folder: Path, template: str) -> None:
    sql = template.format(**_names(folder))
    before = _files(folder)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "llem", "query", "--store", str(folder / "llem.duckdb"), sql],
        capture_output=True, text=True, env=env, cwd=folder, timeout=120,
    )
    assert done.returncode == 2
    _refused_in_one_line(done.stderr)
    assert done.stdout == ""
    assert _files(folder) == before


def test_sql_on_stdin_is_refused_the_same_way(
    folder: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _files(folder)
    monkeypatch.setattr(sys, "stdin", io.StringIO("SELECT 1;\nDELETE FROM results;\n"))
    assert main(["query", "--store", str(folder / "llem.duckdb"), "-"]) == 2
    _refused_in_one_line(capsys.readouterr().err)
    assert _files(folder) == before


@pytest.mark.parametrize(("sql", "shown"), ALLOWED)
def test_statements_that_only_read_work(
    folder: Path, sql: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(folder)
    assert main(["query", "--store", str(folder / "llem.duckdb"), "--format", "json", sql]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) and shown in out
    assert _files(folder) == before


@pytest.mark.parametrize(("template", "reason"), REFUSALS)
def test_the_python_api_refuses_the_same_statements(
    folder: Path, template: str, reason: str
) -> None:
    sql = template.format(**_names(folder))
    before = _files(folder)
    with pytest.raises(QueryError) as err:
        run_query(folder / "llem.duckdb", sql)
    assert "\n" not in str(err.value) and reason in str(err.value)
    conn = open_store_read_only(folder / "llem.duckdb")
    try:
        with pytest.raises(QueryError):
            execute(conn, sql)
    finally:
        conn.close()
    assert _files(folder) == before


def test_user_sql_never_runs_on_a_connection_that_is_not_sealed(folder: Path) -> None:
    """execute() checks the connection, so SQL handed to it cannot reach files or write."""
    before = _files(folder)
    plain = duckdb.connect(str(folder / "llem.duckdb"), read_only=True)
    try:
        assert not is_sealed(plain)
        with pytest.raises(QueryError, match="can write or reach files"):
            execute(plain, "SELECT * FROM read_text('/etc/passwd')")
        with pytest.raises(QueryError, match="can write or reach files"):
            list_results(plain)
    finally:
        plain.close()
    exporting = open_store_read_only(folder / "llem.duckdb", export_dir=folder / "dump")
    try:
        assert not is_sealed(exporting)
        with pytest.raises(QueryError, match="can write or reach files"):
            execute(exporting, "SELECT count(*) FROM results")
    finally:
        exporting.close()
    assert _files(folder) == before


@pytest.mark.parametrize("template", [
    "ATTACH '{other}' AS v (READ_WRITE)",
    "COPY (SELECT 1) TO '{target}'",
    "EXPORT DATABASE '{dump}'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM glob('{folder}/*')",
    "SELECT * FROM read_parquet('{parquet}')",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "PRAGMA enable_profiling = 'json'",
    "PRAGMA profiling_output = '{folder}/profile.json'",
    "DELETE FROM results",
])
def test_the_sealed_connection_itself_refuses(folder: Path, template: str) -> None:
    """DuckDB's own controls hold on this DuckDB even without llem's statement check."""
    before = _files(folder)
    conn = open_store_read_only(folder / "llem.duckdb")
    try:
        assert is_sealed(conn)
        with pytest.raises(duckdb.Error):
            conn.execute(template.format(**_names(folder))).fetchall()
    finally:
        conn.close()
    assert _files(folder) == before

def test_bare_enable_profiling_is_refused_by_the_statement_check(folder: Path) -> None:
    """DuckDB 1.5's configuration lock lets the bare ``PRAGMA enable_profiling`` through (it
    prints plans to the terminal; where they go cannot be changed), so llem's statement check
    is what refuses it."""
    before = _files(folder)
    code = main(["query", "--store", str(folder / "llem.duckdb"), "PRAGMA enable_profiling"])
    assert code == 2
    assert _files(folder) == before



def test_the_export_connection_writes_only_into_its_folder(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = _files(folder)
    conn = open_store_read_only(folder / "llem.duckdb", export_dir=out)
    try:
        conn.execute(f"COPY results TO '{out}/r.csv' (FORMAT csv, HEADER)")
        for sql in (f"COPY results TO '{folder}/x.csv'", f"COPY results TO '{out}/../x.csv'",
                    "SELECT * FROM read_text('/etc/passwd')", "SET allowed_directories = ['/']"):
            with pytest.raises(duckdb.Error):
                conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert [p.name for p in out.iterdir()] == ["r.csv"] and not (tmp_path / "x.csv").exists()
    assert _files(folder) == before


def test_llem_export_still_writes_files(folder: Path, tmp_path: Path) -> None:
    before = _files(folder)
    out = tmp_path / "export"
    assert main(["export", "--store", str(folder / "llem.duckdb"), "--out", str(out)]) == 0
    assert (out / "process_results.parquet").is_file() and any((out / "results").rglob("*"))
    assert not list(tmp_path.glob(".export.tmp-*"))
    assert _files(folder) == before


@pytest.mark.parametrize("argv", [
    ["results", "list", "--model", "x'; DELETE FROM results; --"],
    ["results", "list", "--campaign", "'); ATTACH 'other.duckdb' AS v (READ_WRITE); --"],
    ["results", "show", "'; COPY results TO 'target.txt'; --"],
    ["results", "compare", "v2-dec", "' OR 1=1; DROP TABLE results; --"],
])
def test_llem_results_filters_stay_values(
    folder: Path, argv: list[str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Filters and ids are bound as values on the sealed connection, never run as SQL."""
    monkeypatch.chdir(folder)
    before = _files(folder)
    code = main([*argv, "--store", str(folder / "llem.duckdb"), "--format", "json"])
    captured = capsys.readouterr()
    if argv[1] == "list":
        assert code == 0 and json.loads(captured.out) == []
    else:
        assert code == 2 and "no result with id" in captured.err
    assert _files(folder) == before
