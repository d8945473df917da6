"""Baseline failures: a failed device read is an unavailable baseline, anything else raises."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch

from llem.config.models import BaselineConfig, EnergyConfig
from llem.domain.baseline import BaselineRecord
from llem.measure.baseline import keep_cuda_context_alive, measure_baseline
from tests.fakes.fake_nvml import FakeClock, FakeGpu, uuid
from tests.fakes.install import install_fake_nvml

T0 = 2000.0
CFG = BaselineConfig(duration_sec=10.0, cache_ttl_sec=600.0, sample_interval_ms=100)


def _measure(tmp_path: Path, clock: FakeClock, sleep: object) -> BaselineRecord:
    return measure_baseline(CFG, energy_cfg=EnergyConfig(), cuda_device_indices=[0],
                            cache_dir=tmp_path / "cache", host="node1", clock=clock,
                            sleep=sleep,  # type: ignore[arg-type]
                            wall_clock=lambda: datetime(2025, 3, 1, tzinfo=UTC),
                            keep_cuda_context=lambda idx: True)


def test_a_counter_lost_mid_baseline_makes_it_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    gpu = FakeGpu(uuid(0), power_w=70.0)
    install_fake_nvml(monkeypatch, [gpu], clock=clock)
    sleeps = 0

    def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps == 5:
            gpu.counter_supported = False  # the driver stops answering energy reads
        clock.sleep(seconds)

    rec = _measure(tmp_path, clock, sleep)
    assert rec.method == "unavailable" and rec.power_w is None
    assert (rec.unavailable_reason or "").startswith("baseline measurement failed: ")
    assert uuid(0) in (rec.unavailable_reason or "")
    assert not (tmp_path / "cache").exists()  # nothing cached


def test_an_error_outside_the_energy_source_is_not_an_unavailable_baseline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0), power_w=70.0)], clock=clock)

    def broken_sleep(seconds: float) -> None:
        raise ValueError("sleep broke")

    with pytest.raises(ValueError, match="sleep broke"):
        _measure(tmp_path, clock, broken_sleep)


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="needs a torch built without CUDA")
def test_warm_up_on_a_torch_without_cuda_keeps_no_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Claim a GPU so the warm-up runs: a CPU-only torch then raises AssertionError.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert keep_cuda_context_alive([0]) is None
