"""Both kinds of store for parametrized tests: a DuckDB file and a DuckLake on a real
PostgreSQL, with one fingerprint of everything a store is (its files, and for a DuckLake
every table of its catalog database), so a test can show that nothing changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from llem.store.lake import connect_lake
from llem.store_address import LakeAddress, parse_store_address
from tests.postgres import PostgresServer

#: The kinds every store test runs on.
KINDS = ("file", "lake")


@dataclass
class StoreUnderTest:
    """One store: where it is (``store``, for ``--store``), the folder beside it, and for a
    DuckLake the server and database of its catalog."""

    kind: str
    store: str
    root: Path
    server: PostgresServer | None = None
    dbname: str | None = None

    @property
    def attach_target(self) -> str:
        """What a hostile ATTACH would name to reach this store."""
        if self.server is None:
            return self.store
        return (f"ducklake:postgres:dbname={self.dbname} host=127.0.0.1 "
                f"port={self.server.port} user=llem")

    def plain_read_only(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the store that is not sealed (file access on)."""
        if self.server is None:
            return duckdb.connect(self.store, read_only=True)
        address = parse_store_address(self.store)
        assert isinstance(address, LakeAddress)
        return connect_lake(address, read_only=True)

    def state(self) -> dict[str, str]:
        """sha256 of every file under ``root`` (a lake's data folder is there too) and, for a
        DuckLake, of every table of the catalog database: any change shows."""
        found = {
            str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(self.root.rglob("*")) if p.is_file()
        }
        if self.server is not None and self.dbname is not None:
            for line in self.server.psql(self.dbname, CATALOG_FINGERPRINT).splitlines():
                table, _, digest = line.partition("=")
                found[f"catalog:{table}"] = digest
        return found


def make_store(kind: str, root: Path, request: pytest.FixtureRequest) -> StoreUnderTest:
    """An empty store of ``kind`` whose file (or data folder) lies under ``root``."""
    if kind == "file":
        return StoreUnderTest(kind, str(root / "llem.duckdb"), root)
    server: PostgresServer = request.getfixturevalue("postgres")
    dbname = server.create_database()
    data = root / "lake-data"
    data.mkdir()
    request.addfinalizer(lambda: server.drop_database(dbname))
    return StoreUnderTest(kind, server.lake_url(dbname, data), root, server, dbname)


#: One line ``schema.table=count:md5`` per table of a catalog database, in one query.
CATALOG_FINGERPRINT = (
    "SELECT t || '=' || (xpath('/row/c/text()', query_to_xml(format("
    "'SELECT count(*) || '':'' || coalesce(md5(string_agg(x::text, ''|'' ORDER BY x::text)), "
    "'''') AS c FROM %s x', t), false, true, '')))[1]::text "
    "FROM (SELECT quote_ident(table_schema) || '.' || quote_ident(table_name) AS t "
    "FROM information_schema.tables "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')) tables ORDER BY t"
)
