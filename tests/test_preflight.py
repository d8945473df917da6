"""Pre-flight (`llem doctor --configfile`, and the start of `llem run`) on this host.

Device decisions and the energy source are the real ones of this machine; RAPL is also
checked against a fake powercap tree, so a CPU run's source is named where RAPL is readable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llem.measure.devices import visible_cuda_device_count
from llem.preflight import preflight
from llem.workflow import plan_campaign, plan_campaign_file
from tests.fakes.fake_powercap import build_powercap

NO_GPU = visible_cuda_device_count() == 0
needs_gpu_less_host = pytest.mark.skipif(not NO_GPU, reason="this host has a visible GPU")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from llem.inference.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny model")


def llem(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "llem", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@needs_gpu_less_host
def test_doctor_reports_cuda_and_nvml_asked_for_on_a_host_without_them(
        tmp_path: Path, tiny_model: Path) -> None:
    configfile = write(tmp_path / "gpu.yaml", {
        "campaign": "gpu",
        "defaults": {"model_name": str(tiny_model)},
        "experiments": [{"config_name": "on_cuda", "device": "cuda"},
                        {"config_name": "nvml_on_cpu", "device": "cpu",
                         "energy": {"backend": "nvml"}}],
    })
    proc = llem(tmp_path, "doctor", "--configfile", str(configfile))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = proc.stdout.split("The campaign cannot run here as configured:", 1)[1]
    assert "on_cuda: device: device 'cuda' asks for GPU cuda:0, but no GPU is visible" in problems
    assert "nvml_on_cpu: energy: cannot be used here: energy.backend nvml" in problems
    # The machine report comes first, as in a plain `llem doctor`.
    assert proc.stdout.startswith("What this machine can measure:")


def test_doctor_names_device_and_energy_source_per_experiment(
        tmp_path: Path, tiny_model: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"text": "Hello"}) + "\n")
    configfile = write(tmp_path / "good.yaml", {
        "campaign": "good",
        "defaults": {"model_name": str(tiny_model), "device": "cpu",
                     "prompts": {"source": "jsonl", "path": str(prompts), "num_prompts": 2}},
        "experiments": [{"config_name": "measured"},
                        {"config_name": "estimated",
                         "energy": {"backend": "estimate", "cpu_tdp_w": 65.0}}],
    })
    proc = llem(tmp_path, "doctor", "--configfile", str(configfile))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout.split("Pre-flight of campaign good, run run1 (2 experiments)", 1)[1]
    measured = text.split("  measured:\n", 1)[1].split("  estimated:\n", 1)[0]
    estimated = text.split("  estimated:\n", 1)[1]
    for section in (measured, estimated):
        assert "device:  cpu (device: cpu)" in section
        assert f"model:   local folder {tiny_model}" in section
        assert f"prompts: jsonl:{prompts}, 2 prompts" in section
    assert "energy:  estimate (energy.backend estimate" in estimated
    assert "energy:  " in measured and "energy.backend auto" in measured
    assert "PROBLEM" not in proc.stdout


def test_auto_energy_of_a_cpu_run_is_rapl_where_rapl_is_readable(
        tmp_path: Path, tiny_model: Path) -> None:
    build_powercap(tmp_path / "powercap")
    plan = plan_campaign({"campaign": "c", "defaults": {"model_name": str(tiny_model),
                                                        "device": "cpu"}})
    absent = preflight(plan, powercap_root=tmp_path / "absent")
    readable = preflight(plan, powercap_root=tmp_path / "powercap")
    absent_energy, readable_energy = (
        next(c for c in report.experiments["exp"] if c.subject == "energy")
        for report in (absent, readable))
    assert readable_energy.text.startswith("rapl (energy.backend auto; meters rapl:")
    assert absent_energy.text.startswith("none, energy figures will be null")
    assert not absent.problems and not readable.problems  # auto: null energy is no failure
    rapl_plan = plan_campaign({"campaign": "c", "defaults": {
        "model_name": str(tiny_model), "device": "cpu", "energy": {"backend": "rapl"}}})
    assert preflight(rapl_plan, powercap_root=tmp_path / "powercap").problems == []
    assert "energy: cannot be used here: energy.backend rapl" in preflight(
        rapl_plan, powercap_root=tmp_path / "absent").problems[0]


def test_models_and_prompts_that_are_not_available_are_problems(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty Hugging Face cache
    missing_field = tmp_path / "prompts.jsonl"
    missing_field.write_text(json.dumps({"prompt": "Hello"}) + "\n")
    configfile = write(tmp_path / "c.yaml", {
        "campaign": "c",
        "defaults": {"device": "cpu", "model_name": "nobody/not-cached",
                     "prompts": {"source": "jsonl", "path": str(missing_field)}},
    })
    proc = llem(tmp_path, "doctor", "--configfile", str(configfile))
    assert proc.returncode == 1
    problems = proc.stdout.split("The campaign cannot run here as configured:", 1)[1]
    assert ("exp: model: nobody/not-cached is not available: not in the Hugging Face cache "
            "and downloads are off (HF_HUB_OFFLINE)") in problems
    assert "exp: prompts: " in problems and "'text'" in problems


def test_slurm_profile_account_and_partition(tmp_path: Path, tiny_model: Path) -> None:
    plan = plan_campaign({"campaign": "c", "defaults": {"model_name": str(tiny_model),
                                                        "device": "cuda"}})
    root = tmp_path / "checkout"
    (root / "profiles" / "slurm").mkdir(parents=True)
    profile = root / "profiles" / "slurm" / "config.yaml"
    profile.write_text("executor: slurm\njobs: 5\n")
    unset = preflight(plan, profile="slurm", workflow_root=root)
    slurm = [c.text for c in unset.campaign_checks if c.subject == "slurm"]
    assert any(t.startswith("account not set in") for t in slurm)
    assert any(t.startswith("partition not set in") for t in slurm)
    # On SLURM, this host's lack of a GPU says nothing about the nodes the jobs run on.
    assert not any("device" in p for p in unset.problems)
    profile.write_text("executor: slurm\nslurm-account: proj42\n"
                       "default-resources:\n  - slurm_partition=gpu\n  - mem_mb=2000\n")
    checks = preflight(plan, profile="slurm", workflow_root=root).campaign_checks
    texts = [c.text for c in checks]
    assert f"account proj42 ({profile})" in texts
    assert f"partition gpu ({profile})" in texts


@needs_gpu_less_host
def test_llem_run_refuses_cuda_before_anything_is_written(tmp_path: Path,
                                                          tiny_model: Path) -> None:
    proc = llem(tmp_path, "run", str(tiny_model), "--device", "cuda")
    assert proc.returncode == 2
    assert "nothing was run" in proc.stderr
    assert "device 'cuda' asks for GPU cuda:0, but no GPU is visible" in proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


def test_doctor_json_carries_the_campaign_checks(tmp_path: Path, tiny_model: Path) -> None:
    configfile = write(tmp_path / "c.yaml", {"campaign": "c", "defaults": {
        "model_name": str(tiny_model), "device": "cpu"}})
    proc = llem(tmp_path, "doctor", "--json", "--configfile", str(configfile))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    subjects = [c["subject"] for c in document["campaign"]["experiments"]["exp"]]
    assert subjects == ["device", "energy", "model", "prompts"]
    assert {s["name"] for s in document["sources"]} == {"nvml", "rapl"}
    assert plan_campaign_file(configfile).campaign == document["campaign"]["campaign"]


def test_a_lake_store_is_checked_before_anything_is_measured(
        tmp_path: Path, tiny_model: Path, lake_store: str) -> None:
    """An unreachable catalog is a problem up front, not after hours of measuring; a
    reachable one says how much it holds."""
    base = {"campaign": "c", "defaults": {"model_name": str(tiny_model), "device": "cpu"}}
    fresh = preflight(plan_campaign({**base, "store": lake_store})).campaign_checks
    assert [(c.subject, c.problem) for c in fresh] == [("store", False)]
    assert "no store yet" in fresh[0].text
    down = lake_store.replace(lake_store.split("@")[1].split("/")[0], "127.0.0.1:9")
    configfile = write(tmp_path / "down.yaml", {**base, "store": down})
    proc = llem(tmp_path, "doctor", "--configfile", str(configfile))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    problems = proc.stdout.split("The campaign cannot run here as configured:", 1)[1]
    assert "store: " in problems and "cannot reach the store's catalog database" in problems
    assert preflight(plan_campaign({**base})).campaign_checks == []
