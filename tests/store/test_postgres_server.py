"""The PostgreSQL server the DuckLake store tests run against (tests/postgres.py).

The store tests rely on one server per session handing each test a database of its own, on
nothing outside the machine reaching it, and on no server or folder outliving its test run.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.postgres import HOST, USER, PostgresError, PostgresServer


def _refuses(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.connect((host, port))
        except ConnectionRefusedError:
            return True
    return False


def test_two_databases_from_one_server_are_independent(postgres: PostgresServer) -> None:
    first, second = postgres.create_database(), postgres.create_database()
    assert first != second
    postgres.psql(first, "CREATE TABLE runs (id integer)")
    count = "SELECT count(*) FROM pg_tables WHERE tablename = 'runs'"
    assert postgres.psql(first, count).strip() == "1"
    assert postgres.psql(second, count).strip() == "0"
    postgres.drop_database(first)
    postgres.drop_database(second)
    with pytest.raises(PostgresError, match="does not exist"):
        postgres.psql(first, "SELECT 1")


def test_server_listens_only_on_127_0_0_1(postgres: PostgresServer) -> None:
    assert postgres.psql("postgres", "SHOW listen_addresses").strip() == HOST
    assert not _refuses(HOST, postgres.port)
    # Any other address of this machine is refused; on Linux all of 127/8 is this machine.
    assert _refuses("127.0.0.2", postgres.port)
    assert (postgres.folder / f".s.PGSQL.{postgres.port}").is_socket()


def test_lake_store_is_a_fresh_database_and_an_empty_data_folder(
        lake_store: str, postgres: PostgresServer) -> None:
    url = urlsplit(lake_store)
    assert (url.scheme, url.username, url.hostname, url.port) == (
        "ducklake+postgres", USER, HOST, postgres.port)
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    assert postgres.psql(url.path.lstrip("/"), tables).strip() == "0"
    data_path = Path(parse_qs(url.query)["data_path"][0])
    assert data_path.is_dir() and list(data_path.iterdir()) == []


def test_lake_url_keeps_an_odd_data_path_whole(postgres: PostgresServer) -> None:
    odd = "/data/lake one/a&b=c?#%"
    url = urlsplit(postgres.lake_url("llem_x", odd))
    assert url.path == "/llem_x"
    assert parse_qs(url.query) == {"data_path": [odd]}


def test_stopped_server_leaves_no_folder_and_no_listener(postgres: PostgresServer) -> None:
    server = PostgresServer()
    assert server.folder.is_dir() and server.folder != postgres.folder
    assert not _refuses(HOST, server.port)
    server.stop()
    assert not server.folder.exists()
    assert _refuses(HOST, server.port)
