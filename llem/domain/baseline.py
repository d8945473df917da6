"""The idle-power baseline file (``baseline.json``) and its per-device entries.

Written by ``llem baseline``, read back by the measured run that subtracts it
(:mod:`llem.measure.baseline` measures, caches and applies it); one :class:`DeviceBaseline` is
also the on-disk cache entry of one device. Its JSON Schema is exported with the others.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llem.domain.types import Timestamp
from llem.errors import MeasurementError


class DeviceBaseline(BaseModel):
    """Idle power of one device."""

    model_config = ConfigDict(extra="ignore")

    device_id: str = Field(description="GPU UUID, or e.g. 'rapl:package-0'.")
    kind: str = Field(description="gpu, cpu, dram or host.")
    power_w: float = Field(description="Mean idle power over the baseline interval, W.")
    duration_sec: float = Field(description="The device's own read interval, s.")
    source: str = Field(description="Energy source of the measurement.")
    measured_at: Timestamp = Field(description="When the measurement ended (UTC).")
    host: str | None = Field(default=None, description="Host it was measured on.")


class BaselineRecord(BaseModel):
    """Contents of ``baseline.json``."""

    model_config = ConfigDict(extra="ignore")

    method: Literal["fresh", "cached", "unavailable"] = Field(
        description="fresh (measured now), cached (from the on-disk cache) or unavailable."
    )
    power_w: float | None = Field(
        default=None, description="Total idle power of the devices, W; null when unavailable."
    )
    devices: list[DeviceBaseline] = Field(default_factory=list, description="Per device.")
    host: str | None = Field(default=None, description="Host name.")
    timestamp: Timestamp | None = Field(
        default=None, description="When the (oldest) device baseline was measured (UTC)."
    )
    cache_age_sec: float | None = Field(
        default=None, description="Age of the cached baseline when used, s (cached only)."
    )
    duration_sec: float | None = Field(default=None, description="Configured duration, s.")
    sample_interval_ms: int | None = Field(default=None, description="Sampling interval, ms.")
    sample_count: int = Field(default=0, description="Sampler ticks taken (fresh only).")
    energy_source: str = Field(default="none", description="Energy source used.")
    cuda_context: bool | None = Field(
        default=None, description="Whether a CUDA context was alive while measuring."
    )
    required: bool = Field(default=False, description="baseline.required of the config.")
    unavailable_reason: str | None = Field(
        default=None, description="Why no baseline was measured, when it was not."
    )
    warnings: list[str] = Field(default_factory=list, description="Measurement warnings.")

    @property
    def device_ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def power_of(self, device_id: str) -> float | None:
        entry = self.device(device_id)
        return None if entry is None else entry.power_w

    def device(self, device_id: str) -> DeviceBaseline | None:
        """The baseline of one device, None when it was not measured."""
        return next((d for d in self.devices if d.device_id == device_id), None)

    def check_devices(self, device_ids: list[str], host: str | None = None) -> None:
        """Refuse a baseline measured on other devices than ``device_ids`` (a foreign one).

        A baseline may cover more devices than one process meters (each rank meters its own
        GPU); every metered device must be in it. Host-bound ids (RAPL) also need the host.
        """
        if self.method == "unavailable":
            return
        missing = [d for d in device_ids if d not in self.device_ids]
        if missing:
            raise MeasurementError(
                f"baseline was measured on {', '.join(self.device_ids) or 'no device'}, not on "
                f"{', '.join(missing)}: a foreign baseline (another node or GPU?); measure the "
                "baseline on the same node and GPUs"
            )
        host_bound = [d for d in device_ids if not d.startswith(("GPU-", "MIG-"))]
        if host_bound and host and self.host and host != self.host:
            raise MeasurementError(
                f"baseline was measured on host {self.host}, this is {host}: a foreign baseline"
            )

    def raise_if_required(self) -> None:
        """``baseline.required: true`` makes an unavailable baseline an error."""
        if self.required and self.method == "unavailable":
            raise MeasurementError(
                f"baseline required but unavailable: {self.unavailable_reason}"
            )
