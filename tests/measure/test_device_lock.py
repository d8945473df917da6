"""Host-wide locks and orphan stops, with real processes.

Two processes contend for a device lock or the host lock in a private LLEM_LOCK_DIR: the
second waits, says once who holds it, and proceeds when the first lets go; a holder killed
with SIGKILL never blocks anyone. A step whose starter is killed (the bash between them
surviving, as under Snakemake) stops at once and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.domain.experiment import RawProcessResult
from llem.measure.device_lock import (
    CPU_PACKAGE,
    HostLocks,
    device_lock_names,
    lock_dir,
    lock_file_name,
)
from tests.fakes.fake_nvml import FakeGpu
from tests.fakes.install import install_fake_nvml


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event of an event journal (LLEM_EVENT_LOG), in the order written."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


REPO = Path(__file__).resolve().parents[2]

# Takes one lock, says so in a file, holds it until a release file appears.
HOLDER = """
import sys, time
from pathlib import Path
from llem.measure.device_lock import HostLocks
mode, name, experiment, acquired, release = sys.argv[1:6]
locks = HostLocks("test-holder " + experiment)
if mode == "device":
    locks.hold_devices([name], experiment)
elif mode == "shared":
    locks.share_host()
else:
    locks.own_host()
Path(acquired).write_text("acquired")
while not Path(release).exists():
    time.sleep(0.02)
