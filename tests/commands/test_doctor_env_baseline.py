"""`llem doctor`, `llem env` and `llem baseline`, run for real on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.cli import main
from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.errors import MeasurementError
from llem.measure.devices import cuda_indices_for_config
from tests.fakes.fake_nvml import FakeGpu, uuid
from tests.fakes.install import install_fake_nvml


def test_doctor_says_what_and_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA GPUs (NVML):" in out and "RAPL" in out and "auto will use" in out
    if "unavailable: no NVIDIA driver" in out:
        assert "GPU runs: none, energy null (no NVIDIA driver" in out


def test_doctor_lists_gpus(monkeypatch: pytest.MonkeyPatch,
                           capsys: pytest.CaptureFixture[str]) -> None:
    gpus = [FakeGpu(uuid(0)), FakeGpu(uuid(1), counter_supported=False, mig=True)]
    install_fake_nvml(monkeypatch, gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,0")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"GPU 0: NVIDIA H100 80GB HBM3 {uuid(0)} | energy counter: yes" in out
    assert "MIG: on (cannot be metered)" in out and "polled power is integrated" in out
    assert "cuda:0 -> GPU 1, cuda:1 -> GPU 0" in out
    assert "clock-event reasons: readable (nvmlDeviceGetCurrentClocksEventReasons)" in out
    assert main(["doctor", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[0]["available"] and len(doc[0]["devices"]) == 2


def test_env_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_path = tmp_path / "x" / "environment.json"
    assert main(["env", "--out", str(out_path)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == str(out_path)
    doc = json.loads(out_path.read_text())
    assert doc["cpu"]["platform"] and doc["software"]["llem_version"]
    if doc["gpu"] is None:
        assert "NVIDIA" in doc["unavailable"]["gpu"]


def _spec(tmp_path: Path, required: bool, device: str = "cpu") -> Path:
    exp = parse_experiment({"config_name": "t", "model_name": "m", "device": device,
                            "baseline": {"duration_sec": 5, "required": required}})
    path = tmp_path / "spec.json"
    write_experiment_spec(make_spec(exp), path)
    return path


@pytest.mark.parametrize("required", [False, True])
def test_baseline_unavailable_here(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   required: bool) -> None:
    out = tmp_path / "baseline.json"
    rc = main(["baseline", "--spec", str(_spec(tmp_path, required)), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache")])
    doc = json.loads(out.read_text())
    if doc["method"] != "unavailable":
        pytest.skip("this host can measure energy")
    assert doc["unavailable_reason"] and doc["power_w"] is None
    err = capsys.readouterr().err
    if required:
        assert rc == 2 and "baseline required but unavailable" in err
    else:
        assert rc == 0 and "adjusted energy will be null" in err


def test_gpu_indices_from_config() -> None:
    def idx(visible: int, **kw: object) -> list[int]:
        return cuda_indices_for_config(parse_experiment({"config_name": "t", "model_name": "m",
                                                         **kw}), visible_count=visible)

    assert idx(4, device="cpu", gpus=[1]) == []
    assert idx(4, gpus=[2, 3], num_processes=2) == [2, 3]
    assert idx(4, device="cuda:1") == [1]
    assert idx(4, num_processes=2) == [0, 1]
    assert idx(4, model={"device_map": "auto"}, gpus=[1, 2]) == [1, 2]
    assert idx(0) == []  # auto on a host without GPUs: a CPU run
    assert idx(0, device="cuda") == [0]  # asked for a GPU: the energy source will say why not
    with pytest.raises(MeasurementError, match="do not exist"):
        idx(2, gpus=[3])
    with pytest.raises(MeasurementError, match="CUDA sees 2"):
        idx(2, num_processes=3)


def test_baseline_refuses_a_spec_whose_device_and_gpus_disagree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0)), FakeGpu(uuid(1))])
    exp = parse_experiment({"config_name": "t", "model_name": "m", "device": "cuda:1",
                            "gpus": [0]})
    spec = tmp_path / "spec.json"
    write_experiment_spec(make_spec(exp), spec)
    out = tmp_path / "baseline.json"
    rc = main(["baseline", "--spec", str(spec), "--out", str(out),
               "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert rc == 2 and "device 'cuda:1' names GPU 1 but gpus is [0]" in err
    assert not out.exists()  # neither GPU 0 nor GPU 1 was measured for it
