"""Environment collection: real here (no GPU), and with a scripted NVML."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from llem.domain.environment import (
    CPUEnvironment,
    CUDAEnvironment,
    EnvironmentMetadata,
    GPUEnvironment,
)
from llem.measure.environment import collect_environment
from tests.fakes.fake_nvml import NVML_ERROR_NOT_SUPPORTED, FakeGpu, FakeNVMLError, uuid
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


def test_unreadable_gpu_memory_is_null_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake_nvml(monkeypatch, [FakeGpu(uuid(0), name="Tesla V100-SXM2-16GB")])

    def unsupported(handle: object, version: object = None) -> None:
        raise FakeNVMLError(NVML_ERROR_NOT_SUPPORTED)

    monkeypatch.setattr(fake.module, "nvmlDeviceGetMemoryInfo", unsupported)
    env = collect_environment([0], environ={})
    assert env.gpu is not None and env.gpu.vram_total_mb is None
    assert env.summary_line.startswith("V100 | ")  # the model, and no made-up size


@pytest.mark.parametrize(
    ("name", "vram_mb", "short"),
    [
        ("NVIDIA A100-SXM4-80GB", 81920.0, "A100 80GB"),
        ("Tesla V100-SXM2-16GB", 16384.0, "V100 16GB"),
        ("NVIDIA GeForce RTX 4090", 24564.0, "RTX 4090 24GB"),
        ("NVIDIA RTX A6000", 49140.0, "RTX A6000 48GB"),
        ("NVIDIA H100 80GB HBM3", 81559.0, "H100 80GB"),
        ("NVIDIA A100 80GB PCIe", 81920.0, "A100 80GB"),
    ],
)
def test_the_summary_line_keeps_the_gpu_model(name: str, vram_mb: float, short: str) -> None:
    env = EnvironmentMetadata(
        gpu=GPUEnvironment(name=name, vram_total_mb=vram_mb),
        cuda=CUDAEnvironment(version="12.4", driver_version="550.54.15"),
        cpu=CPUEnvironment(platform="Linux"), collected_at=datetime.now(UTC),
    )
    assert env.summary_line == f"{short} | CUDA 12.4 | Driver 550.54"
