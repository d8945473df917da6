"""Write a window's sampler observations as Parquet (``timeseries/process_<rank>.parquet``).

The columns are the fields of :class:`llem.domain.timeseries.TimeSeriesRecord`, in that order,
with explicit Arrow types (never inferred), so every file has the same layout whether or not
a column holds values. Times are seconds since the window start; energy is cumulative since
the window start. The table is built from Arrow buffers (:mod:`llem.columns`): pyarrow's own
constructors would import pandas, which cost most of the time of writing a file.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llem.columns import table_from_columns
from llem.domain.timeseries import TimeSeriesRecord
from llem.energy.base import DeviceSample
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


def timeseries_columns(window: WindowResult, rank: int) -> dict[str, list[object]]:
    """The file's columns: one value per device per sampler tick, in time order."""
    origin = {dw.device_id: dw.start_energy_j for dw in window.device_windows}
    samples = sorted(window.samples, key=lambda s: (s.timestamp_sec, s.device_id))
    start, end = window.start_monotonic, window.end_monotonic

    def energy(s: DeviceSample) -> float | None:
        start_j = origin.get(s.device_id)
        return None if s.energy_j is None or start_j is None else s.energy_j - start_j

    return {
        "rank": [rank] * len(samples),
        "device_id": [s.device_id for s in samples],
        "device_index": [window.device_index.get(s.device_id) for s in samples],
        "t_sec": [s.timestamp_sec - start for s in samples],
        "in_window": [start <= s.timestamp_sec <= end for s in samples],
        "power_w": [s.power_w for s in samples],
        "energy_j": [energy(s) for s in samples],
        "temperature_c": [s.temperature_c for s in samples],
        "sm_clock_mhz": [s.sm_clock_mhz for s in samples],
        "mem_clock_mhz": [s.mem_clock_mhz for s in samples],
        "gpu_utilization_pct": [s.gpu_utilization_pct for s in samples],
        "mem_utilization_pct": [s.mem_utilization_pct for s in samples],
        "memory_used_mb": [s.memory_used_mb for s in samples],
        "clock_event_reasons": [s.clock_event_reasons for s in samples],
    }


def write_timeseries(window: WindowResult, path: str | Path, rank: int) -> None:
    """Write the window's samples (a window that ran its sampler) atomically as Parquet."""
    table = table_from_columns(timeseries_columns(window, rank), ARROW_SCHEMA)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_bytes_atomic(path, buffer.getvalue())
