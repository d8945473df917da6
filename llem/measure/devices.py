"""How many GPUs CUDA would expose here, and which of them an experiment uses (no CUDA start)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from llem.config.models import ExperimentConfig
from llem.devices import assign_devices
from llem.energy import nvml as nv
from llem.energy.cuda_devices import visible_devices
from llem.errors import EnergySourceError


def visible_cuda_device_count(environ: Mapping[str, str] | None = None) -> int:
    """Devices CUDA would expose here (NVML + CUDA_VISIBLE_DEVICES); 0 without a driver."""
    env = os.environ if environ is None else environ
    try:
        nvml = nv.load_nvml()
        nv.nvml_init(nvml)
    except EnergySourceError:
        return 0
    try:
        uuids = [g.uuid for g in nv.list_gpus(nvml)]
    except EnergySourceError:
        return 0
    finally:
        nv.nvml_shutdown(nvml)
    return len(visible_devices(env.get("CUDA_VISIBLE_DEVICES"), uuids)[0])


def cuda_indices_for_config(
    config: ExperimentConfig, visible_count: int | None = None
) -> list[int]:
    """GPU indices an experiment uses (:func:`llem.devices.assign_devices`), all ranks together.

    ``visible_count`` defaults to the devices CUDA would expose here.
    """
    count = visible_cuda_device_count() if visible_count is None else visible_count
    return assign_devices(config, count).cuda_indices
