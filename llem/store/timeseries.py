"""Read a time-series Parquet file (columns of :class:`~llem.domain.timeseries.TimeSeriesRecord`)
into rows of the store's ``timeseries`` table.

A file that is missing, unreadable, lacks a required column, or holds values that do not fit
the declared types makes its result file refused: a result is stored whole or not at all, and
since stored results never change, its samples could not be added later.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llem.columns import arrow_column
from llem.domain.timeseries import TimeSeriesRecord
from llem.errors import LlemError
from llem.store.ddl import TIMESERIES, arrow_schema


class TimeSeriesError(LlemError):
    """A referenced time-series file cannot be read into the store."""


_SAMPLE_COLUMNS = tuple(TimeSeriesRecord.model_fields)
_REQUIRED = tuple(
    name for name, info in TimeSeriesRecord.model_fields.items() if info.is_required()
)


def read_timeseries_file(path: Path) -> tuple[bytes, pa.Table]:
    """The file's bytes (for hashing) and its samples as an Arrow table."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TimeSeriesError(
            f"time-series file {path} cannot be read: {exc.strerror or exc}"
        ) from exc
    try:
        table = pq.ParquetFile(pa.BufferReader(data)).read()  # read_table imports pandas
    except (pa.ArrowException, OSError) as exc:
        raise TimeSeriesError(f"time-series file {path} is not valid Parquet: {exc}") from exc
    missing = [c for c in _REQUIRED if c not in table.column_names]
    if missing:
        raise TimeSeriesError(
            f"time-series file {path} lacks column(s) {', '.join(missing)}"
        )
    return data, table


def timeseries_rows(
    path: Path,
    sha256: str,
    table: pa.Table,
    *,
    result_id: str,
    content_sha256: str,
    ingest_batch_id: str,
) -> pa.Table:
    """The samples of one file as a table with the store's ``timeseries`` columns."""
    schema = arrow_schema(TIMESERIES)
    n = table.num_rows
    columns: dict[str, pa.Array] = {}
    for name in _SAMPLE_COLUMNS:
        target = schema.field(name).type
        if name in table.column_names:
            try:
                columns[name] = pc.cast(table.column(name), target).combine_chunks()
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise TimeSeriesError(
                    f"time-series file {path}: column {name} does not fit {target}: {exc}"
                ) from exc
        else:
            columns[name] = pa.nulls(n, target)
    for name in _REQUIRED:
        if columns[name].null_count:
            raise TimeSeriesError(f"time-series file {path}: column {name} holds nulls")
    columns["process_result_id"] = arrow_column(
        [f"{result_id}/process-{rank}" for rank in columns["rank"].to_pylist()], pa.string()
    )
    columns["result_id"] = arrow_column([result_id] * n, pa.string())
    columns["timeseries_sha256"] = arrow_column([sha256] * n, pa.string())
    columns["timeseries_file"] = arrow_column([str(path)] * n, pa.string())
    columns["content_sha256"] = arrow_column([content_sha256] * n, pa.string())
    columns["ingest_batch_id"] = arrow_column([ingest_batch_id] * n, pa.string())
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
