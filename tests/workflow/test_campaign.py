"""Real Snakemake runs of small campaigns on a tiny offline model.

One campaign is run once per module and then inspected: results, store, report, a re-run
that does nothing, and a config change that re-runs exactly the experiment it touches. Its
model folder, prompt file and store path carry spaces, quotes, ';' and '$(...)', so the
same run shows that no config string reaches a shell unquoted.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llem.layout import receipt_path, report_dir, result_path, spec_path
from llem.results.loader import load_result

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "it's \"odd\"; $(touch PWNED) `touch PWNED`"


def snakemake(workdir: Path, *args: str, timeout_sec: float = 600) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` (its default profile applies)."""
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir,
                          timeout=timeout_sec, check=False)


def check(proc: subprocess.CompletedProcess) -> str:
    """Output of a Snakemake run that must have succeeded (its logs shown if not)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    return out


def planned_jobs(workdir: Path, configfile: Path) -> dict[str, int]:
    """Jobs a dry run would execute, by rule (empty when nothing is to be done)."""
    out = check(snakemake(workdir, "-n", "--configfile", str(configfile)))
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:", 1)[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.MULTILINE))
    counts.pop("total", None)
    return {rule: int(n) for rule, n in counts.items()}


def tiny_defaults(model_dir: Path, prompts: Path) -> dict[str, Any]:
    """Shortest settings that still run every phase: warmup, baseline, window, time series."""
    return {
        "model_name": str(model_dir),
        "device": "cpu",
        "prompts": {"source": "jsonl", "path": str(prompts), "num_prompts": 2,
                    "max_input_tokens": 16},
        "decoder": {"max_output_tokens": 4, "min_output_tokens": 4},
        "energy": {"min_window_sec": 0.5},
        "warmup": {"convergence_detection": False, "max_prompts": 3, "window_size": 3,
                   "min_prompts": 1},
        "baseline": {"enabled": True, "duration_sec": 5.0, "sample_interval_ms": 100},
        "timeseries": {"enabled": True, "save": True, "sample_interval_ms": 100},
    }


def write_campaign(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def build_inputs(root: Path) -> tuple[Path, Path]:
    """A tiny model and a prompt file, both under folder names hostile to a shell."""
    from llem.inference.tiny import build_tiny_model

    hostile_dir = root / HOSTILE
    model_dir = build_tiny_model(hostile_dir / "tiny model")
    prompts = hostile_dir / "prompts; $(touch PWNED).jsonl"
    prompts.write_text(
        "\n".join(
            json.dumps({"text": t})
            for t in ["Hello $(touch PWNED); echo 'hi'", 'Say "cheese" `touch PWNED`']
        )
        + "\n"
    )
    return model_dir, prompts


def store_experiments(store: Path) -> list[str]:
    from llem.store.connection import open_store_read_only

    conn = open_store_read_only(store)
    try:
        return sorted(r[0] for r in conn.execute("SELECT experiment_id FROM results").fetchall())
    finally:
        conn.close()


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One campaign (experiments a and b) run to completion in a fresh working folder."""
    root = tmp_path_factory.mktemp("campaign")
    workdir = root / "work"
    workdir.mkdir()
    model_dir, prompts = build_inputs(root)
    store = f"store dir/{HOSTILE}.duckdb"
    data = {
        "campaign": "e2e",
        "run_id": "run1",
        "store": store,
        "defaults": tiny_defaults(model_dir, prompts),
        "experiments": [
            {"config_name": "a", "batching": {"batch_size": 1}},
            {"config_name": "b", "batching": {"batch_size": 2}},
        ],
    }
    configfile = write_campaign(root / "campaign.yaml", data)
    proc = snakemake(workdir, "--configfile", str(configfile))
    return {"root": root, "workdir": workdir, "configfile": configfile, "data": data,
            "store": workdir / store, "proc": proc}


