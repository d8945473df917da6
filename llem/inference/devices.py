"""Which torch device a rank runs on, and which CUDA devices it (and its energy meter) uses.

Device indices here are as CUDA numbers them (after ``CUDA_VISIBLE_DEVICES``); the energy
layer maps them to physical GPUs by UUID.
"""

from __future__ import annotations

from dataclasses import dataclass

from llem.config.models import ExperimentConfig
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
    """Resolve ``config.device`` for one rank: one GPU per rank, or several via device_map."""
    import torch

    requested = config.device
    cuda_ok = torch.cuda.is_available()
    if requested == "cpu" or (requested == "auto" and not cuda_ok):
        return DevicePlan("cpu", [])
    if not cuda_ok:
        raise MeasurementError(f"device {requested!r} requested but CUDA is not available")
    count = torch.cuda.device_count()
    candidates = list(config.gpus) if config.gpus is not None else list(range(count))
    bad = [i for i in candidates if not 0 <= i < count]
    if bad:
        raise MeasurementError(f"gpus {bad} do not exist (CUDA sees {count} device(s))")
    if requested.startswith("cuda:"):
        if config.num_processes > 1:
            raise MeasurementError(
                f"device {requested!r} names one GPU but num_processes is "
                f"{config.num_processes}; use device 'cuda' with 'gpus'"
            )
        candidates = [int(requested.split(":", 1)[1])]
        if candidates[0] >= count:
            raise MeasurementError(f"{requested} does not exist (CUDA sees {count} device(s))")
    if config.model.device_map:
        if config.num_processes > 1:
            raise MeasurementError("model.device_map (one model on several GPUs) needs "
                                   "num_processes: 1")
        return DevicePlan(f"cuda:{candidates[0]}", candidates)
    if local_rank >= len(candidates):
        raise MeasurementError(
            f"rank {local_rank} has no GPU: {len(candidates)} GPU(s) for "
            f"{config.num_processes} processes"
        )
    index = candidates[local_rank]
    return DevicePlan(f"cuda:{index}", [index])
