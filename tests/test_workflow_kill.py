"""SIGKILL in the middle of a measured window: nothing looks complete, the next run redoes it.

Snakemake and the measuring job are killed together (as a crashed node or an OOM kill of the
whole allocation would); the store must hold no result of the killed experiment, and the next
run must redo exactly that experiment.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llem.workflow import cycle_dir, result_path
from tests.test_workflow_campaign import (
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
