"""Arrow columns built from Python values without importing pandas.

Every pyarrow constructor that takes Python values (``pa.array``, ``pa.table``,
``Table.from_pylist``) asks pyarrow's pandas shim whether the values are pandas objects,
which imports pandas (about 0.3 s) into a process that never uses it. These builders write the
Arrow buffers themselves (validity bitmap, values, string offsets) and hand them to
``pa.Array.from_buffers``, so the time-series writer and the store's bulk inserts stay free
of pandas. The types are the ones llem writes: strings, 32/64-bit integers, unsigned 64-bit
integers, doubles, booleans and microsecond timestamps (naive, or with a time zone).
"""

from __future__ import annotations

import array
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_ONE_US = timedelta(microseconds=1)
_INT_CODES = {"int32": "i", "int64": "q", "uint64": "Q"}


def table_from_rows(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows (dicts keyed by column name) as a table; missing keys are null, others ignored."""
    return table_from_columns(
        {f.name: [row.get(f.name) for row in rows] for f in schema}, schema
    )


def table_from_columns(columns: Mapping[str, Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Columns (lists of Python values, None for null) as a table with exactly ``schema``."""
    arrays = [arrow_column(columns[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_column(values: Sequence[Any], type_: pa.DataType) -> pa.Array:
    """One Arrow array of ``type_`` from Python values (None is null)."""
    n = len(values)
    validity, nulls = _validity(values)
    if pa.types.is_string(type_):
        encoded = [_utf8(v) for v in values]
        offsets = array.array("i", [0])
        total = 0
        for chunk in encoded:
            total += len(chunk)
            offsets.append(total)
        data = pa.py_buffer(b"".join(encoded))
        return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(offsets), data], nulls)
    if pa.types.is_boolean(type_):
        return pa.Array.from_buffers(type_, n, [validity, _bits(values)], nulls)
    if pa.types.is_floating(type_) and type_.bit_width == 64:
        data = array.array("d", [0.0 if v is None else float(v) for v in values])
    elif str(type_) in _INT_CODES:
        data = array.array(_INT_CODES[str(type_)], [0 if v is None else _int(v) for v in values])
    elif pa.types.is_timestamp(type_) and type_.unit == "us":
        data = array.array("q", [0 if v is None else _micros(v) for v in values])
    else:
        raise TypeError(f"no pandas-free builder for Arrow type {type_}")
    return pa.Array.from_buffers(type_, n, [validity, pa.py_buffer(data)], nulls)


def _validity(values: Sequence[Any]) -> tuple[pa.Buffer | None, int]:
    """The validity bitmap (None when nothing is null) and the null count."""
    nulls = sum(1 for v in values if v is None)
    if not nulls:
        return None, 0
    return _bits([v is not None for v in values]), nulls


def _bits(flags: Sequence[Any]) -> pa.Buffer:
    """Truthy values as an LSB-first bitmap (None counts as false)."""
    bits = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            bits[i >> 3] |= 1 << (i & 7)
    return pa.py_buffer(bytes(bits))


def _utf8(value: Any) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}: {value!r}")
    return value.encode("utf-8")


def _int(value: Any) -> int:
    if isinstance(value, bool | float):
        raise TypeError(f"expected an integer, got {type(value).__name__}: {value!r}")
    return int(value)


def _micros(value: datetime) -> int:
    """Microseconds since the epoch; an aware time counts in UTC, a naive one as written."""
    if value.tzinfo is not None:
        return (value - _EPOCH_UTC) // _ONE_US
    return (value - _EPOCH_NAIVE) // _ONE_US
