"""User SQL reaches the store's tables and views and nothing else.

Every statement here is one a hostile user could type into ``llem query`` (or hand to the
Python API). Refused ones must come back as one line with a non-zero exit and leave every file
as it was: the store, a second store beside it, a file a COPY could overwrite, a folder an
EXPORT could create.
"""

from __future__ import annotations

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
from tests.store_kinds import KINDS, StoreUnderTest, make_store

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
    "DETACH __ducklake_metadata_llem",
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
    # A DuckLake's catalog server and maintenance: refused by name on either kind of store.
    "SELECT * FROM postgres_query('__ducklake_metadata_llem', 'SELECT 1')",
    "SELECT * FROM \"postgres_query\"('__ducklake_metadata_llem', 'SELECT pg_read_file(''x'')')",
    "CALL postgres_execute('__ducklake_metadata_llem', 'CREATE TABLE x (i int)')",
    "SELECT * FROM postgres_scan('dbname=postgres', 'public', 'ducklake_snapshot')",
    "SELECT * FROM __ducklake_metadata_llem.public.ducklake_snapshot",
    "SELECT * FROM ducklake_delete_orphaned_files('llem', cleanup_all => true)",
    "SELECT * FROM ducklake_cleanup_old_files('llem', cleanup_all => true)",
    "SELECT * FROM ducklake_expire_snapshots('llem', older_than => now())",
    "SELECT * FROM llem.expire_snapshots(older_than => now())",
    "CALL llem.merge_adjacent_files()",
    "CALL llem.set_option('data_inlining_row_limit', 0)",
    "ATTACH '{store}' AS w",
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


@pytest.fixture(scope="module", params=KINDS)
def sealed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> StoreUnderTest:
    """A store of each kind, a second store, an existing file and a Parquet file, side by
    side in one folder."""
    root = tmp_path_factory.mktemp("sealed")
    inputs = tmp_path_factory.mktemp("sealed-inputs")
    store = make_store(request.param, root, request)
    assert ingest_paths(sdocs.write_all(inputs / "all", sdocs.every_format()), store.store).ok
    other = docs.write(inputs, "other.json", docs.v3_aggregated())
    assert ingest_paths([other], root / "other.duckdb").ok
    (root / "target.txt").write_text("precious\n")
    pq.write_table(pa.table({"secret": ["outside the store"]}), root / "outside.parquet")
    return store


def _names(sealed: StoreUnderTest) -> dict[str, str]:
    folder = sealed.root
    return {
        "store": sealed.attach_target, "other": str(folder / "other.duckdb"),
        "target": str(folder / "target.txt"), "folder": str(folder),
        "dump": str(folder / "dump"), "parquet": str(folder / "outside.parquet"),
    }


def _refused_in_one_line(err: str, reason: str = "nothing was run") -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("llem: error: ") and reason in lines[0], lines[0]


@pytest.mark.parametrize(("template", "reason"), REFUSALS)
def test_llem_query_refuses_and_leaves_every_file_alone(
    sealed: StoreUnderTest, template: str, reason: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(sealed.root)
    sql = template.format(**_names(sealed))
    before = sealed.state()
    assert main(["query", "--store", sealed.store, sql]) == 2
    captured = capsys.readouterr()
    _refused_in_one_line(captured.err, reason)
    assert captured.out == ""
    assert sealed.state() == before


@pytest.mark.parametrize("template", [
    "ATTACH '{other}' AS v (READ_WRITE); DELETE FROM v.results",
    "ATTACH '{other}' AS v; USE v; DETACH llem; ATTACH '{store}' AS w (READ_WRITE); "
    "DELETE FROM w.results",
    "COPY results TO '{other}' (FORMAT csv)",
    "SELECT 1 -- a note\n; DELETE FROM results",
])
def test_python_m_llem_query_refuses_too(sealed: StoreUnderTest, template: str) -> None:
    sql = template.format(**_names(sealed))
    before = sealed.state()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-m", "llem", "query", "--store", sealed.store, sql],
        capture_output=True, text=True, env=env, cwd=sealed.root, timeout=120,
    )
    assert done.returncode == 2
    _refused_in_one_line(done.stderr)
    assert done.stdout == ""
    assert sealed.state() == before


