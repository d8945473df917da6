"""Shared test set-up.

torch's intra-op threads thrash on small shared machines, so every test runs single-threaded.
The host-wide measurement locks of a test run live in a folder of their own, so tests
neither wait for nor block real measurements on the same host. One PostgreSQL server serves
the session's DuckLake stores, a fresh database each (tests/postgres.py).
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.postgres import PostgresServer, available
from tests.store_kinds import KINDS, StoreUnderTest, make_store

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_LOCK_DIR = tempfile.mkdtemp(prefix="llem-test-locks-")
os.environ["LLEM_LOCK_DIR"] = _LOCK_DIR
atexit.register(shutil.rmtree, _LOCK_DIR, ignore_errors=True)


def skip_or_fail(reason: str, require_env: str) -> NoReturn:
    """Skip when a system tool is missing, but fail where CI installed it (require_env=1)."""
    if os.environ.get(require_env) == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole session, stopped and removed at its end."""
    reason = available()
    if reason is not None:
        skip_or_fail(reason, "LLEM_REQUIRE_POSTGRES")
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def lake_store(postgres: PostgresServer, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh DuckLake store: a new catalog database and an empty data folder."""
    dbname = postgres.create_database()
    data_path = tmp_path / "lake-data"
    data_path.mkdir()
    yield postgres.lake_url(dbname, data_path)
    postgres.drop_database(dbname)


@pytest.fixture(params=KINDS)
def empty_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """An empty store of each kind (a DuckDB file, a DuckLake) under the test's folder."""
    root = tmp_path / "store"
    root.mkdir()
    return make_store(request.param, root, request)
