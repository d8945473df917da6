"""Host-wide locks: one measurement per device at a time, and nothing else beside a window.

Locks are ``flock``-ed files in one folder per host (``$LLEM_LOCK_DIR``, default
``/tmp/llem-locks``), so they hold between Snakemake instances and between users:

- a **device lock** per GPU (named by its UUID) and one for the CPU package (``cpu-package``,
  for experiments that run on the CPU), taken exclusive by the measuring steps;
- the **host lock** (``host.lock``): every llem step holds it shared while it runs; a
  measuring step holds it exclusive while its reads (baseline) or its warmup and measured
  window (measure) are open, so no other llem job runs on the host then.

The kernel holds a ``flock`` for an open file and drops it when the holder exits, however it
exits, so the lock of a dead process never blocks. After acquiring an exclusive lock the
holder writes who it is into the file (pid, host, user, command, experiment); a waiter shows
that text once, but only when the kernel's lock table (``/proc/locks``) confirms that pid
holds the file, else it names the pids the table shows. The text is never taken as the lock.

Deadlock rules: device locks are taken first, in sorted order, while holding no host lock;
the host lock is never waited for in shared mode by a process that wants it exclusive (it
lets its shared hold go first). A gate file (``host.gate``) gives a waiting exclusive
request priority over new shared ones, so a stream of short jobs cannot starve a measurement.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import getpass
import json
import os
import socket
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

from llem.config.models import ExperimentConfig
from llem.energy import nvml as nv
from llem.energy.base import EnergySourceUnavailable
from llem.energy.cuda_devices import select_visible, visible_devices
from llem.errors import MeasurementError
from llem.measure import journal
from llem.measure.devices import cuda_indices_for_config

LOCK_DIR_ENV = "LLEM_LOCK_DIR"
DEFAULT_LOCK_DIR = Path("/tmp/llem-locks")
CPU_PACKAGE = "cpu-package"
UNIDENTIFIED_GPUS = "gpu-unidentified"
HOST = "host"
_GATE = "host.gate"
_DIR_MODE = 0o1777  # like /tmp: every user may add lock files, none may remove another's
_FILE_MODE = 0o644
_MAX_HOLDER_TEXT = 2000

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(f"llem: {message}", file=sys.stderr, flush=True)


def lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The host's lock folder, created (mode 1777) when missing; a symlink is refused."""
    env = os.environ if environ is None else environ
    path = Path(env.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)
    try:
        path.mkdir(mode=_DIR_MODE, parents=True)
        os.chmod(path, _DIR_MODE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot create the lock folder ({exc.strerror}); "
                               f"set {LOCK_DIR_ENV} to a folder every llem job on this "
                               "host can use") from exc
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise MeasurementError(f"{path}: the lock folder is not a plain folder "
                               f"(a symbolic link or a file); set {LOCK_DIR_ENV}")
    return path


def lock_file_name(name: str) -> str:
    """File of a lock: the name with anything but [A-Za-z0-9._-] replaced."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
    return f"{safe}.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a lock, as written into its file for waiters to read."""

    command: str
    experiment: str | None = None

    def text(self) -> str:
        return json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
            "command": self.command, "experiment": self.experiment,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        })


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class FileLock:
    """One ``flock``-ed file, held shared or exclusive by this process."""

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self._fd: int | None = None
        self._writable = False
        self.mode: str | None = None

    def acquire(self, exclusive: bool, log: Log, holder: Holder | None = None,
                event: bool = True) -> bool:
        """Take the lock; when it is held elsewhere, say once who holds it, then wait.

        Returns whether it had to wait.
        """
        if self._fd is None:
            self._fd, self._writable = _open_lock_file(self.path)
        operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        mode = "exclusive" if exclusive else "shared"
        try:
            fcntl.flock(self._fd, operation | fcntl.LOCK_NB)
            waited = False
        except BlockingIOError:
            log(f"waiting for the {self.label} lock ({self.path}), {self.describe_holders()}")
            if event:
                journal.record("lock-wait", lock=self.label, mode=mode)
            fcntl.flock(self._fd, operation)
            waited = True
        self.mode = mode
        if event:
            journal.record("lock-acquired", lock=self.label, mode=mode,
                           experiment=holder.experiment if holder else None)
        if exclusive and holder is not None and self._writable:
            data = holder.text().encode("utf-8")
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
                os.pwrite(self._fd, data, 0)
        return waited

    def release(self, event: bool = True) -> None:
        """Let the lock go (logged first, so the journal never shows two holders)."""
        if self._fd is None:
            return
        if event and self.mode is not None:
            journal.record("lock-released", lock=self.label, mode=self.mode)
        os.close(self._fd)  # closing the only descriptor drops the flock
        self._fd = None
        self.mode = None

    def describe_holders(self) -> str:
        """Who holds the lock, in words: the holder text when the kernel confirms its pid."""
        assert self._fd is not None
        pids = _holder_pids(self._fd)
        claimed = _read_holder_text(self._fd)
        if claimed is not None and (pids is None or claimed.get("pid") in pids):
            parts = [f"held by pid {claimed.get('pid')} on host {claimed.get('host')}",
                     f"user {claimed.get('user')}", str(claimed.get("command"))]
            if claimed.get("experiment"):
                parts.append(f"experiment {claimed.get('experiment')}")
            parts.append(f"since {claimed.get('since')}")
            text = ", ".join(parts)
            return text if pids is not None else text + " (as its file says)"
        if not pids:
            return "held by another process"
        return "held by " + "; ".join(_describe_pid(pid) for pid in sorted(pids))


