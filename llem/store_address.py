"""Where a result store lives: a DuckDB file, or a DuckLake shared by a lab.

``store:`` (config) and ``--store`` (CLI) take either a file path or a DuckLake address::

    ducklake+postgres://[USER@]HOST[:PORT]/DBNAME?data_path=DIR

The catalog is the PostgreSQL database DBNAME; the data are Parquet files under DIR, a
folder every writer and reader can reach (a shared file system). The address never holds a
password: libpq finds it as it always does (``PGPASSWORD``, ``~/.pgpass``, a service file),
so no config file, log line, receipt or store row ever carries one.

The grammar lives here, below the config and the store, so that a config file is checked
with the same rules the store is opened with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from llem.errors import StoreError

#: The URL scheme of a DuckLake store with its catalog in PostgreSQL.
LAKE_SCHEME = "ducklake+postgres"

#: PostgreSQL user and database names llem accepts: plain identifiers, so that nothing in an
#: address needs quoting anywhere it goes.
_PG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$.-]{0,62}")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]+\]")
_QUERY_KEYS = ("data_path",)


class StoreAddressError(StoreError, ValueError):
    """A store address that is not a file path and not a valid DuckLake address."""


@dataclass(frozen=True)
class LakeAddress:
    """A DuckLake store: catalog database on a PostgreSQL server, Parquet under a folder."""

    host: str
    dbname: str
    data_path: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        data_path = quote(self.data_path, safe="/")
        return f"{LAKE_SCHEME}://{user}{self.host}{port}/{self.dbname}?data_path={data_path}"

    def catalog_dsn(self) -> str:
        """The libpq connection string of the catalog database (no password: libpq finds
        it in its usual places)."""
        parts = [f"dbname={self.dbname}", f"host={self.host.strip('[]')}"]
        if self.port is not None:
            parts.append(f"port={self.port}")
        if self.user:
            parts.append(f"user={self.user}")
        return " ".join(parts)


StoreAddress = Path | LakeAddress


def is_lake_address(text: str | Path) -> bool:
    """Whether ``text`` is meant as a DuckLake address (it may still be malformed)."""
    return isinstance(text, str) and text.lower().startswith("ducklake")


def parse_store_address(text: str | Path | LakeAddress) -> StoreAddress:
    """A file path, or the parts of a DuckLake address; a malformed address raises
    :class:`StoreAddressError` saying what is wrong."""
    if isinstance(text, LakeAddress | Path):
        return text
    if not is_lake_address(text):
        return Path(text)
    return _parse_lake(text)


def _parse_lake(text: str) -> LakeAddress:
    scheme, sep, _ = text.partition("://")
    if not sep or scheme.lower() != LAKE_SCHEME:
        raise StoreAddressError(
            f"store address {text!r}: a DuckLake store is written "
            f"{LAKE_SCHEME}://[USER@]HOST[:PORT]/DBNAME?data_path=DIR"
        )
    parts = urlsplit(text)
    if parts.password is not None or ":" in parts.netloc.rpartition("@")[0]:
        raise StoreAddressError(
            "store address: a password does not go in the address (it would end up in "
            "config files and logs); give it through PGPASSWORD, ~/.pgpass or a PostgreSQL "
            "service file"
        )
    if parts.fragment:
        raise StoreAddressError(f"store address {text!r}: unexpected '#{parts.fragment}'")
    host = parts.netloc.rpartition("@")[2].rsplit(":", 1)[0] if parts.netloc else ""
    if host.startswith("[") and "]" in parts.netloc:
        host = parts.netloc.rpartition("@")[2].split("]")[0] + "]"
    if not host or not _HOST.fullmatch(host):
        raise StoreAddressError(f"store address {text!r}: missing or invalid host name")
    try:
        port = parts.port
    except ValueError as exc:
        raise StoreAddressError(f"store address {text!r}: invalid port") from exc
    if port == 0:
        raise StoreAddressError(f"store address {text!r}: invalid port 0")
    user = unquote(parts.username) if parts.username is not None else None
    if user is not None and not _PG_NAME.fullmatch(user):
        raise StoreAddressError(f"store address {text!r}: invalid user name {user!r}")
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname:
        raise StoreAddressError(f"store address {text!r}: missing database name (/DBNAME)")
    if not _PG_NAME.fullmatch(dbname):
        raise StoreAddressError(f"store address {text!r}: invalid database name {dbname!r}")
    return LakeAddress(host=host, dbname=dbname, data_path=_data_path(text, parts.query),
                       user=user, port=port)


def _data_path(text: str, query: str) -> str:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query),
                          max_num_fields=len(_QUERY_KEYS) + 1)
    except ValueError as exc:
        raise StoreAddressError(f"store address {text!r}: malformed query ({exc})") from exc
    unknown = sorted(set(values) - set(_QUERY_KEYS))
    if unknown:
        raise StoreAddressError(
            f"store address {text!r}: unknown option(s) {', '.join(unknown)} (only data_path)"
        )
    found = values.get("data_path", [])
    if len(found) != 1 or not found[0]:
        raise StoreAddressError(
            f"store address {text!r}: needs exactly one data_path=DIR (the shared folder of "
            "the Parquet files)"
        )
    data_path = found[0]
    if any(ch in data_path for ch in "\x00\n\r'"):
        raise StoreAddressError(f"store address {text!r}: data_path holds a quote or a "
                                "control character")
    if not data_path.startswith("/"):
        raise StoreAddressError(
            f"store address {text!r}: data_path must be an absolute path (every node must "
            "find the same folder)"
        )
    return data_path.rstrip("/") + "/"
