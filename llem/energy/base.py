"""The device interface at the bottom of the measurement layer.

An :class:`EnergySource` meters a fixed set of physical devices. Its reads return plain data in
joules and seconds; conversion from vendor units happens once, inside each implementation.
Vendor exceptions never leave an implementation: they become :class:`EnergySourceError`
subclasses with a message that says what went wrong.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from llem.errors import EnergySourceError


class EnergySourceUnavailable(EnergySourceError):
    """This source cannot meter anything here; ``reason`` says why in plain words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeviceReadError(EnergySourceError):
    """A read of an opened device failed."""


@dataclass(frozen=True)
class DeviceInfo:
    """A device an energy source meters."""

    device_id: str  # GPU UUID, or e.g. "rapl:package-0"
    kind: str  # "gpu", "cpu", "dram", "host"
    name: str
    index: int | None = None  # physical (NVML / RAPL) index
    counter_supported: bool = True  # False: energy comes from integrated polled power


@dataclass(frozen=True)
class EnergyReading:
    """One device's cumulative energy, stamped at the moment of its own read."""

    device_id: str
    energy_j: float  # cumulative since an arbitrary origin; only differences mean anything
    timestamp_sec: float  # time.monotonic() taken right at this read


@dataclass(frozen=True)
class DeviceSample:
    """One sampler observation of one device; unreadable fields are None."""

    device_id: str
    timestamp_sec: float  # time.monotonic()
    power_w: float | None = None
    energy_j: float | None = None  # cumulative, same origin as EnergyReading
    temperature_c: float | None = None
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    gpu_utilization_pct: float | None = None
    mem_utilization_pct: float | None = None
    memory_used_mb: float | None = None
    clock_event_reasons: int | None = None  # NVML clocks-event (throttle) reason bitmask


@dataclass
class SourceReport:
    """What a source can meter here and why not, for `llem doctor`."""

    name: str
    available: bool
    reason: str | None = None
    devices: list[DeviceInfo] = field(default_factory=list)
    details: list[str] = field(default_factory=list)


class EnergySource(abc.ABC):
    """Meters a fixed set of devices. Open once, read many times, close."""

    #: Label written to results as ``energy_source`` (e.g. "nvml_counter", "rapl").
    name: str = "abstract"
    #: True when :meth:`sample` reports clock-event (throttle) reasons.
    reports_clock_events: bool = False
    #: True when energy stays correct only if something reads the source regularly
    #: (polled-power integration, counters that wrap): the window then always samples.
    needs_regular_reads: bool = False

    @property
    @abc.abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """The physical devices this source meters."""

    @abc.abstractmethod
    def read_energy(self) -> list[EnergyReading]:
        """Cumulative energy of every device, each stamped at its own read."""

    def sample(self) -> list[DeviceSample]:
        """One observation per device for the time series (default: energy only)."""
        return [
            DeviceSample(device_id=r.device_id, timestamp_sec=r.timestamp_sec, energy_j=r.energy_j)
            for r in self.read_energy()
        ]

    def device_source(self, device: DeviceInfo) -> str:
        """The ``energy_source`` label of one device (a source may mix methods)."""
        return self.name

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release vendor handles."""