def _open_lock_file(path: Path) -> tuple[int, bool]:
    """Open (create) a lock file without following links; read-only where not writable."""
    flags = os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd, writable = os.open(path, flags | os.O_RDWR, _FILE_MODE), True
    except PermissionError:
        try:
            fd, writable = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), False
        except OSError as exc:
            raise MeasurementError(f"{path}: cannot open the lock file ({exc.strerror})") from exc
    except OSError as exc:
        reason = "a symbolic link" if exc.errno == errno.ELOOP else exc.strerror
        raise MeasurementError(f"{path}: cannot open the lock file ({reason})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MeasurementError(f"{path}: the lock file is not a regular file")
    return fd, writable


def _holder_pids(fd: int) -> set[int] | None:
    """Pids the kernel lists as holding a flock on this file; None where it cannot tell."""
    info = os.fstat(fd)
    key = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    pids: set[int] = set()
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 6 or fields[1] != "FLOCK":
            continue  # a waiter, or another kind of lock
        if fields[5] == key:
            with contextlib.suppress(ValueError):
                pids.add(int(fields[4]))
    return pids


def _read_holder_text(fd: int) -> dict[str, object] | None:
    try:
        raw = os.pread(fd, _MAX_HOLDER_TEXT, 0).decode("utf-8", "replace")
        data = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    return {k: _printable(v) for k, v in data.items() if v is not None} | {
        "pid": pid if isinstance(pid, int) else None}


def _printable(value: object) -> str:
    """A holder field as one safe line (the file is anyone's to write)."""
    text = str(value)
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def _describe_pid(pid: int) -> str:
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return f"pid {pid}"
    return f"pid {pid} ({_printable(command)})"


def device_lock_names(
    config: ExperimentConfig, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Locks for the devices an experiment uses: its GPUs' UUIDs, else the CPU package.

    GPUs that cannot be identified (NVML unreadable) share one lock, so they still never
    carry two measurements at once.
    """
    env = os.environ if environ is None else environ
    indices = cuda_indices_for_config(config)
    if not indices:
        return [CPU_PACKAGE]
    try:
        nvml = nv.load_nvml()
        nv.nvml_init(nvml)
    except EnergySourceUnavailable:
        return [UNIDENTIFIED_GPUS]
    try:
        physical = [gpu.uuid for gpu in nv.list_gpus(nvml)]
    except EnergySourceUnavailable:
        return [UNIDENTIFIED_GPUS]
    finally:
        nv.nvml_shutdown(nvml)
    value = env.get("CUDA_VISIBLE_DEVICES")
    visible, _ = visible_devices(value, physical)
    return sorted({device.uuid for device in select_visible(indices, visible, value)})


def _quiet(message: str) -> None:
    """A log for a second wait of one request (the first wait was already said)."""


class HostLocks:
    """The locks one step process holds: its devices' and the host's."""

    def __init__(self, command: str, log: Log = stderr_log,
                 environ: Mapping[str, str] | None = None) -> None:
        self.directory = lock_dir(environ)
        self.command = command
        self.log = log
        self.experiment: str | None = None
        self.devices: list[FileLock] = []
        self.host = FileLock(self.directory / lock_file_name(HOST), "host")
        self._gate = FileLock(self.directory / _GATE, "host")

    def hold_devices(self, names: list[str], experiment: str | None = None) -> None:
        """Take each device lock (sorted), holding no host lock meanwhile."""
        if self.host.mode is not None:
            raise RuntimeError("device locks are taken before the host lock")
        self.experiment = experiment
        holder = Holder(self.command, experiment)
        for name in sorted(set(names)):
            lock = FileLock(self.directory / lock_file_name(name), f"device {name}")
            lock.acquire(True, self.log, holder)
            self.devices.append(lock)

    def share_host(self) -> None:
        """Hold the host lock shared (after any exclusive request already waiting)."""
        self._through_gate(exclusive=False)

    def own_host(self) -> None:
        """Hold the host lock exclusive; a shared hold is let go first (never upgraded)."""
        if self.host.mode == "exclusive":
            return
        self.host.release()
        self._through_gate(exclusive=True)

    def release(self) -> None:
        """Let every lock go: the host first, then the devices."""
        self.host.release()
        for lock in reversed(self.devices):
            lock.release()
        self.devices = []

    def _through_gate(self, exclusive: bool) -> None:
        holder = Holder(self.command, self.experiment)
        waited = self._gate.acquire(True, self.log, holder, event=False)
        try:
            self.host.acquire(exclusive, _quiet if waited else self.log, holder)
        finally:
            self._gate.release(event=False)
