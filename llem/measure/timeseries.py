"""Write a window's sampler observations as Parquet (``timeseries/process_<rank>.parquet``).

The columns are the fields of :class:`llem.domain.timeseries.TimeSeriesRecord`, in that order,
with explicit Arrow types (never inferred), so every file has the same layout whether or not
a column holds values. Times are seconds since the window start; energy is cumulative since
the window start.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llem.domain.timeseries import TimeSeriesRecord
from llem.io import write_bytes_atomic
from llem.measure.window import WindowResult

_FLOAT = pa.float64()
ARROW_SCHEMA = pa.schema(
    [
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("device_id", pa.string(), nullable=False),
        pa.field("device_index", pa.int32()),
        pa.field("t_sec", _FLOAT, nullable=False),
        pa.field("in_window", pa.bool_(), nullable=False),
        pa.field("power_w", _FLOAT),
        pa.field("energy_j", _FLOAT),
        pa.field("temperature_c", _FLOAT),
        pa.field("sm_clock_mhz", _FLOAT),
        pa.field("mem_clock_mhz", _FLOAT),
        pa.field("gpu_utilization_pct", _FLOAT),
        pa.field("mem_utilization_pct", _FLOAT),
        pa.field("memory_used_mb", _FLOAT),
        pa.field("clock_event_reasons", pa.int64()),
    ]
)
assert ARROW_SCHEMA.names == list(TimeSeriesRecord.model_fields), "columns drifted from model"


def timeseries_rows(window: WindowResult, rank: int) -> list[dict[str, object]]:
    """One row per device per sampler tick, in time order."""
    origin = {dw.device_id: dw.start_energy_j for dw in window.device_windows}
    rows: list[dict[str, object]] = []
    for s in sorted(window.samples, key=lambda s: (s.timestamp_sec, s.device_id)):
        start_j = origin.get(s.device_id)
        rows.append(
            {
                "rank": rank,
                "device_id": s.device_id,
                "device_index": window.device_index.get(s.device_id),
                "t_sec": s.timestamp_sec - window.start_monotonic,
                "in_window": window.start_monotonic <= s.timestamp_sec <= window.end_monotonic,
                "power_w": s.power_w,
                "energy_j": None if s.energy_j is None or start_j is None
                else s.energy_j - start_j,
                "temperature_c": s.temperature_c,
                "sm_clock_mhz": s.sm_clock_mhz,
                "mem_clock_mhz": s.mem_clock_mhz,
                "gpu_utilization_pct": s.gpu_utilization_pct,
                "mem_utilization_pct": s.mem_utilization_pct,
                "memory_used_mb": s.memory_used_mb,
                "clock_event_reasons": s.clock_event_reasons,
            }
        )
    return rows


def write_timeseries(window: WindowResult, path: str | Path, rank: int) -> None:
    """Write the window's samples (needs ``keep_samples=True``) atomically as Parquet."""
    table = pa.Table.from_pylist(timeseries_rows(window, rank), schema=ARROW_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_bytes_atomic(path, buffer.getvalue())