def test_sql_on_stdin_is_refused_the_same_way(
    sealed: StoreUnderTest, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = sealed.state()
    monkeypatch.setattr(sys, "stdin", io.StringIO("SELECT 1;\nDELETE FROM results;\n"))
    assert main(["query", "--store", sealed.store, "-"]) == 2
    _refused_in_one_line(capsys.readouterr().err)
    assert sealed.state() == before


@pytest.mark.parametrize(("sql", "shown"), ALLOWED)
def test_statements_that_only_read_work(
    sealed: StoreUnderTest, sql: str, shown: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sealed.state()
    assert main(["query", "--store", sealed.store, "--format", "json", sql]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) and shown in out
    assert sealed.state() == before


@pytest.mark.parametrize(("template", "reason"), REFUSALS)
def test_the_python_api_refuses_the_same_statements(
    sealed: StoreUnderTest, template: str, reason: str
) -> None:
    sql = template.format(**_names(sealed))
    before = sealed.state()
    with pytest.raises(QueryError) as err:
        run_query(sealed.store, sql)
    assert "\n" not in str(err.value) and reason in str(err.value)
    conn = open_store_read_only(sealed.store)
    try:
        with pytest.raises(QueryError):
            execute(conn, sql)
    finally:
        conn.close()
    assert sealed.state() == before


def test_user_sql_never_runs_on_a_connection_that_is_not_sealed(sealed: StoreUnderTest) -> None:
    """execute() checks the connection, so SQL handed to it cannot reach files or write."""
    before = sealed.state()
    plain = sealed.plain_read_only()
    try:
        assert not is_sealed(plain)
        with pytest.raises(QueryError, match="can write or reach files"):
            execute(plain, "SELECT * FROM read_text('/etc/passwd')")
        with pytest.raises(QueryError, match="can write or reach files"):
            list_results(plain)
    finally:
        plain.close()
    exporting = open_store_read_only(sealed.store, export_dir=sealed.root / "dump")
    try:
        assert not is_sealed(exporting)
        with pytest.raises(QueryError, match="can write or reach files"):
            execute(exporting, "SELECT count(*) FROM results")
    finally:
        exporting.close()
    assert sealed.state() == before


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
def test_the_sealed_connection_itself_refuses(sealed: StoreUnderTest, template: str) -> None:
    """DuckDB's own controls hold on this DuckDB even without llem's statement check."""
    before = sealed.state()
    conn = open_store_read_only(sealed.store)
    try:
        assert is_sealed(conn)
        with pytest.raises(duckdb.Error):
            conn.execute(template.format(**_names(sealed))).fetchall()
    finally:
        conn.close()
    assert sealed.state() == before

def test_bare_enable_profiling_is_refused_by_the_statement_check(sealed: StoreUnderTest) -> None:
    """DuckDB 1.5's configuration lock lets the bare ``PRAGMA enable_profiling`` through (it
    prints plans to the terminal; where they go cannot be changed), so llem's statement check
    is what refuses it."""
    before = sealed.state()
    code = main(["query", "--store", sealed.store, "PRAGMA enable_profiling"])
    assert code == 2
    assert sealed.state() == before



def test_the_export_connection_writes_only_into_its_folder(sealed: StoreUnderTest,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = sealed.state()
    conn = open_store_read_only(sealed.store, export_dir=out)
    try:
        conn.execute(f"COPY results TO '{out}/r.csv' (FORMAT csv, HEADER)")
        for sql in (f"COPY results TO '{sealed.root}/x.csv'", f"COPY results TO '{out}/../x.csv'",
                    "SELECT * FROM read_text('/etc/passwd')", "SET allowed_directories = ['/']"):
            with pytest.raises(duckdb.Error):
                conn.execute(sql).fetchall()
    finally:
        conn.close()
    assert [p.name for p in out.iterdir()] == ["r.csv"] and not (tmp_path / "x.csv").exists()
    assert sealed.state() == before


def test_llem_export_still_writes_files(sealed: StoreUnderTest, tmp_path: Path) -> None:
    before = sealed.state()
    out = tmp_path / "export"
    assert main(["export", "--store", sealed.store, "--out", str(out)]) == 0
    assert (out / "process_results.parquet").is_file() and any((out / "results").rglob("*"))
    assert not list(tmp_path.glob(".export.tmp-*"))
    assert sealed.state() == before


@pytest.mark.parametrize("argv", [
    ["results", "list", "--model", "x'; DELETE FROM results; --"],
    ["results", "list", "--campaign", "'); ATTACH 'other.duckdb' AS v (READ_WRITE); --"],
    ["results", "show", "'; COPY results TO 'target.txt'; --"],
    ["results", "compare", "v2-dec", "' OR 1=1; DROP TABLE results; --"],
])
def test_llem_results_filters_stay_values(
    sealed: StoreUnderTest, argv: list[str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Filters and ids are bound as values on the sealed connection, never run as SQL."""
    monkeypatch.chdir(sealed.root)
    before = sealed.state()
    code = main([*argv, "--store", sealed.store, "--format", "json"])
    captured = capsys.readouterr()
    if argv[1] == "list":
        assert code == 0 and json.loads(captured.out) == []
    else:
        assert code == 2 and "no result with id" in captured.err
    assert sealed.state() == before
