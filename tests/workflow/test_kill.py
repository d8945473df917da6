"""SIGKILL in the middle of a campaign: nothing looks complete, the next run redoes it.

Snakemake and the measuring job are killed together (as a crashed node or an OOM kill of the
whole allocation would); the store must hold no result of the killed experiment, and the next
run must redo exactly that experiment. Snakemake alone is killed at random moments (its jobs'
shells survive it) and the README's recovery steps are followed at once: the orphaned jobs
stop by themselves, and no measured window overlaps another.
"""

from __future__ import annotations

import base64
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llem.layout import cycle_dir, result_path
from tests.workflow.test_campaign import (
    REPO,
    check,
    planned_jobs,
    snakemake,
    store_experiments,
    tiny_defaults,
    write_campaign,
)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the Snakemake process this test started and every process below it."""
    parent = psutil.Process(proc.pid)
    for process in [*parent.children(recursive=True), parent]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_sigkill_mid_measurement_leaves_nothing_complete(tmp_path: Path) -> None:
    from llem.inference.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "Hello there"}\n{"text": "Count to ten"}\n')
    workdir = tmp_path / "work"
    workdir.mkdir()
    defaults = tiny_defaults(model_dir, prompts)
    defaults["baseline"] = {"enabled": False}
    data = {"campaign": "k", "run_id": "run1", "defaults": defaults,
            "experiments": [{"config_name": "a"}]}
    check(snakemake(workdir, "--configfile", str(write_campaign(tmp_path / "one.yaml", data))))
    result_a = workdir / result_path("k", "run1", "a")
    before_a = result_a.stat().st_mtime_ns

    # Add a slow experiment b and kill everything once its measured window has begun.
    data["experiments"].append({"config_name": "b", "energy": {"min_window_sec": 8.0}})
    configfile = write_campaign(tmp_path / "two.yaml", data)
    cycle_b = workdir / cycle_dir("k", "run1", "b", 0)
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", "--configfile", str(configfile)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (cycle_b / "warmup.json").exists():
            assert proc.poll() is None, "snakemake ended before b's measurement began"
            assert time.monotonic() < deadline, "b's measurement did not begin"
            time.sleep(0.2)
        time.sleep(1.0)  # inside the measured window now
        assert proc.poll() is None
    finally:
        _kill_tree(proc)

    # Nothing of b looks complete, and the store holds only a.
    assert not (cycle_b / "raw" / "process_0.done").exists()
    assert not (cycle_b / "raw" / "process_0.json").exists()
    assert not (workdir / result_path("k", "run1", "b")).exists()
    assert store_experiments(workdir / "results/llem.duckdb") == ["k/run1/a"]

    # The next run redoes exactly b's measurement (and what depends on it).
    assert planned_jobs(workdir, configfile) == {
        "measure": 1, "aggregate": 1, "ingest": 1, "report": 1, "all": 1,
    }
    # A killed Snakemake leaves its lock behind; releasing it is the one manual step.
    check(snakemake(workdir, "--unlock", "--configfile", str(configfile)))
    check(snakemake(workdir, "--configfile", str(configfile)))
    assert (cycle_b / "raw" / "process_0.done").is_file()
    assert result_a.stat().st_mtime_ns == before_a
    assert store_experiments(workdir / "results/llem.duckdb") == ["k/run1/a", "k/run1/b"]


# Seeded moments at which Snakemake itself (only that process) is killed, one per run.
KILL_SEED = 20240611
KILLS = 3


def _incomplete_outputs(workdir: Path) -> set[str]:
    """Outputs Snakemake records as started but not finished (``.snakemake/incomplete/``,
    one file per output, named by the output path in URL-safe base64, long names split
    into '@'-prefixed folders)."""
    root = workdir / ".snakemake" / "incomplete"
    found: set[str] = set()
    for path in root.rglob("*"):
        if path.is_file() and path.name != "migration_underway":
            encoded = "".join(p.removeprefix("@") for p in path.relative_to(root).parts)
            found.add(base64.urlsafe_b64decode(encoded).decode())
    return found


def _finished_outputs(workdir: Path, experiments: list[str]) -> dict[str, tuple[int, int]]:
    """Outputs Snakemake counts as finished, with the (inode, mtime) of the file that shows it."""
    incomplete = _incomplete_outputs(workdir)
    finished: dict[str, tuple[int, int]] = {}
    for exp in experiments:
        base = f"results/k/run1/{exp}"
        for output, shown_by in [(f"{base}/environment.json", f"{base}/environment.json"),
                                 (f"{base}/baseline.json", f"{base}/baseline.json"),
                                 (f"{base}/cycle_0", f"{base}/cycle_0/raw/process_0.done"),
                                 (f"{base}/result.json", f"{base}/result.json")]:
            path = workdir / shown_by
            if (workdir / output).exists() and output not in incomplete and path.exists():
                info = path.stat()
                finished[output] = (info.st_ino, info.st_mtime_ns)
    return finished


@pytest.mark.slow
def test_readme_recovery_after_killing_snakemake_at_random_moments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kill Snakemake alone (its jobs' shells survive it), follow the README at once
    (`snakemake --unlock`, run again), a few times; then the campaign completes with no two
    measured windows overlapping, nothing of a dead job looking complete, a clean store, and
    nothing that was finished done twice."""
    from llem.inference.tiny import build_tiny_model
    from tests.measure.test_device_lock import (
        assert_measurements_alone,
        read_events,
        steps,
        window_holder,
    )

    model_dir = build_tiny_model(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "Hello there"}\n{"text": "Count to ten"}\n')
    workdir = tmp_path / "work"
    workdir.mkdir()
    journal_path = tmp_path / "events.jsonl"
    monkeypatch.setenv("LLEM_EVENT_LOG", str(journal_path))
    defaults = tiny_defaults(model_dir, prompts)
    defaults["energy"] = {"min_window_sec": 3.0}
    experiments = ["a", "b"]
    configfile = write_campaign(tmp_path / "k.yaml", {
        "campaign": "k", "run_id": "run1", "defaults": defaults,
        "experiments": [{"config_name": e} for e in experiments]})
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", "--configfile", str(configfile)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    rng = random.Random(KILL_SEED)
    finished: dict[str, tuple[int, int]] = {}
    for _ in range(KILLS):
        proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=rng.uniform(4.0, 16.0))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)  # Snakemake only: its jobs live on
            proc.wait(timeout=30)
        for output, stamp in _finished_outputs(workdir, experiments).items():
            finished.setdefault(output, stamp)
        # The README's recovery, at once: `snakemake --unlock`, then run again.
        check(snakemake(workdir, "--unlock", "--configfile", str(configfile)))
    check(snakemake(workdir, "--configfile", str(configfile)))

    events = read_events(journal_path)
    holds = assert_measurements_alone(events)  # no two windows (or a job and one) overlap
    by_process = steps(events)
    assert all(step["ended"] is not None for step in by_process.values()), by_process
    for exp in experiments:
        cycle = workdir / cycle_dir("k", "run1", exp, 0)
        assert sorted(p.name for p in (cycle / "raw").iterdir()) == [
            "process_0.done", "process_0.json"]
        # The window on disk is the one of a measure that ended well, not of an orphan.
        holder = window_holder(cycle / "raw" / "process_0.json", holds)
        assert by_process[holder.process]["step"] == "measure"
        assert by_process[holder.process]["ended"] == "ok"
    assert store_experiments(workdir / "results/llem.duckdb") == ["k/run1/a", "k/run1/b"]
    # What Snakemake had counted as finished at a kill was never done again.
    now = _finished_outputs(workdir, experiments)
    assert {output: now.get(output) for output in finished} == finished
    assert len(now) == 4 * len(experiments)
    assert planned_jobs(workdir, configfile) == {}
