"""Column layout of the time-series files (``timeseries/process_<rank>.parquet``).

One row per device per sampler tick. The JSON Schema exported from :class:`TimeSeriesRecord`
documents the Parquet columns; unreadable values are null.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from llem.domain.types import Int64


class TimeSeriesRecord(BaseModel):
    """One sampler observation of one device during a measured window."""

    model_config = ConfigDict(extra="forbid")

    rank: Int64 = Field(description="Process rank that sampled.")
    device_id: str = Field(description="Device identity (GPU UUID, or e.g. 'rapl:package-0').")
    device_index: Int64 | None = Field(default=None, description="Physical device index.")
    t_sec: float = Field(description="Seconds since the measured window started (may be <0).")
    in_window: bool = Field(description="Whether the sample lies inside the measured window.")
    power_w: float | None = Field(default=None, description="Instantaneous power, W.")
    energy_j: float | None = Field(
        default=None, description="Cumulative energy since the window started, J."
    )
    temperature_c: float | None = Field(default=None, description="Temperature, C.")
    sm_clock_mhz: float | None = Field(default=None, description="SM clock, MHz.")
    mem_clock_mhz: float | None = Field(default=None, description="Memory clock, MHz.")
    gpu_utilization_pct: float | None = Field(default=None, description="GPU utilisation, %.")
    mem_utilization_pct: float | None = Field(
        default=None, description="Memory bandwidth utilisation, %."
    )
    memory_used_mb: float | None = Field(default=None, description="Device memory used, MB.")
    clock_event_reasons: int | None = Field(
        default=None, ge=0, le=2**64 - 1, description="NVML clocks-event (throttle) reason bitmask."
    )
