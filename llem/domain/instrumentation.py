"""What measuring cost: the instrumentation's own CPU time and reads over the measured window.

A result carries this so a reader can judge whether the measurement disturbed what it
measured, independently of how busy the machine was. The figures are taken in the process
that measured: the sampler thread's own CPU clock, the count and duration of its reads of the
energy source, and the process's CPU time over the same window.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Why the background sampler ran. ``timeseries``: the time series was enabled;
#: ``throttle_reasons``: the source reports clock-event (throttle) reasons (NVML);
#: ``phase_split``: the prefill/decode energy split needs sampled energy points;
#: ``regular_reads``: the energy is only correct if the source is read regularly
#: (polled-power integration, RAPL counter wraps).
SamplerUse = Literal["timeseries", "throttle_reasons", "phase_split", "regular_reads"]
SAMPLER_USES: tuple[SamplerUse, ...] = (
    "timeseries", "throttle_reasons", "phase_split", "regular_reads",
)


class InstrumentationCost(BaseModel):
    """The measuring's own cost over the measured window (one process, or summed over them)."""

    model_config = ConfigDict(extra="ignore")

    sampler_served: list[SamplerUse] = Field(
        default_factory=list,
        description="What the background sampler was started for: timeseries, "
        "throttle_reasons, phase_split, regular_reads. Empty: no sampler ran.",
    )
    sample_interval_ms: float | None = Field(
        default=None, description="Sampler interval, ms; null when no sampler ran."
    )
    sampler_cpu_sec: float | None = Field(
        description="CPU seconds the sampler used, from its own thread CPU clock, read in "
        "the sampler thread when it starts and when it stops (the window's boundary reads "
        "bracket both). 0 when no sampler ran (measured: there was no sampler thread); null "
        "when the platform has no per-thread CPU clock.",
    )
    reads: int = Field(
        description="Reads of the energy source by the sampler (each reads every device's "
        "counters and sensors once), failed ones included. The two boundary reads of the "
        "window are the measurement itself and are not counted.",
    )
    mean_read_ms: float | None = Field(
        default=None,
        description="Mean wall time of one sampler read, ms (includes any wait for the "
        "interpreter lock); null when there were no reads.",
    )
    process_cpu_sec: float | None = Field(
        description="CPU seconds of the whole process (every thread) over the measured "
        "window, from the process CPU clock; null when it could not be read.",
    )
    cpu_fraction: float | None = Field(
        description="sampler_cpu_sec / process_cpu_sec: the share of the process's CPU time "
        "spent on measuring; null when either is null or the process used no CPU time.",
    )
    unavailable_reason: str | None = Field(
        default=None, description="Why a figure above is null, when one is."
    )