locks.release()
"""


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "LLEM_LOCK_DIR": str(tmp_path / "locks"),
            "LLEM_EVENT_LOG": str(tmp_path / "events.jsonl"),
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


class Holder:
    """A process holding (or waiting for) one lock, steered through files."""

    def __init__(self, tmp_path: Path, tag: str, mode: str, name: str = "GPU-test") -> None:
        self.acquired = tmp_path / f"{tag}.acquired"
        self.release_file = tmp_path / f"{tag}.release"
        self.stderr_path = tmp_path / f"{tag}.stderr"
        with self.stderr_path.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", HOLDER, mode, name, f"exp-{tag}", str(self.acquired),
                 str(self.release_file)],
                env=_env(tmp_path), stderr=err)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def release(self) -> None:
        self.release_file.write_text("go")
        assert self.proc.wait(timeout=60) == 0, self.stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)


def _until(condition: Callable[[], bool], what: str, timeout_sec: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_sec
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _lock_events(tmp_path: Path) -> list[tuple[int, str, str]]:
    """(pid, event, mode) of every lock event, in the order they happened."""
    return [(e["pid"], e["event"], e.get("mode")) for e in read_events(tmp_path / "events.jsonl")
            if e["event"].startswith("lock-") and e.get("lock") in ("device GPU-test", "host")]


def test_second_holder_waits_says_once_who_holds_it_and_proceeds_after(tmp_path: Path) -> None:
    first = Holder(tmp_path, "a", "device")
    second = None
    try:
        _until(first.acquired.exists, "the first holder has the lock")
        second = Holder(tmp_path, "b", "device")
        _until(lambda: "waiting for" in second.stderr, "the second says it waits")
        assert not second.acquired.exists()  # still waiting while the first holds it
        line = second.stderr.strip()
        assert f"held by pid {first.proc.pid} " in line
        assert "test-holder exp-a" in line and "experiment exp-a" in line
        first.release()
        _until(second.acquired.exists, "the second gets the lock")
        second.release()
        assert second.stderr.count("llem: waiting") == 1  # said once
        events = _lock_events(tmp_path)
        assert events == [
            (first.proc.pid, "lock-acquired", "exclusive"),
            (second.proc.pid, "lock-wait", "exclusive"),
            (first.proc.pid, "lock-released", "exclusive"),
            (second.proc.pid, "lock-acquired", "exclusive"),
            (second.proc.pid, "lock-released", "exclusive"),
        ]
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_lock_of_a_holder_killed_with_sigkill_never_blocks(tmp_path: Path) -> None:
    first = Holder(tmp_path, "a", "device")
    try:
        _until(first.acquired.exists, "the first holder has the lock")
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=60)
        lock_file = tmp_path / "locks" / lock_file_name("GPU-test")
        assert f'"pid": {first.proc.pid}' in lock_file.read_text()  # its text stays behind
        second = Holder(tmp_path, "b", "device")
        _until(second.acquired.exists, "the second gets the lock")
        second.release()
        assert "llem: waiting" not in second.stderr
    finally:
        first.kill()


def test_holder_text_alone_is_not_a_lock(tmp_path: Path) -> None:
    """A file claiming a live holder (this test's own pid) blocks nobody: only flock does."""
    folder = lock_dir({"LLEM_LOCK_DIR": str(tmp_path / "locks")})
    (folder / lock_file_name("GPU-test")).write_text(
        f'{{"pid": {os.getpid()}, "host": "h", "command": "forged", "since": "now"}}')
    holder = Holder(tmp_path, "a", "device")
    _until(holder.acquired.exists, "the holder gets the lock")
    holder.release()
    assert "llem: waiting" not in holder.stderr


def test_waiting_measurement_goes_before_new_jobs_and_after_running_ones(tmp_path: Path) -> None:
    """Host lock: a job runs (shared); a measurement asks for the host alone and waits for it;
    a job started after that waits for the measurement instead of slipping in before it."""
    job = Holder(tmp_path, "job", "shared")
    measurement = later = None
    try:
        _until(job.acquired.exists, "the first job runs")
        measurement = Holder(tmp_path, "measure", "exclusive")
        _until(lambda: "waiting for the host lock" in measurement.stderr, "it waits")
        assert f"pid {job.proc.pid} (" in measurement.stderr  # named from the kernel's table
        later = Holder(tmp_path, "later", "shared")
        _until(lambda: "waiting for the host lock" in later.stderr, "the later job waits")
        assert not measurement.acquired.exists() and not later.acquired.exists()
        job.release()
        _until(measurement.acquired.exists, "the measurement has the host")
        assert not later.acquired.exists()
        measurement.release()
        _until(later.acquired.exists, "the later job runs")
        later.release()
        assert measurement.stderr.count("llem: waiting") == 1, measurement.stderr
        assert later.stderr.count("llem: waiting") == 1, later.stderr
        order = [(pid, event) for pid, event, _ in _lock_events(tmp_path)
                 if event != "lock-wait"]
        assert order == [
            (job.proc.pid, "lock-acquired"), (job.proc.pid, "lock-released"),
            (measurement.proc.pid, "lock-acquired"), (measurement.proc.pid, "lock-released"),
            (later.proc.pid, "lock-acquired"), (later.proc.pid, "lock-released"),
        ]
    finally:
        for holder in (job, measurement, later):
            if holder is not None:
                holder.kill()


def test_a_symlinked_lock_file_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    from llem.errors import MeasurementError

    folder = lock_dir({"LLEM_LOCK_DIR": str(tmp_path / "locks")})
    assert folder.stat().st_mode & 0o7777 == 0o1777
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (folder / lock_file_name("GPU-x")).symlink_to(victim)
    locks = HostLocks("t", environ={"LLEM_LOCK_DIR": str(folder)})
    with pytest.raises(MeasurementError, match="symbolic link"):
        locks.hold_devices(["GPU-x"], "e")
    assert victim.read_text() == "keep me"


def _config(**overrides: object):
    data = {"config_name": "x", "model_name": "m", **overrides}
    return parse_experiment(data)


def test_device_locks_are_the_gpus_uuids_by_cuda_visible_devices_else_the_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install_fake_nvml(monkeypatch, [FakeGpu(f"GPU-{i}aaa") for i in range(4)])
    gpu = _config(device="cuda", gpus=[0, 1], num_processes=2)
    assert device_lock_names(gpu, {"CUDA_VISIBLE_DEVICES": "3,1"}) == ["GPU-1aaa", "GPU-3aaa"]
    assert device_lock_names(gpu, {}) == ["GPU-0aaa", "GPU-1aaa"]
    assert device_lock_names(_config(device="cpu"), {}) == [CPU_PACKAGE]


# A stand-in for Snakemake: starts the command through `bash -c 'set -euo pipefail; ...'`
# (a compound command, so bash stays between them), then waits.
STARTER = """
import subprocess, sys, time
subprocess.Popen(["bash", "-c", "set -euo pipefail; " + sys.argv[1]])
time.sleep(3600)
"""


def _start_under_bash(command: str, env: dict[str, str]) -> tuple[subprocess.Popen, psutil.Process]:
    """The starter process and the command's own process below its bash."""
    starter = subprocess.Popen([sys.executable, "-c", STARTER, command], env=env)

    found: list[psutil.Process] = []

    def started() -> bool:
        for child in psutil.Process(starter.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if child.name() != "bash" and "llem" in " ".join(child.cmdline()):
                    found.append(child)
        return bool(found)

    _until(started, "the step process started")
    return starter, found[0]


def _kill_starter_and_wait(starter: subprocess.Popen, step: psutil.Process) -> None:
    os.kill(starter.pid, signal.SIGKILL)
    starter.wait(timeout=60)
    try:
        step.wait(timeout=10)  # a few seconds at most: the watchdog polls every 0.25 s
    except psutil.TimeoutExpired:
        step.kill()
        pytest.fail("the step kept running after the process that started it was killed")


def test_a_guarded_step_stops_when_its_starter_is_killed(tmp_path: Path) -> None:
    """Fast: the shared host lock is held by an orphan until the watchdog stops it."""
    env = _env(tmp_path)
    # `llem aggregate` of a missing spec would end at once; hold it on the host lock instead.
    blocker = Holder(tmp_path, "block", "exclusive")
    try:
        _until(blocker.acquired.exists, "the host is held")
        log = tmp_path / "step.log"
        starter, step = _start_under_bash(
            f"{sys.executable} -m llem aggregate --spec {tmp_path}/none.json "
            f"--out {tmp_path}/result.json > {log} 2>&1", env)
        _until(lambda: "waiting for the host lock" in log.read_text(), "the step waits")
        _kill_starter_and_wait(starter, step)
        assert "is gone; stopping without writing results" in log.read_text()
        assert not (tmp_path / "result.json").exists()
        assert [e["event"] for e in read_events(tmp_path / "events.jsonl")
                if e["pid"] == step.pid] == ["step-start", "lock-wait", "orphaned"]
    finally:
        blocker.kill()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_measure_stops_when_its_starter_is_killed_and_writes_nothing(
    tmp_path: Path, processes: int,
) -> None:
    """With 2 processes, torchrun and both ranks stop too."""
    from llem.inference.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / "tiny")
    spec = make_spec(parse_experiment({
        "config_name": "long", "model_name": str(model), "device": "cpu",
        "num_processes": processes, "prompts": {"num_prompts": 2},
        "decoder": {"max_output_tokens": 4, "min_output_tokens": 4},
        "energy": {"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 120.0},
        "warmup": {"convergence_detection": False, "max_prompts": 3, "window_size": 3,
                   "min_prompts": 1},
    }), "orphan", "run1")
    spec_path = tmp_path / "spec.json"
    write_experiment_spec(spec, spec_path)
    out = tmp_path / "cycle_0"
    log = tmp_path / "measure.log"
    starter, step = _start_under_bash(
        f"{sys.executable} -m llem measure --spec {spec_path} --models-dir {tmp_path}/m "
        f"--out-dir {out} > {log} 2>&1", _env(tmp_path))
    try:
        _until(lambda: (out / "warmup.json").exists(), "the measured window begins", 180)
        below = step.children(recursive=True)  # torchrun and its ranks
        assert len(below) == (0 if processes == 1 else 1 + processes)
        _kill_starter_and_wait(starter, step)
        _, alive = psutil.wait_procs(below, timeout=15)
        for process in alive:
            process.kill()
        assert alive == [], "torchrun or a rank kept running"
    finally:
        if starter.poll() is None:
            starter.kill()
    assert "is gone; stopping without writing results" in log.read_text()
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["warmup.json"]
    events = [e["event"] for e in read_events(tmp_path / "events.jsonl") if e["pid"] == step.pid]
    assert events[-1] == "orphaned" and "step-end" not in events


# --- The event journal of a real campaign -------------------------------------------------


Process = tuple[int, int]  # (pid, journal position of its first event): pids get reused


def processes(events: list[dict[str, Any]]) -> list[Process]:
    """The process each event comes from; a ``step-start`` begins a new one for its pid."""
    current: dict[int, Process] = {}
    owners: list[Process] = []
    for index, event in enumerate(events):
        pid = event["pid"]
        if event["event"] == "step-start" or pid not in current:
            current[pid] = (pid, index)
        owners.append(current[pid])
    return owners


@dataclass(frozen=True)
class HostHold:
    """One hold of the host lock by one process: journal positions and wall times."""

    process: Process
    mode: str
    first: int
    last: int
    t_first: float
    t_last: float
    experiment: str | None


def host_holds(events: list[dict[str, Any]]) -> list[HostHold]:
    """Every hold of the host lock; an orphan's hold ends where it said it stops."""
    holds: list[HostHold] = []
    held: dict[Process, dict[str, Any]] = {}
    for index, (event, owner) in enumerate(zip(events, processes(events), strict=True)):
        kind = event["event"]
        if event.get("lock") == "host" and kind == "lock-acquired":
            assert owner not in held, f"{owner} took the host lock twice"
            held[owner] = {**event, "index": index}
        elif owner in held and (kind == "orphaned" or
                                (event.get("lock") == "host" and kind == "lock-released")):
            start = held.pop(owner)
            holds.append(HostHold(owner, start["mode"], start["index"], index, start["t"],
                                  event["t"], start.get("experiment")))
    assert not held, f"processes ended holding the host lock unannounced: {sorted(held)}"
    return holds


def steps(events: list[dict[str, Any]]) -> dict[Process, dict[str, Any]]:
    """Per step process: its command line and how it ended (ok, error or orphaned)."""
    found: dict[Process, dict[str, Any]] = {}
    for event, owner in zip(events, processes(events), strict=True):
        if event["event"] == "step-start":
            found[owner] = {"command": event["command"], "step": event["step"], "ended": None}
        elif event["event"] == "step-end":
            found[owner]["ended"] = "error" if event["error"] else "ok"
        elif event["event"] == "orphaned":  # possibly before it started: no step-start
            found.setdefault(owner, {"command": None, "step": None})["ended"] = "orphaned"
    return found


def assert_measurements_alone(events: list[dict[str, Any]]) -> list[HostHold]:
    """No process holds the host lock while another holds it exclusive (journal order)."""
    holds = host_holds(events)
    by_process = steps(events)
    for alone in (h for h in holds if h.mode == "exclusive"):
        assert by_process[alone.process]["step"] in ("baseline", "measure")
        for other in holds:
            if other is not alone:
                assert other.last < alone.first or other.first > alone.last, (
                    f"{by_process[other.process]['command']} ran beside "
                    f"{by_process[alone.process]['command']}")
    return holds


def window_holder(raw_path: Path, holds: list[HostHold]) -> HostHold:
    """The exclusive host hold inside which a raw result's measured window lies."""
    raw = RawProcessResult.model_validate_json(raw_path.read_text())
    start, end = raw.timestamps.start.timestamp(), raw.timestamps.end.timestamp()
    inside = [h for h in holds if h.mode == "exclusive" and h.experiment == raw.experiment_id
              and h.t_first <= start <= end <= h.t_last]
    assert len(inside) == 1, f"{raw_path}: its window lies in no exclusive hold of its own"
    return inside[0]


@pytest.mark.slow
def test_no_job_runs_beside_a_baseline_or_measured_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 2-experiment campaign (--cores 2) and, at the same time, a second Snakemake instance
    with another campaign on the same host: every job's hold of the host lock is read from
    the event journal, and none overlaps a baseline's or a measured window's."""
    from concurrent.futures import ThreadPoolExecutor

    from llem.inference.tiny import build_tiny_model
    from tests.workflow.test_campaign import check, snakemake, tiny_defaults, write_campaign

    model_dir = build_tiny_model(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "Hello there"}\n{"text": "Count to ten"}\n')
    journal_path = tmp_path / "events.jsonl"
    monkeypatch.setenv("LLEM_EVENT_LOG", str(journal_path))
    defaults = tiny_defaults(model_dir, prompts)
    campaigns = {
        "ca": [{"config_name": "a"}, {"config_name": "b", "batching": {"batch_size": 2}}],
        "cb": [{"config_name": "c"}],
    }
    runs = []
    for name, experiments in campaigns.items():
        workdir = tmp_path / name
        workdir.mkdir()
        configfile = write_campaign(tmp_path / f"{name}.yaml", {
            "campaign": name, "run_id": "run1", "defaults": defaults,
            "experiments": experiments})
        runs.append((workdir, configfile))
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda run: snakemake(run[0], "--configfile", str(run[1])), runs))
    for proc in done:
        check(proc)

    events = read_events(journal_path)
    holds = assert_measurements_alone(events)
    by_process = steps(events)
    assert all(step["ended"] == "ok" for step in by_process.values()), by_process
    for name, experiments in campaigns.items():
        ran = sorted(s["step"] for s in by_process.values()
                     if f"results/{name}/" in s["command"])
        n = len(experiments)
        assert ran == sorted(["env", "baseline", "measure", "aggregate"] * n
                             + ["ingest", "report"])
    # The model is prepared once in each working folder, from its model-key spec.
    prepared = [s for s in by_process.values() if s["step"] == "prepare-model"]
    assert len(prepared) == len(campaigns)
    assert all("resources/model_specs/" in s["command"] for s in prepared)
    for name, experiments in campaigns.items():
        for experiment in experiments:
            raw = tmp_path / name / f"results/{name}/run1/{experiment['config_name']}/cycle_0"
            holder = window_holder(raw / "raw" / "process_0.json", holds)
            assert by_process[holder.process]["step"] == "measure"
    # Each step process held the host lock; only baseline and measure held it alone.
    assert {h.process for h in holds} == set(by_process)


def test_a_step_whose_snakemake_is_already_gone_stops_before_it_starts(tmp_path: Path) -> None:
    """The workflow names its Snakemake process to its jobs; a job started by a shell that
    outlived Snakemake stops at its first check, though its own ancestors look alive."""
    import socket

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(gone.pid).create_time()
    gone.wait(timeout=60)
    me = psutil.Process()
    entries = {
        "gone": f"{socket.gethostname()}:{gone.pid}:{created!r}",
        "elsewhere": f"another-host:{gone.pid}:{created!r}",  # carried from another node
        "alive": f"{socket.gethostname()}:{me.pid}:{me.create_time()!r}",
    }
    results = {}
    for name, entry in entries.items():
        out = tmp_path / f"{name}.json"
        results[name] = subprocess.run(
            [sys.executable, "-m", "llem", "aggregate", "--spec", str(tmp_path / "none.json"),
             "--out", str(out)],
            env={**_env(tmp_path), "LLEM_WATCHED_PROCESSES": entry},
            capture_output=True, text=True, timeout=120, check=False)
        assert not out.exists()
    assert results["gone"].returncode == 143
    assert f"(pid {gone.pid}) is gone; stopping" in results["gone"].stderr
    # Not orphans: they get as far as the missing spec (exit 2, one line naming it).
    for name in ("elsewhere", "alive"):
        assert results[name].returncode == 2 and "none.json" in results[name].stderr
    started = [e["pid"] for e in read_events(tmp_path / "events.jsonl")
               if e["event"] == "step-start"]
    assert len(started) == 2  # the orphan stopped before its step started
