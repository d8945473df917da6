"""A real one-node SLURM: a small campaign through `snakemake --executor slurm`.

The test starts munged, slurmctld and slurmd itself (tests/slurm/start.sh: one node, one
fake GPU through gres, accounting off), runs a two-experiment campaign on the tiny model with
the workflow's SLURM profile, checks every result and the store, and stops exactly the
daemons it started, by PID. It needs root (slurmd does) and the Debian packages slurm-wlm and
munge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llem.layout import receipt_path, result_path
from llem.results.loader import load_result
from tests.workflow.test_campaign import REPO, store_experiments, tiny_defaults, write_campaign

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.slow,
    # CI sets LLEM_REQUIRE_SLURM=1 after installing SLURM, so a broken install fails there.
    pytest.mark.skipif(
        shutil.which("slurmctld") is None and os.environ.get("LLEM_REQUIRE_SLURM") != "1",
        reason="slurmctld is not installed (apt-get install slurm-wlm munge)",
    ),
]

HARNESS = REPO / "tests" / "slurm"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def slurm_cluster(tmp_path: Path):
    """A running one-node cluster; yields the SLURM_CONF path and stops the daemons after."""
    state = tmp_path / "slurm"
    start = subprocess.run([str(HARNESS / "start.sh"), str(state), str(os.cpu_count() or 1),
                            "32000"], capture_output=True, text=True, timeout=120, check=False)
    pid_files = list((state / "run").glob("*.pid")) if (state / "run").is_dir() else []
    pids = [int(p.read_text()) for p in pid_files if p.read_text().strip()]
    try:
        assert start.returncode == 0, start.stdout + start.stderr + _logs(state)
        yield state / "slurm.conf"
    finally:
        stop = subprocess.run([str(HARNESS / "stop.sh"), str(state)], capture_output=True,
                              text=True, timeout=60, check=False)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert [pid for pid in pids if _alive(pid)] == []


def _logs(state: Path) -> str:
    return "".join(
        f"\n--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(state.glob("log/*.log"))
    )


def test_campaign_runs_on_slurm(tmp_path: Path, slurm_cluster: Path) -> None:
    from llem.inference.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "Hello there"}\n{"text": "Count to ten"}\n')
    defaults = tiny_defaults(model_dir, prompts)
    defaults["device"] = "auto"  # asks for a GPU: the node's fake gres GPU is allocated
    data = {"campaign": "onslurm", "run_id": "run1", "defaults": defaults,
            "sweep": {"batching.batch_size": [1, 2]}}
    configfile = write_campaign(tmp_path / "campaign.yaml", data)
    workdir = tmp_path / "work"
    workdir.mkdir()

    env = {**os.environ, "SLURM_CONF": str(slurm_cluster), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--workflow-profile", str(REPO / "profiles/slurm"),
        "--configfile", str(configfile),
        # This cluster has no accounting: no account to guess, job states from squeue.
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
    ]
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:] + _logs(slurm_cluster.parent)
    assert "submitted with SLURM jobid" in out

    names = ["exp_batch_size-1", "exp_batch_size-2"]
    for name in names:
        result = load_result(workdir / result_path("onslurm", "run1", name))
        assert result.experiment_id == f"onslurm/run1/{name}"
        assert result.output_tokens and result.output_tokens > 0
        environment = json.loads(
            (workdir / f"results/onslurm/run1/{name}/environment.json").read_text()
        )
        # environment, baseline and measure ran inside one SLURM allocation with a GPU.
        assert environment["slurm_job_id"]
        assert environment["cuda_visible_devices"] is not None
    assert (workdir / receipt_path("onslurm", "run1")).is_file()
    assert store_experiments(workdir / "results/llem.duckdb") == [
        f"onslurm/run1/{n}" for n in names
    ]
