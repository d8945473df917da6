"""`llem run` end to end: a tiny model measured by the real workflow from one command.

Each run happens in a fresh working folder. The model folder's name carries a space and
shell syntax, so the same runs show that nothing of the command line reaches a shell.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from llem.launch import campaign_name_for
from llem.layout import campaign_file_path, result_path
from tests.workflow.test_campaign import REPO, check, snakemake, store_experiments

#: Settings that keep a run short and still go through warmup and a measured window.
FAST = [
    "--set", "defaults.energy.min_window_sec=0.5",
    "--set", "defaults.baseline.enabled=false",
    "--set", "defaults.warmup={convergence_detection: false, max_prompts: 3, window_size: 3, "
             "min_prompts: 1}",
    "--set", "defaults.prompts.num_prompts=2",
    "--set", "defaults.prompts.max_input_tokens=16",
    "--cores", "2",
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from llem.inference.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("inputs")
    model = build_tiny_model(root / "tiny $(touch PWNED) model")
    prompts = root / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"text": t}) for t in ["Hello there", "Say hi"]))
    return {"model": model, "prompts": prompts}


def llem(cwd: Path, *args: str, timeout_sec: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "llem", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout_sec, check=False)


def prompts_set(prompts: Path) -> list[str]:
    return ["--set", f"defaults.prompts={{source: jsonl, path: '{prompts}', num_prompts: 2}}"]


def test_help_lists_the_commands_users_type_apart_from_the_steps() -> None:
    proc = subprocess.run([sys.executable, "-m", "llem", "--help"], capture_output=True,
                          text=True, check=True, timeout=60)
    commands, steps = proc.stdout.split("\ncommands:\n", 1)[1].split("\nworkflow steps", 1)
    listed = [line.split()[0] for line in commands.splitlines() if line.startswith("  ")
              and not line.startswith("   ")]
    assert listed == ["run", "results", "query", "store", "report", "doctor", "ingest",
                      "export", "validate"]
    step_names = [line.split()[0] for line in steps.splitlines()[1:]
                  if line.startswith("  ") and not line.startswith("   ")]
    for step in ("prepare-model", "env", "baseline", "measure", "aggregate", "schema",
                 "summary"):
        assert step in step_names
    assert not set(step_names) & set(listed)


@pytest.mark.parametrize(("override", "named"), [
    ("defaults.energy.bakend=rapl", "energy.bakend: unknown key"),
    ("defaults.decoder.max_output_tokens=many", "decoder.max_output_tokens:"),
    ("sweep.batching.batch_size=[0]", "batching.batch_size:"),
    ("defaults.decoder", "expected KEY=VALUE"),
])
def test_bad_set_is_one_line_and_nothing_runs(tmp_path: Path, inputs: dict[str, Path],
                                              override: str, named: str) -> None:
    proc = llem(tmp_path, "run", str(inputs["model"]), "--set", override)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("llem: error:")]
    assert len(errors) == 1 and named in errors[0], proc.stderr
    assert list(tmp_path.iterdir()) == []  # no campaign file, no log, no job


@pytest.mark.slow
def test_run_measures_prints_a_summary_and_leaves_a_campaign_snakemake_repeats(
        tmp_path: Path, inputs: dict[str, Path]) -> None:
    proc = llem(tmp_path, "run", str(inputs["model"]), "--batch-size", "1,2",
                "--max-output-tokens", "4", *prompts_set(inputs["prompts"]), *FAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    campaign = campaign_name_for(str(inputs["model"]))
    assert campaign == "tiny-touch-PWNED-model"
    configfile = tmp_path / campaign_file_path(campaign, "run1")
    assert f"Campaign file: {campaign_file_path(campaign, 'run1')}" in proc.stdout
    written = yaml.safe_load(configfile.read_text())
    assert written["sweep"] == {"batching.batch_size": [1, 2]}
    assert written["defaults"]["decoder"] == {"max_output_tokens": 4, "min_output_tokens": 4}

    summary = proc.stdout.split(f"Summary of campaign {campaign}, run run1 (2 experiments):")[1]
    lines = {line.split()[0]: line for line in summary.splitlines()[1:3]}
    assert set(lines) == {"exp_batch_size-1", "exp_batch_size-2"}
    for name, line in lines.items():
        result = json.loads((tmp_path / result_path(campaign, "run1", name)).read_text())
        assert f"{result['output_tokens_per_second']:.1f} output tok/s" in line
        if result["energy_per_output_token_j"] is None:
            assert f"energy not measured: {result['energy_unavailable_reason']}" in line
        else:
            assert f"{result['energy_per_output_token_j']:.3g} J/output token" in line
            assert f"({result['energy_source']})" in line
    assert "Store:  results/llem.duckdb" in summary
    assert f"Log:    logs/llem-run/{campaign}/run1.log" in summary
    assert f"llem results list --campaign {campaign}" in summary
    # The next commands the summary suggests run as printed against the store.
    next_commands = summary.split("Next:", 1)[1].splitlines()
    for line in next_commands:
        args = shlex.split(line)
        assert args[0] == "llem"
        shown = llem(tmp_path, *args[1:])
        assert shown.returncode == 0, shown.stderr
        assert "exp_batch_size-2" in shown.stdout
    assert "(2 rows)" in shown.stdout
    assert store_experiments(tmp_path / "results" / "llem.duckdb") == [
        f"{campaign}/run1/exp_batch_size-1", f"{campaign}/run1/exp_batch_size-2"]

    # Progress went to stderr: experiments done of total and the step that started.
    assert "[2/2 experiments, step 12/12] finished" in proc.stderr
    assert "measure exp_batch_size-2 cycle 0" in proc.stderr
    # Snakemake's full log is kept, and the workflow's own summary (onsuccess) in it is the
    # same text, so a plain `snakemake` run ends as `llem run` does.
    log = (tmp_path / "logs" / "llem-run" / campaign / "run1.log").read_text()
    assert "Finished jobid" in log
    for line in lines.values():
        assert line in log

    # `llem summary` (what `make run` ends with) prints the same lines for the same file.
    again = llem(tmp_path, "summary", "--configfile", str(configfile))
    assert again.returncode == 0, again.stderr
    for line in lines.values():
        assert line in again.stdout

    out = check(snakemake(tmp_path, "-n", "--configfile", str(configfile)))
    assert "Nothing to be done" in out
    assert not list(tmp_path.rglob("PWNED"))


@pytest.mark.slow
def test_estimate_over_two_cycles_shows_intervals_with_n(tmp_path: Path,
                                                         inputs: dict[str, Path]) -> None:
    proc = llem(tmp_path, "run", str(inputs["model"]), "--cycles", "2", "--energy", "estimate",
                "--max-output-tokens", "4", "--set", "defaults.energy.cpu_tdp_w=65",
                "--set", "campaign=est", *prompts_set(inputs["prompts"]), *FAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.split("Summary of campaign est, run run1 (1 experiment):\n")[1]
    line = line.splitlines()[0]
    result = json.loads((tmp_path / result_path("est", "run1", "exp_batch_size-1")).read_text())
    stats = result["statistics"]
    assert stats["num_cycles"] == 2
    energy = (f"{stats['energy_per_output_token_mean_j']:.3g} J/output token "
              f"[{stats['energy_per_output_token_ci_95_lower']:.3g}, "
              f"{stats['energy_per_output_token_ci_95_upper']:.3g}] 95% CI, n=2")
    assert energy in line
    assert "(estimate: CPU time x TDP, not a measurement)" in line
    assert "output tok/s [" in line


@pytest.mark.slow
def test_dry_run_measures_nothing(tmp_path: Path, inputs: dict[str, Path]) -> None:
    proc = llem(tmp_path, "run", str(inputs["model"]), "--batch-size", "1,2", "--dry-run",
                *FAST)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "This was a dry-run" in proc.stdout
    assert "Dry run: nothing was measured." in proc.stdout
    assert not list(tmp_path.rglob("result.json"))
    assert not list(tmp_path.rglob("llem-model.json"))
    assert not list(tmp_path.rglob("cycle_*"))
    assert not (tmp_path / "results" / "llem.duckdb").exists()


def test_workflow_files_are_found_beside_the_package() -> None:
    from llem.launch import snakemake_command

    command = snakemake_command("results/c/run1/campaign.yaml", cores="2")
    assert command[:3] == [sys.executable, "-m", "snakemake"]
    assert command[command.index("--snakefile") + 1] == str(REPO / "Snakefile")
    slurm = snakemake_command("c.yaml", profile="slurm", dry_run=True)
    assert slurm[slurm.index("--workflow-profile") + 1] == str(REPO / "profiles" / "slurm")
    assert "--cores" not in slurm and slurm[-1] == "--dry-run"
