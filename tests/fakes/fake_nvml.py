"""A stand-in ``pynvml`` module that replays scripted traces for several GPUs.

Every trace is a function of a controllable clock (:class:`FakeClock`), so a test can let ten
minutes pass without sleeping. Each NVML call takes ``call_latency_sec`` of fake time and
returns the value at the middle of the call, like a real read that takes a while. The energy
counter is the exact integral of the scripted power (in mJ, truncated, with an arbitrary
origin), so the ground truth of any interval is known.

Install it with ``monkeypatch.setitem(sys.modules, "pynvml", fake.module)``.
"""

from __future__ import annotations

import bisect
import math
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start_sec: float = 1000.0) -> None:
        self.t = start_sec

    def __call__(self) -> float:
        return self.t

    def advance(self, dt_sec: float) -> None:
        assert dt_sec >= 0
        self.t += dt_sec

    def sleep(self, dt_sec: float) -> None:
        self.advance(max(0.0, dt_sec))


class Trace:
    """A piecewise-linear signal over absolute clock time; constant outside its points."""

    def __init__(self, points: Sequence[tuple[float, float]] | float) -> None:
        if isinstance(points, int | float):
            points = [(0.0, float(points))]
        pts = sorted((float(t), float(v)) for t, v in points)
        assert pts, "a trace needs at least one point"
        self.t = [p[0] for p in pts]
        self.v = [p[1] for p in pts]
        # cumulative integral at each point, from the first point
        self.cum = [0.0]
        for i in range(1, len(pts)):
            self.cum.append(self.cum[-1] + 0.5 * (self.v[i] + self.v[i - 1]) *
                            (self.t[i] - self.t[i - 1]))

    @classmethod
    def steps(cls, start_sec: float, step_sec: float, values: Sequence[float]) -> Trace:
        """Constant levels of ``step_sec`` each (1 µs ramps between them)."""
        points: list[tuple[float, float]] = []
        for i, value in enumerate(values):
            t0 = start_sec + i * step_sec
            points += [(t0 + (1e-6 if i else 0.0), value), (t0 + step_sec, value)]
        return cls(points)

    def at(self, t: float) -> float:
        if t <= self.t[0]:
            return self.v[0]
        if t >= self.t[-1]:
            return self.v[-1]
        i = bisect.bisect_right(self.t, t) - 1
        t0, t1 = self.t[i], self.t[i + 1]
        if t1 == t0:
            return self.v[i + 1]
        return self.v[i] + (self.v[i + 1] - self.v[i]) * (t - t0) / (t1 - t0)

    def _cum_at(self, t: float) -> float:
        if t <= self.t[0]:
            return -(self.t[0] - t) * self.v[0]
        if t >= self.t[-1]:
            return self.cum[-1] + (t - self.t[-1]) * self.v[-1]
        i = bisect.bisect_right(self.t, t) - 1
        return self.cum[i] + 0.5 * (self.v[i] + self.at(t)) * (t - self.t[i])

    def integral(self, t0: float, t1: float) -> float:
        """Exact integral over [t0, t1]."""
        return self._cum_at(t1) - self._cum_at(t0)


def _as_trace(value: Trace | float) -> Trace:
    return value if isinstance(value, Trace) else Trace(float(value))


@dataclass
class FakeGpu:
    """One scripted GPU."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: Trace | float = 100.0
    counter_supported: bool = True
    mig: bool = False
    temperature_c: Trace | float = 40.0
    sm_clock_mhz: Trace | float = 1980.0
    mem_clock_mhz: Trace | float = 2619.0
    gpu_util_pct: Trace | float = 0.0
    mem_util_pct: Trace | float = 0.0
    memory_used_mb: float = 500.0
    memory_total_mb: float = 81559.0
    persistence: bool = True
    #: (t_start, t_end, bits): reason bits set during [t_start, t_end)
    reasons: list[tuple[float, float, int]] = field(default_factory=list)
    counter_origin_mj: int = 987_654_321
    power_readable: bool = True

    def energy_mj(self, t: float) -> int:
        return self.counter_origin_mj + math.floor(_as_trace(self.power_w).integral(0.0, t) * 1000)

    def reason_bits(self, t: float) -> int:
        bits = 0
        for t0, t1, b in self.reasons:
            if t0 <= t < t1:
                bits |= b
        return bits


class FakeNVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in ``value``."""

    def __init__(self, value: int) -> None:
        super().__init__(f"NVML error {value}")
        self.value = value


@dataclass
class _Handle:
    gpu: FakeGpu
    index: int


