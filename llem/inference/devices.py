"""Which torch device a rank runs on, and which CUDA devices it (and its energy meter) uses.

Which GPUs is decided in :mod:`llem.devices`, for every step alike. Device indices here are as
CUDA numbers them (after ``CUDA_VISIBLE_DEVICES``); the energy layer maps them to physical GPUs
by UUID.
"""

from __future__ import annotations

from dataclasses import dataclass

from llem.config.models import ExperimentConfig
from llem.devices import assign_devices
from llem.errors import MeasurementError


@dataclass(frozen=True)
class DevicePlan:
    """Where one rank runs."""

    device: str  # torch device string: "cpu" or "cuda:N"
    cuda_indices: list[int]  # CUDA devices this rank uses (empty on CPU)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def gpu_id(self) -> int:
        """Index recorded in results (-1 on CPU)."""
        return self.cuda_indices[0] if self.cuda_indices else -1


def plan_device(config: ExperimentConfig, local_rank: int = 0) -> DevicePlan:
    """Where one rank runs: the GPUs :func:`llem.devices.assign_devices` gives it, or the CPU."""
    import torch

    cuda_ok = torch.cuda.is_available()
    indices = assign_devices(config, torch.cuda.device_count() if cuda_ok else 0).for_rank(
        local_rank)
    if not indices:
        return DevicePlan("cpu", [])
    if not cuda_ok:
        raise MeasurementError(f"device {config.device!r} requested but CUDA is not available")
    return DevicePlan(f"cuda:{indices[0]}", indices)
