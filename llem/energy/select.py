"""Pick the energy source for the devices a job uses.

``auto`` takes the best measured source for those devices: NVML for a GPU run, RAPL for a CPU
run. It never falls back to something that meters other devices (RAPL cannot stand in for a
GPU) and never to an estimate; when nothing fits, the selection is ``none`` with the reason,
and every energy figure downstream is null. A backend named explicitly must work: otherwise
:class:`llem.errors.EnergySourceError` says why.

Example:
    >>> sel = open_energy_source(EnergyConfig(), cuda_device_indices=[])
    >>> sel.name, sel.unavailable_reason   # on a host without readable RAPL
    ('none', 'no RAPL: /sys/class/powercap is absent (...)')
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llem.config.models import EnergyConfig
from llem.energy.base import DeviceInfo, EnergySource, EnergySourceUnavailable
from llem.energy.estimate import CpuTimeEstimate
from llem.energy.nvml import open_nvml_source
from llem.energy.rapl import DEFAULT_POWERCAP_ROOT, RaplSource
from llem.errors import EnergySourceError


@dataclass
class EnergySelection:
    """The chosen source (or none) and why; close it when done."""

    source: EnergySource | None
    name: str
    unavailable_reason: str | None = None
    requested: str = "auto"
    warnings: list[str] = field(default_factory=list)

    @property
    def devices(self) -> list[DeviceInfo]:
        return [] if self.source is None else self.source.devices

    @property
    def device_ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def close(self) -> None:
        if self.source is not None:
            self.source.close()

    def __enter__(self) -> EnergySelection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def none_selection(reason: str, requested: str = "auto") -> EnergySelection:
    """A selection that measures nothing, for the reason given."""
    return EnergySelection(None, "none", reason, requested)


def open_energy_source(
    energy_cfg: EnergyConfig,
    cuda_device_indices: list[int] | None = None,
    rank: int = 0,
    *,
    environ: Mapping[str, str] | None = None,
    powercap_root: Path = DEFAULT_POWERCAP_ROOT,
    clock: Callable[[], float] = time.monotonic,
    cuda_uuids: list[str] | None = None,
) -> EnergySelection:
    """Open the source ``energy_cfg.backend`` names for the GPUs a job uses (torch numbers).

    ``cuda_device_indices`` is empty for a CPU run. ``rank`` matters for host-wide meters:
    RAPL covers the whole host, so only local rank 0 opens it and other ranks report none
    (their energy is in rank 0's figure).
    """
    env = os.environ if environ is None else environ
    gpus = list(cuda_device_indices or [])
    backend = energy_cfg.backend
    local_rank = _local_rank(env, rank)

    if backend == "none":
        return none_selection("energy measurement switched off (energy.backend: none)", backend)
    if backend == "estimate":
        assert energy_cfg.cpu_tdp_w is not None  # the config validator guarantees it
        source = CpuTimeEstimate(energy_cfg.cpu_tdp_w, clock=clock)
        return EnergySelection(source, source.name, None, backend,
                               ["energy is an estimate (CPU time x TDP), not a measurement"])
    if backend == "nvml" or (backend == "auto" and gpus):
        try:
            uuids = cuda_uuids if cuda_uuids is not None else _torch_cuda_uuids(gpus)
            source, warnings = open_nvml_source(
                gpus, env.get("CUDA_VISIBLE_DEVICES"), clock=clock, cuda_uuids=uuids
            )
        except EnergySourceUnavailable as exc:
            if backend == "nvml":
                raise EnergySourceError(f"energy.backend nvml: {exc.reason}") from exc
            return none_selection(exc.reason, backend)
        return EnergySelection(source, source.name, None, backend, warnings)
    # rapl, or auto for a CPU run
    if local_rank != 0:
        return none_selection(
            f"CPU energy (RAPL) covers the whole host and is metered by local rank 0 only "
            f"(this is local rank {local_rank})",
            backend,
        )
    try:
        rapl = RaplSource(powercap_root, clock=clock)
    except EnergySourceUnavailable as exc:
        if backend == "rapl":
            raise EnergySourceError(f"energy.backend rapl: {exc.reason}") from exc
        return none_selection(exc.reason, backend)
    return EnergySelection(rapl, rapl.name, None, backend)


def _local_rank(env: Mapping[str, str], rank: int) -> int:
    value = env.get("LOCAL_RANK")
    try:
        return int(value) if value is not None else rank
    except ValueError:
        return rank


def _torch_cuda_uuids(indices: list[int]) -> list[str] | None:
    """GPU UUIDs from torch, only when it already runs CUDA (never initializes it here)."""
    torch = sys.modules.get("torch")
    if torch is None or not indices:
        return None
    try:
        if not torch.cuda.is_initialized():
            return None
        return ["GPU-" + str(torch.cuda.get_device_properties(i).uuid) for i in indices]
    except Exception:
        return None
