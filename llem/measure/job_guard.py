"""What every llem step command does around its work.

The workflow's steps (``env``, ``prepare-model``, ``baseline``, ``measure``, ``aggregate``,
``ingest``, ``report``) declare a step kind when they register their parser; the CLI runs
each inside :func:`guard_step`:

- the process stops when the process that started it is gone (:mod:`llem.measure.orphan`);
- a **shared** step holds the host lock shared for its whole run;
- a **measuring** step (baseline, measure) takes its devices' locks first and then the host
  lock: shared while it loads a model, exclusive over the reads and windows that must be
  alone on the host (:mod:`llem.measure.device_lock`). Each step calls the guard for that.

A torchrun rank (``measure --rank-worker``) takes no lock: the ``llem measure`` that launched
torchrun holds the devices and the host for all its ranks.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from llem.config.models import ExperimentConfig
from llem.measure import journal, orphan
from llem.measure.device_lock import HostLocks, device_lock_names

SHARED = "shared"
MEASURING = "measuring"


class StepGuard:
    """The locks of one running step; :func:`current` gives the running step's guard."""

    def __init__(self, command: str) -> None:
        self.locks = HostLocks(command)

    def hold_devices(self, config: ExperimentConfig, experiment: str,
                     exclusive: bool = False) -> None:
        """Take the experiment's device locks, then the host lock (exclusive if asked)."""
        self.locks.hold_devices(device_lock_names(config), experiment)
        if exclusive:
            self.locks.own_host()
        else:
            self.locks.share_host()

    def exclusive(self) -> None:
        """From here on nothing else of llem runs on this host (until the step ends)."""
        self.locks.own_host()

    def release(self) -> None:
        self.locks.release()


_current: StepGuard | None = None


def current() -> StepGuard | None:
    """The guard of the step running in this process (None outside the CLI)."""
    return _current


@contextmanager
def guard_step(kind: str | None, argv: Sequence[str], process_wide: bool) -> Iterator[None]:
    """Run one step command under its guard; a command without a kind runs as it is.

    Args:
        kind: SHARED, MEASURING, or None for commands that are no workflow step.
        argv: The command line (after ``llem``), for the journal and lock holder text.
        process_wide: Whether this process is the command (the parent-death signal and
            the watchdog concern the whole process, so an in-process call leaves them off).
    """
    global _current
    if kind is None:
        yield
        return
    if process_wide:
        orphan.watch_ancestors()
    command = "llem " + shlex.join(argv)
    guard = StepGuard(command[:300])
    journal.record("step-start", step=argv[0] if argv else None, kind=kind, command=command)
    _current = guard
    failure: str | None = None
    try:
        if kind == SHARED:
            guard.locks.share_host()
        yield
    except BaseException as exc:
        failure = type(exc).__name__
        raise
    finally:
        guard.release()
        _current = None
        journal.record("step-end", error=failure)
