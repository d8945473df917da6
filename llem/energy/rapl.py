"""CPU package and DRAM energy from the Linux powercap interface (RAPL).

Each package zone ``intel-rapl:<n>`` and its ``dram`` sub-zone is metered through
``energy_uj``, a counter that wraps at ``max_energy_range_uj``; every read folds the change
since the previous read into a running total, so wraps are counted as long as reads come more
often than one wrap period (minutes; the window's sampler reads every 100 ms). ``core`` and
``uncore`` are parts of the package and ``psys`` contains it, so none of them is ever added.
Since 2020 most kernels let only root read ``energy_uj``; that, an absent powercap tree (VMs,
many containers) or a CPU without RAPL make the source unavailable with that reason.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llem.energy.base import (
    DeviceInfo,
    DeviceReadError,
    DeviceSample,
    EnergyReading,
    EnergySource,
    EnergySourceUnavailable,
)

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass
class RaplZone:
    """One metered powercap zone."""

    path: Path
    device: DeviceInfo
    max_range_uj: int
    last_raw_uj: int | None = None
    total_uj: int = 0
    last_sample: tuple[float, int] | None = None  # (timestamp, total_uj) at the last sample

    def fold(self, raw_uj: int) -> int:
        """Add the change since the last read, counting a wrap at ``max_range_uj``."""
        if self.last_raw_uj is not None:
            delta = raw_uj - self.last_raw_uj
            if delta < 0:
                delta = self.max_range_uj - self.last_raw_uj + raw_uj
            self.total_uj += delta
        self.last_raw_uj = raw_uj
        return self.total_uj


@dataclass
class ZoneInfo:
    """A powercap zone as found on disk, for ``llem doctor``."""

    zone: str
    name: str
    counted: bool  # False for core / uncore / psys: contained in a package
    readable: bool
    reason: str | None = None


def _read_text(path: Path) -> str:
    return path.read_text(encoding="ascii").strip()


def scan_zones(root: Path = DEFAULT_POWERCAP_ROOT) -> list[ZoneInfo]:
    """Every RAPL zone under ``root`` with whether its energy can be read."""
    if not root.is_dir():
        return []
    zones: list[ZoneInfo] = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        match = _ZONE.match(entry.name)
        if not match:
            continue
        try:
            name = _read_text(entry / "name")
        except OSError:
            name = "?"
        counted = name.startswith("package") or name == "dram"
        readable, reason = True, None
        try:
            int(_read_text(entry / "energy_uj"))
        except PermissionError:
            readable, reason = False, "permission denied (root only)"
        except (OSError, ValueError) as exc:
            readable, reason = False, f"unreadable: {exc}"
        zones.append(ZoneInfo(entry.name, name, counted, readable, reason))
    return zones


def _device_for(entry: Path, name: str) -> DeviceInfo | None:
    match = _ZONE.match(entry.name)
    if match is None:
        return None
    package, sub = int(match.group(1)), match.group(2)
    if sub is None and name.startswith("package"):
        return DeviceInfo(f"rapl:{name}", "cpu", f"CPU {name}", index=package)
    if name == "dram":
        parent = f"package-{package}" if sub is not None else f"zone-{package}"
        return DeviceInfo(f"rapl:{parent}:dram", "dram", f"DRAM of {parent}", index=package)
    return None  # core, uncore (inside the package) and psys (contains it): never added


def unavailable_reason(root: Path = DEFAULT_POWERCAP_ROOT) -> str | None:
    """Why RAPL cannot be used here, or None when it can."""
    if not root.is_dir():
        return (f"no RAPL: {root} is absent (no powercap driver; usual in VMs and "
                "containers)")
    zones = [z for z in scan_zones(root) if z.counted]
    if not zones:
        return f"no RAPL: no package zones under {root} (CPU without RAPL, or driver not loaded)"
    if not any(z.readable for z in zones):
        if all(z.reason and z.reason.startswith("permission") for z in zones):
            return ("no RAPL: energy_uj is readable by root only on this kernel; run as root "
                    f"or make {root}/intel-rapl:*/energy_uj readable")
        return f"no RAPL: energy_uj unreadable ({zones[0].reason})"
    return None


class RaplSource(EnergySource):
    """Meters every CPU package (and its DRAM where exposed) of the host."""

    name = "rapl"
    needs_regular_reads = True

    def __init__(
        self, root: Path = DEFAULT_POWERCAP_ROOT, clock: Callable[[], float] = time.monotonic
    ) -> None:
        reason = unavailable_reason(root)
        if reason is not None:
            raise EnergySourceUnavailable(reason)
        self._clock = clock
        self._lock = threading.Lock()
        self._zones: list[RaplZone] = []
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if not _ZONE.match(entry.name):
                continue
            try:
                name = _read_text(entry / "name")
                device = _device_for(entry, name)
                if device is None:
                    continue
                max_range = int(_read_text(entry / "max_energy_range_uj"))
                int(_read_text(entry / "energy_uj"))
            except (OSError, ValueError) as exc:
                raise EnergySourceUnavailable(f"no RAPL: cannot read {entry}: {exc}") from exc
            self._zones.append(RaplZone(entry, device, max_range))
        self.read_energy()  # first read sets each zone's origin

    @property
    def devices(self) -> list[DeviceInfo]:
        return [z.device for z in self._zones]

    def _read(self, zone: RaplZone) -> tuple[float, float]:
        t0 = self._clock()
        try:
            raw = int(_read_text(zone.path / "energy_uj"))
        except (OSError, ValueError) as exc:
            raise DeviceReadError(f"reading {zone.path}/energy_uj failed: {exc}") from exc
        t1 = self._clock()
        return zone.fold(raw) / 1e6, 0.5 * (t0 + t1)

    def read_energy(self) -> list[EnergyReading]:
        with self._lock:
            out = []
            for zone in self._zones:
                energy_j, stamp = self._read(zone)
                out.append(EnergyReading(zone.device.device_id, energy_j, stamp))
            return out

    def sample(self) -> list[DeviceSample]:
        with self._lock:
            out = []
            for zone in self._zones:
                energy_j, stamp = self._read(zone)
                power_w = None
                if zone.last_sample is not None and stamp > zone.last_sample[0]:
                    prev_t, prev_uj = zone.last_sample
                    power_w = (zone.total_uj - prev_uj) / 1e6 / (stamp - prev_t)
                zone.last_sample = (stamp, zone.total_uj)
                out.append(DeviceSample(zone.device.device_id, stamp, power_w=power_w,
                                        energy_j=energy_j))
            return out
