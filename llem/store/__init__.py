"""The versioned result store: one DuckDB file that holds every result, queried with SQL.

Modules, one job each: :mod:`~llem.store.ddl` (tables and views, declared explicitly),
:mod:`~llem.store.lock` (waiting for DuckDB's single-writer lock), :mod:`~llem.store.write`
(inserting rows and ``store_meta`` keys), :mod:`~llem.store.migrations` (moving older stores
forward), :mod:`~llem.store.as_of` (the store as of one ingest batch),
:mod:`~llem.store.connection` (creating, version-checking and opening stores),
:mod:`~llem.store.rows` (result models -> table rows),
:mod:`~llem.store.timeseries` (time-series Parquet files -> rows), :mod:`~llem.store.ingest`
(the ingest transaction), :mod:`~llem.store.query` and :mod:`~llem.store.formatting`
(read-only SQL), :mod:`~llem.store.history` (list / show / compare, ingest history) and
:mod:`~llem.store.export` (Parquet and CSV export).
"""

from __future__ import annotations

#: Output formats of ``llem query`` and ``llem results``.
QUERY_FORMATS = ("table", "csv", "json")

#: Formats of ``llem export``.
EXPORT_FORMATS = ("parquet", "csv")
