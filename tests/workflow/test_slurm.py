"""A real one-node SLURM: a small campaign through `snakemake --executor slurm`.

Each test starts munged, slurmctld and slurmd itself (tests/slurm/start.sh: one node, one
fake GPU through gres, accounting off), runs a campaign on the tiny model with the workflow's
SLURM profile, checks every result and the store, and stops exactly the daemons it started,
by PID: two experiments into the default DuckDB file store, and one into a DuckLake store
named with ``--config store=URL`` (its catalog in the test PostgreSQL). They need root
(slurmd does) and the Debian packages slurm-wlm and munge.
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


def _run_on_slurm(tmp_path: Path, slurm_conf: Path, batch_sizes: list[int],
                  *config: str) -> tuple[Path, list[str], str]:
    """Run the campaign ``onslurm`` (one experiment per batch size) through the SLURM
    executor; returns the working folder, the experiment names and Snakemake's output."""
    from llem.inference.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "Hello there"}\n{"text": "Count to ten"}\n')
    defaults = tiny_defaults(model_dir, prompts)
    defaults["device"] = "auto"  # asks for a GPU: the node's fake gres GPU is allocated
    data = {"campaign": "onslurm", "run_id": "run1", "defaults": defaults,
            "sweep": {"batching.batch_size": batch_sizes}}
    configfile = write_campaign(tmp_path / "campaign.yaml", data)
    workdir = tmp_path / "work"
    workdir.mkdir()

    env = {**os.environ, "SLURM_CONF": str(slurm_conf), "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--workflow-profile", str(REPO / "profiles/slurm"),
        "--configfile", str(configfile),
        # This cluster has no accounting: no account to guess, job states from squeue.
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
    ]
    if config:
        command += ["--config", *config]
    proc = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=900, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:] + _logs(slurm_conf.parent)
    assert "submitted with SLURM jobid" in out
    return workdir, [f"exp_batch_size-{size}" for size in batch_sizes], out


def _check_results(workdir: Path, names: list[str]) -> None:
    """Each experiment's result is complete and was measured inside a SLURM allocation."""
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


def test_campaign_runs_on_slurm(tmp_path: Path, slurm_cluster: Path) -> None:
    workdir, names, _ = _run_on_slurm(tmp_path, slurm_cluster, [1, 2])

    _check_results(workdir, names)
    assert store_experiments(workdir / "results/llem.duckdb") == [
        f"onslurm/run1/{n}" for n in names
    ]


def test_campaign_on_slurm_ingests_into_a_ducklake_store(
        tmp_path: Path, slurm_cluster: Path, lake_store: str) -> None:
    # One experiment keeps it short; the store is set as users set it, on the command line.
    workdir, names, _ = _run_on_slurm(tmp_path, slurm_cluster, [1], f"store={lake_store}")

    _check_results(workdir, names)
    assert not (workdir / "results/llem.duckdb").exists()
    listing = _llem("results", "list", "--store", lake_store, "--campaign", "onslurm",
                    "--format", "json")
    assert sorted(row["batch_size"] for row in listing) == [1]
    stored = _llem("query", "--store", lake_store, "--format", "json",
                   "SELECT experiment_id FROM results ORDER BY experiment_id")
    assert stored == [{"experiment_id": f"onslurm/run1/{n}"} for n in names]
    receipt = json.loads((workdir / receipt_path("onslurm", "run1")).read_text())
    [batch] = _llem("store", "history", "--store", lake_store, "--format", "json")
    assert batch["batch_id"] == receipt["batch_id"] and batch["snapshot_id"] is not None


def _llem(*args: str) -> list[dict]:
    """The JSON rows a store command prints."""
    done = subprocess.run([sys.executable, "-m", "llem", *args], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
