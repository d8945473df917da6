"""Which GPUs an experiment uses: one decision for the workflow, baseline, environment and run.

The workflow allocates GPUs, ``llem baseline`` and ``llem env`` measure and describe them and
``llem measure`` runs on them; all four ask :func:`assign_devices`, a pure function of the
config and the number of devices CUDA makes visible, so they cannot disagree. Indices are as
CUDA numbers them (after ``CUDA_VISIBLE_DEVICES``). The rules:

- ``device: cpu`` uses no GPU (whatever ``gpus`` says); ``device: auto`` is the CPU when no GPU
  is visible.
- ``device: cuda:N`` uses GPU N alone (one process; ``gpus``, if given, must be ``[N]``).
- ``model.device_map`` spreads one model (one process) over exactly the GPUs in ``gpus``.
- Otherwise each process takes one GPU: rank i the i-th of ``gpus`` (one per process), or the
  i-th visible GPU.

Contradictory configs are refused by :func:`device_conflicts` when the campaign is planned.
Nothing here imports torch or opens NVML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llem.config.models import ExperimentConfig
from llem.errors import ConfigError, MeasurementError

#: ``model.device_map`` values that place the whole model on one device ("cuda:1", "1").
_ONE_DEVICE_MAP = re.compile(r"^(?:cuda:)?(\d+)$")


@dataclass(frozen=True)
class DeviceAssignment:
    """The GPUs of an experiment, per rank (empty tuples on the CPU)."""

    rank_indices: tuple[tuple[int, ...], ...]

    @property
    def cuda_indices(self) -> list[int]:
        """Every GPU the experiment uses, each once, in rank order."""
        return list(dict.fromkeys(i for rank in self.rank_indices for i in rank))

    def for_rank(self, local_rank: int) -> list[int]:
        """The GPUs one rank uses."""
        if not 0 <= local_rank < len(self.rank_indices):
            raise MeasurementError(
                f"rank {local_rank} does not exist: the experiment has "
                f"{len(self.rank_indices)} process(es)"
            )
        return list(self.rank_indices[local_rank])


def device_conflicts(config: ExperimentConfig) -> list[str]:
    """What in the device fields contradicts itself, one line each naming the fields."""
    problems: list[str] = []
    device, gpus, procs = config.device, config.gpus, config.num_processes
    device_map = config.model.device_map
    if device == "cpu":
        return problems
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if procs > 1:
            problems.append(f"device {device!r} names one GPU but num_processes is {procs}; "
                            "use device 'cuda' with gpus")
        if gpus is not None and list(gpus) != [index]:
            problems.append(f"device {device!r} names GPU {index} but gpus is {list(gpus)}; "
                            "set one of them")
    if device_map:
        if procs > 1:
            problems.append(f"model.device_map (one model on several GPUs) needs "
                            f"num_processes 1, not {procs}")
        if gpus is None and not device.startswith("cuda:"):
            problems.append("model.device_map needs gpus, the GPUs to spread the model over "
                            "(so that many are allocated and measured)")
        one = _ONE_DEVICE_MAP.match(device_map)
        used = _device_map_gpus(config)
        if one and int(one.group(1)) not in used:
            problems.append(f"model.device_map {device_map!r} places the model on GPU "
                            f"{one.group(1)}, which is not in the GPUs used ({used})")
    elif gpus is not None and not device.startswith("cuda:") and len(gpus) != procs:
        problems.append(f"gpus lists {len(gpus)} GPU(s) for num_processes {procs}; each "
                        "process uses one GPU, so list exactly one per process")
    return problems


def check_device_config(config: ExperimentConfig, source: str | None = None) -> None:
    """Raise :class:`ConfigError` (one line per problem, naming the fields) on a conflict."""
    problems = device_conflicts(config)
    if problems:
        where = f"{source}: " if source else ""
        raise ConfigError("\n".join(
            f"{where}experiment {config.config_name!r}: {p}" for p in problems))


def assign_devices(config: ExperimentConfig, visible_count: int | None = None) -> DeviceAssignment:
    """The GPUs each rank of ``config`` uses, given how many devices CUDA makes visible.

    ``visible_count`` None means unknown (planning, on a host that may not be the one the job
    runs on): the GPUs the config asks for are assumed to exist. With 0 visible, ``device:
    auto`` is a CPU run and an explicit GPU request is kept as asked (the energy source and
    the run then say why it cannot be served). Raises :class:`ConfigError` on a
    contradictory config and :class:`MeasurementError` when a GPU asked for is not visible.
    """
    check_device_config(config)
    procs = config.num_processes
    cpu = DeviceAssignment(tuple(() for _ in range(procs)))
    if config.device == "cpu" or (config.device == "auto" and visible_count == 0):
        return cpu
    if config.model.device_map:
        ranks: tuple[tuple[int, ...], ...] = (tuple(_device_map_gpus(config)),)
    elif config.device.startswith("cuda:"):
        ranks = ((int(config.device.split(":", 1)[1]),),)
    elif config.gpus is not None:
        ranks = tuple((i,) for i in config.gpus)
    else:
        available = visible_count or procs
        if procs > available:
            raise MeasurementError(f"num_processes is {procs} but CUDA sees {available} "
                                   "GPU(s): one GPU per process")
        ranks = tuple((i,) for i in range(procs))
    assignment = DeviceAssignment(ranks)
    if visible_count:
        missing = [i for i in assignment.cuda_indices if not 0 <= i < visible_count]
        if missing:
            raise MeasurementError(f"GPU(s) {missing} do not exist: CUDA sees "
                                   f"{visible_count} device(s)")
    return assignment


def gpus_to_allocate(config: ExperimentConfig) -> int:
    """How many GPUs a scheduler gives the experiment: exactly the ones it uses."""
    return len(assign_devices(config).cuda_indices)


def _device_map_gpus(config: ExperimentConfig) -> list[int]:
    if config.device.startswith("cuda:"):
        return [int(config.device.split(":", 1)[1])]
    return list(config.gpus or [])
