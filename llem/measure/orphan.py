"""Stop a step process as soon as the process that started it is gone.

Snakemake runs each job as ``bash -c '... python -m llem measure ...'``. When Snakemake itself
is killed (``kill -9``, an OOM kill), the bash between them survives, so the job keeps
measuring: a second Snakemake started to recover would measure the same experiment again while
the first one's job still runs and later writes into the new job's folder.

Two mechanisms stop such an orphan:

- the Linux parent-death signal (``prctl(PR_SET_PDEATHSIG)``): SIGTERM the moment the direct
  parent dies;
- a watchdog thread that checks, every :data:`POLL_SEC`, the ancestors the process had when it
  started: the parent and, through shells and time wrappers (bash, sh, ``timeout``...), up to
  and including the first ancestor that is none of those (Snakemake, torchrun, an
  interactive terminal). Each is known by pid and start time, so a reused pid does not count
  as alive. Children inherit the list (``LLEM_WATCHED_PROCESSES``), so a torchrun rank also
  watches the ``llem measure`` that launched torchrun and everything that one watches.

The workflow puts its Snakemake process into that list (:func:`mark_as_starter`), so a job
whose Snakemake died while the job's bash was still starting it stops at its first check,
though its own ancestors no longer lead to Snakemake. Entries name their host: a list carried
to another node (an ``sbatch`` exporting the environment) watches nothing there.

An orphan kills its own children (torchrun and its ranks), says so on stderr and in the event
journal, and exits at once with status :data:`EXIT_ORPHANED`, without running any cleanup or
write: a measured window it had open is abandoned, and nothing it would have written appears.
Its locks are released by the kernel as it exits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import psutil

from llem.measure import journal

WATCH_ENV = "LLEM_WATCHED_PROCESSES"
POLL_SEC = 0.25
EXIT_ORPHANED = 143
# Ancestors that only pass a command on: the watch goes on to their parent.
PASS_THROUGH = frozenset({"bash", "sh", "dash", "zsh", "ksh", "time", "timeout"})
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessId:
    """One process, told apart from a later one with the same pid by its start time."""

    pid: int
    create_time: float
    name: str = field(default="", compare=False)

    def alive(self) -> bool:
        """Whether this very process still runs (a zombie or a reused pid does not)."""
        try:
            process = psutil.Process(self.pid)
            return (process.create_time() == self.create_time
                    and process.status() != psutil.STATUS_ZOMBIE)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True  # it exists; another user's process

    def encode(self) -> str:
        return f"{socket.gethostname()}:{self.pid}:{self.create_time!r}"


def identify(process: psutil.Process) -> ProcessId:
    return ProcessId(process.pid, process.create_time(), process.name())


def ancestors_to_watch(process: psutil.Process | None = None) -> list[ProcessId]:
    """The parent and, through pass-through ancestors, the first ancestor that is none."""
    current = process or psutil.Process()
    watched: list[ProcessId] = []
    try:
        parent = current.parent()
        while parent is not None and parent.pid > 1:
            watched.append(identify(parent))
            if parent.name() not in PASS_THROUGH:
                break
            parent = parent.parent()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        pass
    return watched


def inherited(environ: Mapping[str, str] | None = None) -> list[ProcessId]:
    """Processes an llem ancestor watched (and that ancestor), from ``LLEM_WATCHED_PROCESSES``."""
    env = os.environ if environ is None else environ
    host = socket.gethostname()
    found: list[ProcessId] = []
    for item in env.get(WATCH_ENV, "").split(","):
        parts = item.rsplit(":", 2)
        if len(parts) != 3 or parts[0] != host:
            continue
        try:
            found.append(ProcessId(int(parts[1]), float(parts[2])))
        except ValueError:
            continue
    return found


def mark_as_starter() -> None:
    """Make llem steps started from this process (and below it) stop when it is gone.

    Replaces the inherited list: this process (Snakemake) is where the watch begins.
    """
    os.environ[WATCH_ENV] = identify(psutil.Process()).encode()


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` when the parent dies; False where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class Watchdog:
    """Polls the watched processes; calls ``on_gone`` with the first one found gone."""

    def __init__(self, watched: list[ProcessId], on_gone: Callable[[ProcessId], None],
                 poll_sec: float = POLL_SEC) -> None:
        self.watched = watched
        self._on_gone = on_gone
        self._poll_sec = poll_sec
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llem-orphan-watchdog",
                                        daemon=True)

    def first_gone(self) -> ProcessId | None:
        return next((p for p in self.watched if not p.alive()), None)

    def check(self) -> None:
        """Call ``on_gone`` now if a watched process is gone."""
        gone = self.first_gone()
        if gone is not None:
            self._on_gone(gone)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._poll_sec):
            self.check()


_active: Watchdog | None = None


def exit_orphaned(gone: ProcessId) -> None:
    """Kill this process's children, say why, and exit at once (no cleanup, no writes)."""
    try:
        for child in psutil.Process().children(recursive=True):
            try:
                child.kill()
            except psutil.Error:
                continue
    except psutil.Error:
        pass
    what = f"pid {gone.pid}" + (f" ({gone.name})" if gone.name else "")
    journal.record("orphaned", gone_pid=gone.pid)
    try:
        print(f"llem: error: the process that started this job ({what}) is gone; stopping "
              "without writing results", file=sys.stderr, flush=True)
    finally:
        os._exit(EXIT_ORPHANED)


def watch_ancestors(on_gone: Callable[[ProcessId], None] = exit_orphaned) -> Watchdog:
    """Start the parent-death signal and the watchdog for this process; export the watch list.

    Call once per process, early. The first check runs before this returns, so a process
    whose starter is already gone stops here.
    """
    global _active
    set_parent_death_signal()
    me = psutil.Process()
    watched = list(dict.fromkeys([*ancestors_to_watch(me), *inherited()]))
    os.environ[WATCH_ENV] = ",".join(p.encode() for p in [*watched, identify(me)])
    dog = Watchdog(watched, on_gone)
    _active = dog
    dog.check()
    dog.start()
    return dog


def stop_if_orphaned() -> None:
    """Check now (before writing a result): an orphan exits here instead of writing."""
    if _active is not None:
        _active.check()
