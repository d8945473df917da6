"""NVIDIA GPUs through NVML: the cumulative energy counter is the energy of record.

``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded, Volta and later) is read
at both ends of a window. Where a GPU has no counter, its energy comes from integrating polled
power (trapezoids between reads) and is labelled ``nvml_power_integration``; that needs regular
reads, so the window's sampler always runs for such a GPU. Vendor units (mW, mJ, bytes) are
converted here, once.

``pynvml`` (from the ``nvidia-ml-py`` package) is imported lazily through :func:`load_nvml`,
so a stand-in module placed in ``sys.modules["pynvml"]`` replaces it everywhere.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from llem.energy.base import (
    DeviceInfo,
    DeviceReadError,
    DeviceSample,
    EnergyReading,
    EnergySource,
    EnergySourceUnavailable,
)
from llem.energy.cuda_devices import VisibleDevice, select_visible, visible_devices

# NVML return codes (stable C ABI values).
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2

_MIB = 1024 * 1024
_UNRESOLVED: Any = object()

#: Clock-event reason readers, newest name first (the older name was deprecated in CUDA 12).
CLOCK_EVENT_FUNCTIONS = (
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
)

_INIT_REASONS = {
    NVML_ERROR_LIBRARY_NOT_FOUND: "no NVIDIA driver: the NVML library (libnvidia-ml.so.1) "
    "was not found",
    NVML_ERROR_DRIVER_NOT_LOADED: "NVIDIA driver not loaded (is the kernel module loaded? "
    "does nvidia-smi work?)",
    NVML_ERROR_NO_PERMISSION: "no permission to use NVML (check access to /dev/nvidia*)",
    NVML_ERROR_UNINITIALIZED: "NVML could not be initialized",
    NVML_ERROR_GPU_IS_LOST: "an NVIDIA GPU has fallen off the bus (GPU is lost)",
}


def load_nvml() -> ModuleType:
    """The ``pynvml`` module (or whatever stands in for it in ``sys.modules``)."""
    try:
        return importlib.import_module("pynvml")
    except ImportError as exc:
        raise EnergySourceUnavailable(
            "the nvidia-ml-py package (module pynvml) is not installed"
        ) from exc


def error_code(exc: BaseException) -> int | None:
    """The NVML return code carried by a pynvml exception, if any."""
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def describe_error(exc: BaseException) -> str:
    """Plain words for an NVML failure."""
    code = error_code(exc)
    if code in _INIT_REASONS:
        return _INIT_REASONS[code]
    if code == NVML_ERROR_NOT_SUPPORTED:
        return "not supported by this GPU or driver"
    if code == NVML_ERROR_NO_PERMISSION:
        return "permission denied"
    return f"NVML error: {exc}"


def nvml_init(nvml: ModuleType) -> None:
    """``nvmlInit``, with every failure turned into one plain-words llem error."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        raise EnergySourceUnavailable(describe_error(exc)) from exc


def nvml_shutdown(nvml: ModuleType) -> None:
    """``nvmlShutdown`` (reference-counted by NVML); failures do not matter at this point."""
    with contextlib.suppress(nvml.NVMLError):
        nvml.nvmlShutdown()


def nvml_text(value: bytes | str) -> str:
    """A string NVML returned: bytes from older pynvml releases, str from newer ones."""
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class PhysicalGpu:
    """A GPU as NVML sees it."""

    index: int
    uuid: str
    name: str
    handle: Any
    mig_enabled: bool
    counter_supported: bool
    counter_reason: str | None = None  # why the counter cannot be read, when it cannot


def list_gpus(nvml: ModuleType) -> list[PhysicalGpu]:
    """Every GPU in the machine, in NVML order (NVML must be initialized)."""
    try:
        count = int(nvml.nvmlDeviceGetCount())
    except nvml.NVMLError as exc:
        raise EnergySourceUnavailable(f"cannot count NVIDIA GPUs: {describe_error(exc)}") from exc
    gpus: list[PhysicalGpu] = []
    for index in range(count):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            uuid = nvml_text(nvml.nvmlDeviceGetUUID(handle))
            name = nvml_text(nvml.nvmlDeviceGetName(handle))
        except nvml.NVMLError as exc:
            raise EnergySourceUnavailable(
                f"cannot open NVIDIA GPU {index}: {describe_error(exc)}"
            ) from exc
        mig_enabled = False
        try:
            current, _pending = nvml.nvmlDeviceGetMigMode(handle)
            mig_enabled = bool(current)
        except nvml.NVMLError:
            pass  # not supported: no MIG on this GPU
        counter_supported, counter_reason = True, None
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except nvml.NVMLError as exc:
            counter_supported, counter_reason = False, describe_error(exc)
        gpus.append(PhysicalGpu(index, uuid, name, handle, mig_enabled, counter_supported,
                                counter_reason))
    return gpus


