"""Field types shared by the result models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, WithJsonSchema

#: Naive ISO 8601 date-time (what v2 files hold: local time, no offset).
NAIVE_DATETIME_PATTERN = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?$"

#: A datetime that is either RFC 3339 (with offset; llem always writes UTC) or naive ISO 8601
#: as the earlier tool wrote it. Naive values are kept as given, never shifted.
Timestamp = Annotated[
    datetime,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "pattern": NAIVE_DATETIME_PATTERN},
            ]
        }
    ),
]

#: The integer range every store column and Arrow type llem uses can hold (DuckDB BIGINT).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: An integer that fits a signed 64-bit column (an index, a device id).
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]

#: A count (tokens, samples, processes): never negative, and fits a 64-bit column.
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]

#: Measured (raw) energy in joules, or a figure derived from it: never negative. Only
#: baseline-adjusted energy may come out below zero, and it does not use this type.
EnergyJ = Annotated[float, Field(ge=0)]
