"""Arrow columns built without pandas hold exactly what pyarrow's own conversion gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from llem.columns import arrow_column, table_from_rows

PLUS_2 = timezone(timedelta(hours=2))
CASES = [
    (pa.string(), ["a", None, "ünïcode ✓", ""]),
    (pa.float64(), [1.5, None, 0.0, -2, float("inf"), 1e-300]),
    (pa.int32(), [1, None, -5, 2**31 - 1]),
    (pa.int64(), [2**40, None, -(2**63)]),
    (pa.uint64(), [2**64 - 1, None, 0]),
    (pa.bool_(), [True, False, None, True, True, False, True, False, True]),
    (pa.timestamp("us"), [datetime(2026, 1, 1, 12, 0, 0, 123456), None,
                          datetime(2026, 1, 1, 12, tzinfo=PLUS_2)]),
    (pa.timestamp("us", tz="UTC"), [datetime(2026, 1, 1, 12, tzinfo=UTC),
                                    datetime(2026, 1, 1, 12), None,
                                    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=PLUS_2)]),
    (pa.string(), []),
]


@pytest.mark.parametrize(("type_", "values"), CASES, ids=[str(t) for t, _ in CASES])
def test_a_column_equals_pyarrows_conversion(type_: pa.DataType, values: list) -> None:
    built = arrow_column(values, type_)
    built.validate(full=True)
    assert built.equals(pa.array(values, type_))
    assert built.null_count == sum(v is None for v in values)


def test_rows_become_a_table_with_missing_keys_null_and_others_ignored() -> None:
    schema = pa.schema([("name", pa.string()), ("n", pa.int64())])
    table = table_from_rows([{"name": "a", "n": 1, "extra": 9}, {"n": 2}], schema)
    assert table.schema == schema
    assert table.to_pylist() == [{"name": "a", "n": 1}, {"name": None, "n": 2}]


@pytest.mark.parametrize(("type_", "value"), [(pa.string(), 3), (pa.int64(), 1.5),
                                              (pa.int64(), True), (pa.float64(), "x")])
def test_a_value_of_the_wrong_type_is_refused(type_: pa.DataType, value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        arrow_column([value], type_)
