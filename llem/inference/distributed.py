"""Data-parallel runs: launching ``torchrun`` and the little coordination ranks need.

``llem measure`` with ``num_processes > 1`` starts ``torchrun --nproc-per-node N`` on itself
with ``--rank-worker``, so a workflow rule is the same for one or N processes. Ranks use gloo
on CPU and NCCL on GPUs; they meet at a barrier before the measured window starts and agree
(all-reduce) on whether the window is long enough, so they all repeat the prompt set the
same number of times.

Ranks take no lock: the launching ``llem measure`` holds the experiment's device locks and the
host lock for all of them. Each rank stops when torchrun or the launching process is gone
(``LLEM_WATCHED_PROCESSES``, inherited), and an orphaned launcher kills torchrun and its
ranks first (:mod:`llem.measure.orphan`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from llem.errors import MeasurementError


@dataclass(frozen=True)
class RankInfo:
    """Where this process sits in a data-parallel run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> RankInfo:
        """Read torchrun's ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (defaults: one process)."""
        return cls(
            rank=int(os.environ.get("RANK", "0")),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        )


class Coordinator:
    """Barrier and min-reduction across ranks; a no-op for a single process."""

    def __init__(self, info: RankInfo, use_cuda: bool) -> None:
        self.info = info
        self._dist = None
        if info.world_size > 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(backend="nccl" if use_cuda else "gloo")
            self._dist = dist
            self._device = f"cuda:{info.local_rank}" if use_cuda else "cpu"

    def barrier(self) -> None:
        if self._dist is not None:
            self._dist.barrier()

    def min(self, value: float) -> float:
        """The smallest ``value`` over all ranks."""
        if self._dist is None:
            return value
        import torch

        tensor = torch.tensor([value], dtype=torch.float64, device=self._device)
        self._dist.all_reduce(tensor, op=self._dist.ReduceOp.MIN)
        return float(tensor.item())

    def close(self) -> None:
        if self._dist is not None and self._dist.is_initialized():
            self._dist.destroy_process_group()


def launch_workers(num_processes: int, worker_args: Sequence[str]) -> int:
    """Run ``torchrun --standalone --nproc-per-node N -m llem <worker_args>``; its exit status.

    ``--standalone`` picks a free local rendezvous port, so concurrent jobs on one node do not
    collide.
    """
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(num_processes), "-m", "llem", *worker_args,
    ]
    try:
        completed = subprocess.run(command, check=False)
    except OSError as exc:
        raise MeasurementError(f"cannot start torchrun: {exc}") from exc
    if completed.returncode != 0:
        raise MeasurementError(
            f"torchrun with {num_processes} processes failed (exit status "
            f"{completed.returncode}); see the log above for the failing rank"
        )
    return 0