class FakeNvml:
    """Builds the stand-in module; counts calls for the read-cost benchmark."""

    def __init__(
        self,
        gpus: list[FakeGpu],
        clock: FakeClock | Callable[[], float],
        call_latency_sec: float = 0.0,
        init_error: int | None = None,
        legacy_reason_name_only: bool = False,
        driver_version: str = "550.54.15",
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.call_latency_sec = call_latency_sec
        self.init_error = init_error
        self.calls = 0
        self.init_count = 0
        self.module = self._build(legacy_reason_name_only, driver_version)

    def _now(self) -> float:
        """Spend the call's latency; return the time at its middle."""
        self.calls += 1
        half = self.call_latency_sec / 2
        if half and isinstance(self.clock, FakeClock):
            self.clock.advance(half)
            t = self.clock()
            self.clock.advance(half)
            return t
        return self.clock()

    def _build(self, legacy_only: bool, driver: str) -> types.ModuleType:
        m = types.ModuleType("pynvml")
        m.NVMLError = FakeNVMLError  # type: ignore[attr-defined]
        fake = self

        def check_init() -> None:
            if fake.init_count <= 0:
                raise FakeNVMLError(NVML_ERROR_UNINITIALIZED)

        def nvmlInit() -> None:
            if fake.init_error is not None:
                raise FakeNVMLError(fake.init_error)
            fake.init_count += 1

        def nvmlShutdown() -> None:
            check_init()
            fake.init_count -= 1

        def nvmlDeviceGetCount() -> int:
            check_init()
            return len(fake.gpus)

        def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
            check_init()
            if not 0 <= index < len(fake.gpus):
                raise FakeNVMLError(NVML_ERROR_INVALID_ARGUMENT)
            return _Handle(fake.gpus[index], index)

        def nvmlDeviceGetTotalEnergyConsumption(handle: _Handle) -> int:
            t = fake._now()
            check_init()
            if not handle.gpu.counter_supported:
                raise FakeNVMLError(NVML_ERROR_NOT_SUPPORTED)
            return handle.gpu.energy_mj(t)

        def nvmlDeviceGetPowerUsage(handle: _Handle) -> int:
            t = fake._now()
            check_init()
            if not handle.gpu.power_readable:
                raise FakeNVMLError(NVML_ERROR_NOT_SUPPORTED)
            return round(_as_trace(handle.gpu.power_w).at(t) * 1000)

        def nvmlDeviceGetMigMode(device: _Handle) -> tuple[int, int]:
            return (1, 1) if device.gpu.mig else (0, 0)

        def reasons(handle: _Handle) -> int:
            return handle.gpu.reason_bits(fake._now())

        def util(handle: _Handle) -> Any:
            t = fake._now()
            return types.SimpleNamespace(gpu=int(_as_trace(handle.gpu.gpu_util_pct).at(t)),
                                         memory=int(_as_trace(handle.gpu.mem_util_pct).at(t)))

        def meminfo(handle: _Handle, version: Any = None) -> Any:
            fake._now()
            mib = 1024 * 1024
            gpu = handle.gpu
            return types.SimpleNamespace(total=int(gpu.memory_total_mb * mib),
                                         used=int(gpu.memory_used_mb * mib),
                                         free=int((gpu.memory_total_mb - gpu.memory_used_mb)
                                                  * mib))

        def clock_info(handle: _Handle, type: int) -> int:  # pynvml's parameter name
            t = fake._now()
            trace = handle.gpu.sm_clock_mhz if type == 1 else handle.gpu.mem_clock_mhz
            return int(_as_trace(trace).at(t))

        m.nvmlInit = nvmlInit  # type: ignore[attr-defined]
        m.nvmlShutdown = nvmlShutdown  # type: ignore[attr-defined]
        m.nvmlDeviceGetCount = nvmlDeviceGetCount  # type: ignore[attr-defined]
        m.nvmlDeviceGetHandleByIndex = nvmlDeviceGetHandleByIndex  # type: ignore[attr-defined]
        m.nvmlDeviceGetUUID = lambda handle: handle.gpu.uuid  # type: ignore[attr-defined]
        m.nvmlDeviceGetName = lambda handle: handle.gpu.name  # type: ignore[attr-defined]
        m.nvmlDeviceGetIndex = lambda handle: handle.index  # type: ignore[attr-defined]
        m.nvmlDeviceGetMigMode = nvmlDeviceGetMigMode  # type: ignore[attr-defined]
        m.nvmlDeviceGetTotalEnergyConsumption = nvmlDeviceGetTotalEnergyConsumption  # type: ignore[attr-defined]
        m.nvmlDeviceGetPowerUsage = nvmlDeviceGetPowerUsage  # type: ignore[attr-defined]
        m.nvmlDeviceGetTemperature = (  # type: ignore[attr-defined]
            lambda handle, sensor: round(_as_trace(handle.gpu.temperature_c).at(fake._now())))
        m.nvmlDeviceGetClockInfo = clock_info  # type: ignore[attr-defined]
        m.nvmlDeviceGetUtilizationRates = util  # type: ignore[attr-defined]
        m.nvmlDeviceGetMemoryInfo = meminfo  # type: ignore[attr-defined]
        m.nvmlDeviceGetPersistenceMode = lambda handle: int(handle.gpu.persistence)  # type: ignore[attr-defined]
        m.nvmlDeviceGetCudaComputeCapability = lambda handle: (9, 0)  # type: ignore[attr-defined]
        m.nvmlDeviceGetMaxPcieLinkGeneration = lambda handle: 5  # type: ignore[attr-defined]
        m.nvmlDeviceGetPciInfo = lambda handle: types.SimpleNamespace(  # type: ignore[attr-defined]
            busId=f"00000000:{0x10 + handle.index:02X}:00.0".encode())
        m.nvmlDeviceGetEnforcedPowerLimit = lambda handle: 700_000  # type: ignore[attr-defined]
        m.nvmlDeviceGetPowerManagementDefaultLimit = lambda handle: 700_000  # type: ignore[attr-defined]
        m.nvmlDeviceGetFanSpeed = lambda handle: (_ for _ in ()).throw(  # type: ignore[attr-defined]
            FakeNVMLError(NVML_ERROR_NOT_SUPPORTED))
        m.nvmlSystemGetDriverVersion = lambda: driver  # type: ignore[attr-defined]
        m.nvmlSystemGetCudaDriverVersion = lambda: 12040  # type: ignore[attr-defined]
        m.nvmlDeviceGetCurrentClocksThrottleReasons = reasons  # type: ignore[attr-defined]
        if not legacy_only:
            m.nvmlDeviceGetCurrentClocksEventReasons = reasons  # type: ignore[attr-defined]
        return m


def uuid(n: int) -> str:
    """A GPU UUID for fake GPU number ``n``."""
    return f"GPU-{n:08x}-1111-2222-3333-{n:012x}"