@dataclass
class _Integrator:
    """Polled-power trapezoid integration for a GPU without an energy counter."""

    last_t: float | None = None
    last_w: float | None = None
    energy_j: float = 0.0

    def add(self, t: float, power_w: float) -> float:
        if self.last_t is not None and self.last_w is not None and t > self.last_t:
            self.energy_j += 0.5 * (self.last_w + power_w) * (t - self.last_t)
        self.last_t, self.last_w = t, power_w
        return self.energy_j


class NvmlSource(EnergySource):
    """Meters a fixed set of physical GPUs through NVML."""

    name = "nvml_counter"
    reports_clock_events = True

    def __init__(
        self,
        nvml: ModuleType,
        gpus: list[PhysicalGpu],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nvml = nvml
        self._gpus = gpus
        self._clock = clock
        self._lock = threading.Lock()
        self._integrators = {g.uuid: _Integrator() for g in gpus if not g.counter_supported}
        self._disabled: dict[str, set[str]] = {g.uuid: set() for g in gpus}
        self._reason_fn: Any = _UNRESOLVED
        self.needs_regular_reads = bool(self._integrators)
        if self._integrators:
            self.name = "nvml_power_integration"
        self._devices = [
            DeviceInfo(
                device_id=g.uuid,
                kind="gpu",
                name=g.name,
                index=g.index,
                counter_supported=g.counter_supported,
            )
            for g in gpus
        ]
        self._closed = False

    @property
    def devices(self) -> list[DeviceInfo]:
        return list(self._devices)

    def device_source(self, device: DeviceInfo) -> str:
        return "nvml_counter" if device.counter_supported else "nvml_power_integration"

    # -- energy ------------------------------------------------------------------------

    def _energy_j(self, gpu: PhysicalGpu) -> tuple[float, float]:
        """(cumulative J, timestamp) for one GPU, stamped at the middle of its own read."""
        t0 = self._clock()
        try:
            if gpu.counter_supported:
                value = self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle)
            else:
                value = self._nvml.nvmlDeviceGetPowerUsage(gpu.handle)
        except self._nvml.NVMLError as exc:
            raise DeviceReadError(
                f"reading energy of GPU {gpu.index} ({gpu.uuid}) failed: {describe_error(exc)}"
            ) from exc
        t1 = self._clock()
        stamp = 0.5 * (t0 + t1)
        if gpu.counter_supported:
            return int(value) / 1000.0, stamp
        return self._integrators[gpu.uuid].add(stamp, int(value) / 1000.0), stamp

    def read_energy(self) -> list[EnergyReading]:
        with self._lock:
            readings = []
            for gpu in self._gpus:
                energy_j, stamp = self._energy_j(gpu)
                readings.append(EnergyReading(gpu.uuid, energy_j, stamp))
            return readings

    # -- sampling ----------------------------------------------------------------------

    def _optional(self, gpu: PhysicalGpu, field: str, call: Callable[[], Any]) -> Any:
        """One optional read; a field that is not supported is not asked for again."""
        if field in self._disabled[gpu.uuid]:
            return None
        try:
            return call()
        except self._nvml.NVMLError as exc:
            if error_code(exc) in (NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND,
                                   NVML_ERROR_NO_PERMISSION):
                self._disabled[gpu.uuid].add(field)
            return None

    def _clock_event_reasons(self, handle: Any) -> int:
        if self._reason_fn is _UNRESOLVED:
            self._reason_fn = None
            for fn_name in CLOCK_EVENT_FUNCTIONS:
                fn = getattr(self._nvml, fn_name, None)
                if fn is None:
                    continue
                try:
                    fn(handle)
                except self._nvml.NVMLError as exc:
                    if error_code(exc) == NVML_ERROR_FUNCTION_NOT_FOUND:
                        continue  # the driver lacks this name; try the older one
                self._reason_fn = fn
                break
        if self._reason_fn is None:
            raise DeviceReadError("no clock-event reason function")
        return int(self._reason_fn(handle))

    def sample(self) -> list[DeviceSample]:
        with self._lock:
            return [self._sample_gpu(gpu) for gpu in self._gpus]

    def _sample_gpu(self, gpu: PhysicalGpu) -> DeviceSample:
        nvml, h = self._nvml, gpu.handle

        def read(field: str, call: Callable[[], Any]) -> float | None:
            value = self._optional(gpu, field, call)
            return None if value is None else float(value)

        power_mw = read("power", lambda: nvml.nvmlDeviceGetPowerUsage(h))
        power_w = None if power_mw is None else power_mw / 1000.0
        energy_j: float | None
        try:
            if not gpu.counter_supported and power_w is not None:
                stamp = self._clock()  # reuse the power just read for the integral
                energy_j = self._integrators[gpu.uuid].add(stamp, power_w)
            else:
                energy_j, stamp = self._energy_j(gpu)
        except DeviceReadError:
            energy_j, stamp = None, self._clock()
        util = self._optional(gpu, "util", lambda: nvml.nvmlDeviceGetUtilizationRates(h))
        meminfo = self._optional(gpu, "memory", lambda: nvml.nvmlDeviceGetMemoryInfo(h))
        reasons = self._optional(gpu, "reasons", lambda: self._clock_event_reasons(h))
        return DeviceSample(
            device_id=gpu.uuid,
            timestamp_sec=stamp,
            power_w=power_w,
            energy_j=energy_j,
            temperature_c=read(
                "temperature", lambda: nvml.nvmlDeviceGetTemperature(h, NVML_TEMPERATURE_GPU)),
            sm_clock_mhz=read("sm_clock", lambda: nvml.nvmlDeviceGetClockInfo(h, NVML_CLOCK_SM)),
            mem_clock_mhz=read(
                "mem_clock", lambda: nvml.nvmlDeviceGetClockInfo(h, NVML_CLOCK_MEM)),
            gpu_utilization_pct=None if util is None else float(util.gpu),
            mem_utilization_pct=None if util is None else float(util.memory),
            memory_used_mb=None if meminfo is None else meminfo.used / _MIB,
            clock_event_reasons=None if reasons is None else int(reasons),
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            nvml_shutdown(self._nvml)


def _once_per_device(
    chosen: list[VisibleDevice], warnings: list[str]
) -> list[VisibleDevice]:
    """Each physical device (by UUID) once, in first-named order, however often it is named.

    Two CUDA numbers (or a number and a UUID) can name one GPU; metering it twice would
    double its energy.
    """
    first: dict[str, VisibleDevice] = {}
    for dev in chosen:
        if dev.uuid in first:
            warnings.append(
                f"GPU {dev.uuid} is named twice (as CUDA device {first[dev.uuid].cuda_index} "
                f"and {dev.cuda_index}); it is metered once"
            )
            continue
        first[dev.uuid] = dev
    return list(first.values())


def open_nvml_source(
    cuda_device_indices: list[int],
    cuda_visible_devices: str | None,
    clock: Callable[[], float] = time.monotonic,
    cuda_uuids: list[str] | None = None,
) -> tuple[NvmlSource, list[str]]:
    """Open NVML for the GPUs a job uses (torch numbering); returns the source and warnings.

    ``cuda_uuids``, when the caller knows them (torch with CUDA initialized), name the GPUs
    directly; otherwise ``CUDA_VISIBLE_DEVICES`` is read the way CUDA reads it. Each physical
    GPU is metered once, by UUID, whatever numbers name it. Raises
    :class:`EnergySourceUnavailable` when any requested GPU cannot be metered: a partial sum
    would be a wrong number.
    """
    if not cuda_device_indices:
        raise EnergySourceUnavailable("no GPU in use (a CPU run): NVML meters GPUs only")
    nvml = load_nvml()
    nvml_init(nvml)
    try:
        gpus = list_gpus(nvml)
        if not gpus:
            raise EnergySourceUnavailable("NVML found no NVIDIA GPU")
        by_uuid = {g.uuid: g for g in gpus}
        warnings: list[str] = []
        chosen: list[VisibleDevice]
        if cuda_uuids is not None and all(u in by_uuid or u.startswith("MIG-")
                                          for u in cuda_uuids):
            chosen = [
                VisibleDevice(i, by_uuid[u].index if u in by_uuid else None, u,
                              is_mig=u.startswith("MIG-"))
                for i, u in zip(cuda_device_indices, cuda_uuids, strict=True)
            ]
        else:
            visible, note = visible_devices(cuda_visible_devices, [g.uuid for g in gpus])
            if note:
                warnings.append(note)
            chosen = select_visible(cuda_device_indices, visible, cuda_visible_devices)
            if len({g.name for g in gpus}) > 1:
                warnings.append(
                    "GPUs of different models: unless CUDA_DEVICE_ORDER=PCI_BUS_ID, CUDA may "
                    "number them differently from NVML; llem assumed PCI bus order"
                )
        picked: list[PhysicalGpu] = []
        for dev in _once_per_device(chosen, warnings):
            if dev.is_mig or dev.physical_index is None:
                raise EnergySourceUnavailable(
                    f"CUDA device {dev.cuda_index} is a MIG instance ({dev.uuid}): NVML cannot "
                    "meter the energy of a MIG slice"
                )
            gpu = gpus[dev.physical_index]
            if gpu.mig_enabled:
                raise EnergySourceUnavailable(
                    f"GPU {gpu.index} ({gpu.uuid}) is in MIG mode: NVML meters the whole GPU, "
                    "not the slice a job uses, so its energy cannot be attributed"
                )
            if not gpu.counter_supported:
                warnings.append(
                    f"GPU {gpu.index} ({gpu.uuid}) has no energy counter "
                    f"({gpu.counter_reason}); its energy is integrated from polled power"
                )
            picked.append(gpu)
        return NvmlSource(nvml, picked, clock=clock), warnings
    except BaseException:
        nvml_shutdown(nvml)
        raise
