"""A CPU energy estimate, used only when a config asks for it (``energy.backend: estimate``).

Energy = ``cpu_tdp_w`` x (this process's CPU seconds / logical cores): the TDP is the power of
the whole package at full load, so one busy core of N draws about TDP/N. It ignores idle
power, turbo and memory, which is why every figure it produces is labelled ``estimate``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from llem.energy.base import DeviceInfo, EnergyReading, EnergySource


class CpuTimeEstimate(EnergySource):
    """CPU time x TDP share; never a measurement."""

    name = "estimate"

    def __init__(
        self,
        cpu_tdp_w: float,
        logical_cores: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        cpu_time: Callable[[], float] = time.process_time,
    ) -> None:
        self.cpu_tdp_w = float(cpu_tdp_w)
        self.logical_cores = logical_cores or os.cpu_count() or 1
        self._clock = clock
        self._cpu_time = cpu_time
        self._device = DeviceInfo(
            "estimate:cpu", "cpu", f"CPU time x {self.cpu_tdp_w:g} W TDP estimate",
            counter_supported=False,
        )

    @property
    def devices(self) -> list[DeviceInfo]:
        return [self._device]

    def read_energy(self) -> list[EnergyReading]:
        t0 = self._clock()
        cpu_sec = self._cpu_time()
        t1 = self._clock()
        energy_j = self.cpu_tdp_w * cpu_sec / self.logical_cores
        return [EnergyReading(self._device.device_id, energy_j, 0.5 * (t0 + t1))]