@pytest.mark.slow
def test_campaign_runs_end_to_end(campaign_run: dict[str, Any]) -> None:
    check(campaign_run["proc"])
    workdir = campaign_run["workdir"]
    for exp in ("a", "b"):
        result = load_result(workdir / result_path("e2e", "run1", exp))
        assert result.experiment_id == f"e2e/run1/{exp}"
        assert result.config_hash == json.loads(
            (workdir / spec_path("e2e", "run1", exp)).read_text()
        )["config_hash"]
        assert result.output_tokens and result.output_tokens > 0
        assert (workdir / f"results/e2e/run1/{exp}/baseline.json").is_file()
        assert (workdir / f"results/e2e/run1/{exp}/cycle_0/raw/process_0.done").is_file()
        assert (workdir / f"logs/measure/e2e/run1/{exp}/cycle_0.log").is_file()
        assert (workdir / f"benchmarks/measure/e2e/run1/{exp}/cycle_0.tsv").is_file()
    assert (workdir / receipt_path("e2e", "run1")).is_file()
    assert store_experiments(campaign_run["store"]) == ["e2e/run1/a", "e2e/run1/b"]
    report = workdir / report_dir("e2e", "run1")
    assert (report / "experiments.html").is_file()
    with (report / "experiments.csv").open() as handle:
        assert [row["experiment"] for row in csv.DictReader(handle)] == ["a", "b"]
    assert sorted(p.name for p in (report / "timeseries").glob("*.png")) == ["a.png", "b.png"]


@pytest.mark.slow
def test_hostile_paths_and_prompts_execute_nothing(campaign_run: dict[str, Any]) -> None:
    check(campaign_run["proc"])
    found = [p for p in campaign_run["root"].rglob("PWNED")]
    found += [p for p in Path.cwd().glob("PWNED")]
    assert found == []


@pytest.mark.slow
def test_rerun_does_nothing_and_report_builds(campaign_run: dict[str, Any]) -> None:
    check(campaign_run["proc"])
    workdir, configfile = campaign_run["workdir"], campaign_run["configfile"]
    assert planned_jobs(workdir, configfile) == {}
    report = workdir / "report.html"
    check(snakemake(workdir, "--configfile", str(configfile), "--report", str(report)))
    text = report.read_text()
    assert "experiments.html" in text and "energy_vs_throughput.png" in text


@pytest.mark.slow
def test_config_change_reruns_exactly_the_touched_experiment(
    campaign_run: dict[str, Any],
) -> None:
    check(campaign_run["proc"])
    workdir = campaign_run["workdir"]
    data = json.loads(json.dumps(campaign_run["data"]))
    data["experiments"][1]["decoder"] = {"max_output_tokens": 5, "min_output_tokens": 5}
    configfile = write_campaign(campaign_run["root"] / "changed.yaml", data)
    result_a = workdir / result_path("e2e", "run1", "a")
    before_a = result_a.stat().st_mtime_ns

    assert planned_jobs(workdir, configfile) == {
        "environment": 1, "baseline": 1, "measure": 1, "aggregate": 1,
        "ingest": 1, "report": 1, "all": 1,
    }
    check(snakemake(workdir, "--configfile", str(configfile)))
    assert result_a.stat().st_mtime_ns == before_a
    result_b = load_result(workdir / result_path("e2e", "run1", "b"))
    assert result_b.effective_config["decoder"]["max_output_tokens"] == 5
    assert result_b.config_hash == json.loads(
        (workdir / spec_path("e2e", "run1", "b")).read_text()
    )["config_hash"]
    # The changed config is a new result beside the old one: the store never overwrites.
    assert store_experiments(campaign_run["store"]) == ["e2e/run1/a", "e2e/run1/b", "e2e/run1/b"]


