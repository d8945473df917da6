"""A DuckLake store's addresses and failures: each is one line that says what is wrong, and
nothing half-written lands.

The PostgreSQL here is real (the ``postgres`` fixture); the roles are made in it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from llem.cli import main
from llem.config.campaign import load_campaign
from llem.errors import LlemError
from llem.store_address import LakeAddress, StoreAddressError, parse_store_address
from tests import documents as docs
from tests import store_documents as sdocs
from tests.postgres import PostgresServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stores"


@pytest.mark.parametrize(("address", "wrong"), [
    ("ducklake+postgres://llem:secret@db.lab/llem?data_path=/shared/llem",
     "a password does not go in the address"),
    ("ducklake+postgres://llem@db.lab/llem", "needs exactly one data_path=DIR"),
    ("ducklake+postgres://llem@db.lab/llem?data_path=relative/dir", "must be an absolute path"),
    ("ducklake+postgres://llem@db.lab/llem?data_path=/a&data_path=/b",
     "needs exactly one data_path=DIR"),
    ("ducklake+postgres://llem@db.lab/llem?data_path=/x&sslmode=disable", "unknown option"),
    ("ducklake+postgres://llem@db.lab:99999/llem?data_path=/x", "invalid port"),
    ("ducklake+postgres://llem@/llem?data_path=/x", "host"),
    ("ducklake+postgres://llem@db.lab/?data_path=/x", "missing database name"),
    ("ducklake+postgres://llem@db.lab/my%20db?data_path=/x", "invalid database name"),
    ("ducklake+postgres://bad'user@db.lab/llem?data_path=/x", "invalid user name"),
    ("ducklake+postgres://llem@db.lab/llem?data_path=/x'y", "quote"),
    ("ducklake://llem@db.lab/llem?data_path=/x", "ducklake+postgres://"),
])
def test_a_malformed_address_is_one_line_naming_what_is_wrong(
    address: str, wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(StoreAddressError, match=wrong.replace("+", r"\+")):
        parse_store_address(address)
    assert main(["query", "--store", address, "SELECT 1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and wrong in lines[0], lines
    assert "secret" not in lines[0]


def test_an_address_round_trips_and_its_dsn_has_no_password() -> None:
    text = "ducklake+postgres://lab_user@db.lab:5433/llem_results?data_path=/shared/a%20b/llem"
    address = parse_store_address(text)
    assert address == LakeAddress(host="db.lab", dbname="llem_results",
                                  data_path="/shared/a b/llem/", user="lab_user", port=5433)
    assert parse_store_address(str(address)) == address
    assert address.catalog_dsn() == "dbname=llem_results host=db.lab port=5433 user=lab_user"
    assert isinstance(parse_store_address("results/llem.duckdb"), Path)


def test_a_config_with_a_malformed_store_names_the_field_and_the_file(tmp_path: Path) -> None:
    config = tmp_path / "campaign.yaml"
    config.write_text("campaign: c\nstore: 'ducklake+postgres://u:pw@h/db?data_path=/x'\n"
                      "defaults: {model: {name: tiny}}\n")
    with pytest.raises(LlemError) as err:
        load_campaign(config)
    message = str(err.value)
    assert "campaign.yaml" in message and "store" in message and "password" in message
    assert "pw@" not in message


def _sha(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_unreachable_catalog_is_one_line_and_the_files_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = tmp_path / "results"
    files.mkdir()
    docs.write(files, "a.json", docs.v3_aggregated())
    before = _sha(files)
    # Port 9 on 127.0.0.1 (discard) has no PostgreSQL: the connection is refused at once.
    address = f"ducklake+postgres://llem@127.0.0.1:9/none?data_path={tmp_path}/data"
    receipt = tmp_path / "receipt.json"
    assert main(["ingest", "--store", address, "--receipt", str(receipt), str(files)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the store's catalog database" in lines[0], lines
    assert "ingested by the next run" in lines[0]
    assert _sha(files) == before and not receipt.exists()


def test_a_role_that_may_only_read_gets_the_catalogs_refusal_and_nothing_lands(
    postgres: PostgresServer, lake_store: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = docs.write(tmp_path / "one", "a.json", docs.v3_aggregated())
    assert main(["ingest", "--store", lake_store, str(first)]) == 0
    dbname = lake_store.split("/")[3].split("?")[0]
    postgres.psql(dbname, "CREATE ROLE lab_reader LOGIN; "
                          "GRANT USAGE ON SCHEMA public TO lab_reader; "
                          "GRANT SELECT ON ALL TABLES IN SCHEMA public TO lab_reader")
    try:
        reader = lake_store.replace("://llem@", "://lab_reader@")
        second = docs.write(tmp_path / "two", "b.json",
                            sdocs.renamed(docs.v3_aggregated(), "other-result"))
        capsys.readouterr()
        assert main(["ingest", "--store", reader, str(second)]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], lines
        assert "no transaction is active" not in lines[0]
        # The reader still reads, and only the first ingest is there.
        assert main(["query", "--store", reader, "--format", "json",
                     "SELECT count(*) AS n FROM ingest_batches"]) == 0
        assert json.loads(capsys.readouterr().out) == [{"n": 1}]
    finally:
        postgres.psql(dbname, "REASSIGN OWNED BY lab_reader TO llem; DROP OWNED BY lab_reader; "
                              "DROP ROLE lab_reader")


def test_a_store_written_by_duckdb_2_is_one_line_saying_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """llem 0.1 wrote stores with DuckDB 2.0; this llem's DuckDB 1.5 cannot read them."""
    store = tmp_path / "old.duckdb"
    store.write_bytes(gzip.decompress((FIXTURES / "written-by-duckdb-2.0.duckdb.gz").read_bytes()))
    before = store.read_bytes()
    for argv in (["query", "--store", str(store), "SELECT 1"],
                 ["ingest", "--store", str(store), str(tmp_path)]):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "written by a newer DuckDB" in lines[0], lines
        assert "llem ingest --store NEW.duckdb" in lines[0]
    assert store.read_bytes() == before
