"""Throttle flags and durations from scripted clock-event reason bits."""

from __future__ import annotations

import pytest

from llem.config.models import EnergyConfig
from llem.domain.metrics import ThermalThrottleInfo, throttle_reasons
from llem.energy.select import open_energy_source
from llem.measure import throttle as th
from llem.measure.window import MeasurementWindow, WindowResult
from tests.fakes.fake_nvml import FakeClock, FakeGpu, Trace, uuid
from tests.fakes.install import install_fake_nvml

T0 = 500.0


def measure(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], seconds: float = 10.0,
            **fake_kwargs: object) -> WindowResult:
    clock = FakeClock(T0)
    install_fake_nvml(monkeypatch, gpus, clock=clock, **fake_kwargs)
    sel = open_energy_source(EnergyConfig(), list(range(len(gpus))), environ={}, clock=clock)
    window = MeasurementWindow(sel, sample_interval_ms=100, clock=clock, background=False,
                               min_window_sec=0.0)
    window.begin()
    for _ in range(round(seconds / 0.1)):
        clock.advance(0.1)
        window.tick()
    res = window.end()
    sel.close()
    return res


def test_no_throttling(monkeypatch: pytest.MonkeyPatch) -> None:
    res = measure(monkeypatch, [FakeGpu(uuid(0), reasons=[(0, 1e9, th.GPU_IDLE)])])
    assert res.throttle is not None
    assert not res.throttle.detected and res.throttle.throttle_duration_sec == 0.0
    assert res.throttle.throttle_timestamps == []
    assert res.throttle.sample_count == res.sample_count


def test_hardware_thermal_counts_as_thermal(monkeypatch: pytest.MonkeyPatch) -> None:
    """The earlier tool looked at the software bit only."""
    gpu = FakeGpu(uuid(0), temperature_c=Trace([(T0, 60.0), (T0 + 5, 88.0), (T0 + 10, 70.0)]),
                  reasons=[(T0 + 2.05, T0 + 4.05, th.HW_THERMAL_SLOWDOWN | th.HW_SLOWDOWN)])
    info = measure(monkeypatch, [gpu]).throttle
    assert info is not None
    assert info.detected and info.thermal and info.hw_thermal and not info.sw_thermal
    assert not info.power
    assert info.throttle_duration_sec == pytest.approx(2.0)
    assert info.throttle_timestamps[0] == pytest.approx(2.1, abs=1e-3)  # relative, not raw
    assert info.throttle_timestamps[-1] == pytest.approx(4.0, abs=1e-3)
    assert info.max_temperature_c == pytest.approx(88.0)


def test_software_thermal_and_power_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [
        FakeGpu(uuid(0), reasons=[(T0 + 1.05, T0 + 2.05, th.SW_THERMAL_SLOWDOWN)]),
        FakeGpu(uuid(1), reasons=[(T0 + 1.55, T0 + 3.05, th.SW_POWER_CAP),
                                  (T0 + 6.05, T0 + 6.55, th.HW_POWER_BRAKE_SLOWDOWN)]),
    ]
    info = measure(monkeypatch, gpus).throttle
    assert info is not None
    assert info.thermal and info.sw_thermal and not info.hw_thermal
    assert info.power and info.hw_power and info.sw_power_cap
    # ticks where any GPU throttled: 1.1..3.0 (20 ticks) + 6.1..6.5 (5 ticks)
    assert info.throttle_duration_sec == pytest.approx(2.5)
    assert len(info.throttle_timestamps) == 25


def test_legacy_reason_function_still_detects(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(uuid(0), reasons=[(0, 1e9, th.SW_POWER_CAP)])
    res = measure(monkeypatch, [gpu], seconds=1.0, legacy_reason_name_only=True)
    info = res.throttle
    assert info is not None and info.power and info.detected
    assert info.throttle_duration_sec == pytest.approx(res.duration_sec)  # never beyond it


def test_no_reason_bits_means_no_throttle_info() -> None:
    assert th.throttle_info([], 0.0, 1.0, 0.1) is None


def test_reason_names_current_and_legacy() -> None:
    bits = th.SW_THERMAL_SLOWDOWN | th.HW_POWER_BRAKE_SLOWDOWN
    assert th.reason_names(bits) == ["nvmlClocksEventReasonSwThermalSlowdown",
                                     "nvmlClocksEventReasonHwPowerBrakeSlowdown"]
    assert th.reason_names(bits, legacy=True)[0] == "nvmlClocksThrottleReasonSwThermalSlowdown"


def test_hardware_slowdown_alone_is_throttling_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = FakeGpu(uuid(0), reasons=[(T0 + 1.05, T0 + 2.05, th.HW_SLOWDOWN)])
    info = measure(monkeypatch, [gpu]).throttle
    assert info is not None and info.detected and info.hw_slowdown
    assert not info.thermal and not info.power
    assert throttle_reasons(info) == ["hardware slowdown"]


def test_throttle_reasons_never_say_none_for_detected_throttling() -> None:
    assert throttle_reasons(None) is None
    assert throttle_reasons(ThermalThrottleInfo(sample_count=0)) is None
    assert throttle_reasons(ThermalThrottleInfo(sample_count=5)) == []
    assert throttle_reasons(ThermalThrottleInfo(detected=True, thermal=True, power=True,
                                                sample_count=5)) == ["thermal", "power"]
    # a result that records throttling but not its kind
    assert throttle_reasons(ThermalThrottleInfo(detected=True, sample_count=5)) == [
        "unspecified"]