@pytest.mark.slow
def test_a_finished_campaign_stays_finished_after_another_with_its_model(
    tmp_path: Path,
) -> None:
    """Two campaigns sharing a model in one folder: running the second prepares nothing and
    leaves the first with nothing to do (its measurements would otherwise be redone and
    refused at ingest under their existing ids)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    model_dir, prompts = build_inputs(tmp_path)
    defaults = tiny_defaults(model_dir, prompts)
    defaults["baseline"] = {"enabled": False}
    configs = {}
    for name, batch_size in (("first", 1), ("second", 2)):
        configs[name] = write_campaign(tmp_path / f"{name}.yaml", {
            "campaign": name, "run_id": "run1", "store": "results/llem.duckdb",
            "defaults": defaults,
            "experiments": [{"config_name": "x", "batching": {"batch_size": batch_size}}],
        })
    check(snakemake(workdir, "--configfile", str(configs["first"])))
    assert "prepare_model" not in planned_jobs(workdir, configs["second"])
    check(snakemake(workdir, "--configfile", str(configs["second"])))
    assert planned_jobs(workdir, configs["first"]) == {}
    assert planned_jobs(workdir, configs["second"]) == {}
    assert store_experiments(workdir / "results/llem.duckdb") == ["first/run1/x", "second/run1/x"]
    from llem.store.connection import open_store_read_only

    conn = open_store_read_only(workdir / "results/llem.duckdb")
    try:
        provenance = conn.execute("SELECT DISTINCT model_provenance FROM results").fetchall()
    finally:
        conn.close()
    assert provenance == [("local folder",)]


@pytest.mark.slow
def test_two_cycles_show_in_latest_results_with_positive_intervals(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    model_dir, prompts = build_inputs(tmp_path)
    defaults = tiny_defaults(model_dir, prompts)
    defaults.update(num_cycles=2, baseline={"enabled": False},
                    energy={"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 0.5})
    configfile = write_campaign(tmp_path / "cycles.yaml", {
        "campaign": "cyc", "run_id": "run1", "store": "results/llem.duckdb",
        "defaults": defaults, "experiments": [{"config_name": "x"}],
    })
    check(snakemake(workdir, "--configfile", str(configfile)))
    from llem.store.connection import open_store_read_only

    conn = open_store_read_only(workdir / "results/llem.duckdb")
    try:
        cycles = conn.execute("SELECT cycle_id FROM latest_results ORDER BY 1").fetchall()
        stats = conn.execute(
            "SELECT num_cycles, energy_ci_95_lower, energy_per_output_token_ci_95_lower, "
            "output_throughput_ci_95_lower, throughput_ci_95_lower FROM cycle_statistics"
        ).fetchall()
    finally:
        conn.close()
    assert cycles == [(0,), (1,)]
    assert len(stats) == 1 and stats[0][0] == 2
    assert all(bound is not None and bound > 0 for bound in stats[0][1:]), stats
    with (workdir / report_dir("cyc", "run1") / "experiments.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [row["cycle"] for row in table] == ["0", "1"]
    assert {row["energy_per_output_token_interval_j_n"] for row in table} == {"2"}


def test_unsafe_experiment_names_are_refused_before_any_job(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    data = {
        "campaign": "bad",
        "defaults": {"model_name": "org/model", "device": "cpu"},
        "experiments": [{"config_name": f"x; touch {marker}"}, {"config_name": "ok"}],
    }
    configfile = write_campaign(tmp_path / "bad campaign.yaml", data)
    proc = snakemake(tmp_path, "--configfile", str(configfile))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "bad campaign.yaml: experiments[0]: config_name" in out
    assert "may only contain letters, digits" in out
    assert not marker.exists()
    assert not (tmp_path / "results").exists()


def test_quiet_dry_run_plans_a_sweep_and_still_stops_on_bad_config(tmp_path: Path) -> None:
    """`snakemake -n -q`, the dry run documented for large sweeps, plans every experiment."""
    from llem.workflow import plan_campaign_file

    sweep = REPO / "config/examples/gpu_sweep.yaml"
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    check(snakemake(good, "-n", "-q", "--configfile", str(sweep)))
    plan = plan_campaign_file(sweep)
    written = sorted(p.relative_to(good) for p in good.rglob("spec.json"))
    assert written == sorted(Path(plan.spec_path(exp)) for exp in plan.experiments)
    assert len(written) > 1
    assert not list(good.rglob("result.json"))

    no_model = {"campaign": "bad", "defaults": {"device": "cpu"}}
    configfile = write_campaign(bad / "bad.yaml", no_model)
    proc = snakemake(bad, "-n", "-q", "--configfile", str(configfile))
    assert proc.returncode != 0
    assert "bad.yaml: defaults: model_name: Field required" in proc.stdout + proc.stderr


def test_lint_finds_only_environment_hints(tmp_path: Path) -> None:
    """`snakemake --lint` asks only for conda/container environments (see docs/workflow.md)."""
    proc = snakemake(tmp_path, "--lint", "--configfile", str(REPO / "config/config.yaml"))
    out = proc.stdout + proc.stderr
    rules_linted = re.findall(r"^Lints for rule (\w+)", out, flags=re.MULTILINE)
    titles = set(re.findall(r"^    \* (.+?):$", out, flags=re.MULTILINE))
    assert "measure" in rules_linted, out
    assert "Lints for snakefile" not in out, out
    assert titles == {"Specify a conda environment or container for each rule."}, out
