"""Environment collection: real here (no GPU), and with a scripted NVML."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.measure.environment import collect_environment
from tests.fakes.fake_nvml import FakeGpu, uuid
from tests.fakes.install import install_fake_nvml


def test_this_machine_never_fails_and_says_why() -> None:
    env = collect_environment()
    assert env.cpu.platform and env.collected_at.tzinfo is not None
    assert env.software is not None and env.software.llem_version
    assert env.software.python_version and env.software.torch_version
    assert env.host
    if env.gpus is None:  # no NVIDIA driver here
        assert env.gpu is None and env.cuda is None
        assert env.unavailable and "NVIDIA" in env.unavailable["gpu"]
        assert env.summary_line.startswith("no GPU")


def test_gpus_with_uuids_and_the_one_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid(i), temperature_c=30.0 + i, persistence=(i != 2)) for i in range(4)]
    gpus[1].counter_supported = False
    install_fake_nvml(monkeypatch, gpus)
    env = collect_environment([1], environ={"CUDA_VISIBLE_DEVICES": "3,2",
                                            "SLURM_JOB_ID": "4242"})
    assert env.gpus is not None and [g.uuid for g in env.gpus] == [uuid(i) for i in range(4)]
    assert [g.persistence_mode for g in env.gpus] == [True, True, False, True]
    assert [g.energy_counter_supported for g in env.gpus] == [True, False, True, True]
    assert env.gpu is not None and env.gpu.uuid == uuid(2)  # cuda:1 is physical GPU 2
    assert env.thermal.temperature_c == 32.0 and env.thermal.power_limit_w == 700.0
    assert env.thermal.fan_speed_pct is None  # not supported: null, not 0
    assert env.gpu.compute_capability == "9.0" and env.gpu.vram_total_mb == pytest.approx(81559)
    assert env.cuda is not None and env.cuda.driver_version == "550.54.15"
    assert env.slurm_job_id == "4242" and env.cuda_visible_devices == "3,2"
    assert "H100 80GB" in env.summary_line


def test_unreadable_sys_files_are_null(tmp_path: Path) -> None:
    env = collect_environment(sys_root=tmp_path)
    assert env.cpu.governor == "unknown"
    assert env.unavailable is not None and "cpu.governor" in env.unavailable
