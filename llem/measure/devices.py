"""Which GPUs (torch numbering) an experiment uses, decided without starting CUDA."""

from __future__ import annotations

import os
from collections.abc import Mapping

from llem.config.models import ExperimentConfig
from llem.energy import nvml as nv
from llem.energy.cuda_devices import visible_devices


def visible_cuda_device_count(environ: Mapping[str, str] | None = None) -> int:
    """Devices CUDA would expose here (NVML + CUDA_VISIBLE_DEVICES); 0 without a driver."""
    env = os.environ if environ is None else environ
    try:
        nvml = nv.load_nvml()
        nv.nvml_init(nvml)
    except Exception:
        return 0
    try:
        uuids = [g.uuid for g in nv.list_gpus(nvml)]
    except Exception:
        return 0
    finally:
        nv.nvml_shutdown(nvml)
    return len(visible_devices(env.get("CUDA_VISIBLE_DEVICES"), uuids)[0])


def cuda_indices_for_config(
    config: ExperimentConfig, visible_count: int | None = None
) -> list[int]:
    """GPU indices an experiment uses: ``gpus``, else ``device``, else one per process.

    ``device: auto`` means the GPUs when any is visible, else the CPU (an empty list). A model
    spread over GPUs (``model.device_map``) uses every visible GPU unless ``gpus`` says.
    """
    if config.device == "cpu":
        return []
    if config.gpus is not None:
        return list(config.gpus)
    if config.device.startswith("cuda:"):
        return [int(config.device.split(":", 1)[1])]
    count = visible_cuda_device_count() if visible_count is None else visible_count
    if count == 0:
        return [0] if config.device == "cuda" else []
    if config.model.device_map:
        return list(range(count))
    return list(range(min(config.num_processes, count)))
