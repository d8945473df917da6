"""Field types shared by the result models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import WithJsonSchema

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
