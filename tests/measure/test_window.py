"""Measured windows against scripted ground truth (fake NVML, fake powercap, fake clock)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from llem.config.models import EnergyConfig
from llem.energy.select import open_energy_source
from llem.measure.window import MeasurementWindow, WindowResult
from tests.fakes.fake_nvml import FakeClock, FakeGpu, Trace, uuid
from tests.fakes.fake_powercap import build_powercap
from tests.fakes.install import install_fake_nvml

AUTO = EnergyConfig()
T0 = 1000.0


def random_steps(seed: int, seconds: float, step_sec: float = 0.037) -> Trace:
    rng = random.Random(seed)
    n = int(seconds / step_sec) + 40
    return Trace.steps(T0 - 1.0, step_sec, [rng.uniform(60.0, 700.0) for _ in range(n)])


def run_window(window: MeasurementWindow, clock: FakeClock, seconds: float,
               tick_sec: float) -> WindowResult:
    window.begin()
    start = clock()
    k = 1
    while start + k * tick_sec < start + seconds:  # a fixed schedule, like the sampler's
        clock.advance(max(0.0, start + k * tick_sec - clock()))
        window.tick()  # its reads take fake time too
        k += 1
    clock.advance(max(0.0, start + seconds - clock()))
    return window.end()


@pytest.mark.parametrize(("seconds", "tick_sec"), [(1.0, 0.1), (10.0, 0.1), (60.0, 0.1),
                                                   (600.0, 1.0)])
def test_counter_energy_within_0_1_percent_of_ground_truth(
    monkeypatch: pytest.MonkeyPatch, seconds: float, tick_sec: float
) -> None:
    clock = FakeClock(T0)
    gpus = [FakeGpu(uuid(i), power_w=random_steps(i, seconds)) for i in range(4)]
    # every NVML call takes 1 ms of fake time: a 4-GPU sweep is not instantaneous
    install_fake_nvml(monkeypatch, gpus, clock=clock, call_latency_sec=0.001)
    sel = open_energy_source(AUTO, [0, 1, 2, 3], environ={}, clock=clock)
    window = MeasurementWindow(sel, sample_interval_ms=int(tick_sec * 1000), clock=clock,
                               background=False, min_window_sec=0.0)
    res = run_window(window, clock, seconds, tick_sec)
    sel.close()

    assert res.energy_source == "nvml_counter" and res.unavailable_reason is None
    truth_total = 0.0
    for gpu, dev, dw in zip(gpus, res.device_energy, res.device_windows, strict=True):
        assert dev.device_id == dw.device_id == gpu.uuid
        assert dw.end_sec is not None
        truth = gpu.power_w.integral(dw.start_sec, dw.end_sec)  # type: ignore[union-attr]
        assert dev.energy_j == pytest.approx(truth, rel=1e-3)
        truth_total += truth
    assert res.total_energy_j == pytest.approx(truth_total, rel=1e-3)
    assert seconds <= res.duration_sec <= seconds + tick_sec
    assert res.sample_count >= int(seconds / tick_sec) - 1


def test_power_integration_fallback_is_close_and_labelled(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    # a smooth load: ramps between levels every second
    levels = [150, 400, 650, 300, 500, 200, 600, 250, 450, 350, 550]
    trace = Trace([(T0 - 1 + i, w) for i, w in enumerate([*levels, 300])])
    gpus = [FakeGpu(uuid(0), power_w=trace, counter_supported=False),
            FakeGpu(uuid(1), power_w=trace)]
    install_fake_nvml(monkeypatch, gpus, clock=clock, call_latency_sec=0.001)
    sel = open_energy_source(AUTO, [0, 1], environ={}, clock=clock)
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    res = run_window(window, clock, 8.0, 0.1)
    sel.close()
    by_id = {d.device_id: d for d in res.device_energy}
    assert by_id[uuid(0)].source == "nvml_power_integration"
    assert by_id[uuid(1)].source == "nvml_counter"
    assert res.energy_source == "mixed"
    dw0 = res.device_windows[0]
    assert dw0.end_sec is not None
    truth = trace.integral(dw0.start_sec, dw0.end_sec)
    assert by_id[uuid(0)].energy_j == pytest.approx(truth, rel=0.01)


def test_unreadable_end_gives_null_with_reason_not_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    fake = install_fake_nvml(monkeypatch, [FakeGpu(uuid(0))], clock=clock)
    sel = open_energy_source(AUTO, [0], environ={}, clock=clock)
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    window.begin()
    clock.advance(2.0)
    fake.init_count = 0  # NVML torn down underneath: every read now fails
    res = window.end()
    assert res.total_energy_j is None
    assert "window end failed" in (res.unavailable_reason or "")
    assert [d.energy_j for d in res.device_energy] == [None]
    assert res.device_energy[0].unavailable_reason


def test_this_machine_records_null_energy_with_reason() -> None:
    """Real run here: no NVIDIA driver, no RAPL."""
    for indices, words in (([], "RAPL"), ([0], "NVIDIA")):
        sel = open_energy_source(AUTO, indices)
        if sel.source is not None:
            sel.close()
            pytest.skip("this host can measure energy")
        with MeasurementWindow(sel, min_window_sec=0.05) as window:
            time.sleep(0.06)
        res = window.result
        assert res is not None
        assert res.total_energy_j is None and res.energy_source == "none"
        assert words in (res.unavailable_reason or "")
        assert res.device_energy == [] and res.sample_count == 0
        assert res.energy_between(res.start_monotonic, res.end_monotonic) is None
        assert res.duration_sec >= 0.05 and not res.below_minimum
        mw = res.measured_window(prompt_set_repeats=3)
        assert mw.prompt_set_repeats == 3 and mw.start_time.tzinfo is not None


def test_below_minimum_warns_and_sync_runs_at_both_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0))], clock=clock)
    sel = open_energy_source(AUTO, [0], environ={}, clock=clock)
    calls: list[float] = []
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=10.0,
                               sync=lambda: calls.append(clock()))
    res = run_window(window, clock, 4.0, 0.1)
    sel.close()
    assert len(calls) == 2
    assert res.below_minimum and any("shorter than the minimum" in w for w in res.warnings)
    assert res.measured_window().below_minimum


def test_energy_between_splits_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    trace = Trace.steps(T0, 2.0, [100.0, 400.0, 100.0])
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0), power_w=trace)], clock=clock)
    sel = open_energy_source(AUTO, [0], environ={}, clock=clock)
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    res = run_window(window, clock, 6.0, 0.1)
    sel.close()
    t = res.start_monotonic
    middle = res.energy_between(t + 2.0, t + 4.0)
    assert middle == pytest.approx(trace.integral(t + 2.0, t + 4.0), rel=0.01)
    first = res.energy_between(t, t + 2.0)
    assert first is not None and res.total_energy_j is not None
    assert first + middle + (res.energy_between(t + 4.0, res.end_monotonic) or 0) == \
        pytest.approx(res.total_energy_j, rel=1e-6)
    assert res.energy_between(t - 1.0, t + 1.0) is None  # before the window: not covered


def test_background_sampler_keeps_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0)), FakeGpu(uuid(1))], clock=time.monotonic)
    sel = open_energy_source(AUTO, [0, 1], environ={})
    with MeasurementWindow(sel, sample_interval_ms=50, keep_samples=True,
                           min_window_sec=0.0) as window:
        time.sleep(0.32)
    sel.close()
    res = window.result
    assert res is not None
    # Ticks that fall behind are skipped, never bunched up: at most one per interval (plus
    # the first, at once), however busy the machine is.
    assert 1 <= res.sample_count <= res.duration_sec / 0.05 + 2
    assert len(res.samples) >= 2 * res.sample_count
    assert res.throttle is not None and not res.throttle.detected
    assert res.total_energy_j == pytest.approx(200.0 * res.duration_sec, rel=0.02)


def test_rapl_window_counts_through_wraparound(tmp_path: Path) -> None:
    max_range = 10_000_000  # 10 J: wraps quickly
    tree = build_powercap(tmp_path, packages=2, dram=True, energy_uj=9_000_000,
                          max_range_uj=max_range)
    clock = FakeClock(T0)
    sel = open_energy_source(AUTO, [], environ={}, powercap_root=tmp_path, clock=clock)
    assert sel.name == "rapl"
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    window.begin()
    for _ in range(5):  # 5 x 4 J on package-0: wraps twice
        tree.add_energy("intel-rapl:0", 4.0)
        tree.add_energy("intel-rapl:0:2", 1.5)
        tree.add_energy("intel-rapl:1", 2.0)
        tree.add_energy("intel-rapl:0:0", 3.0)  # core: inside the package, never added
        clock.advance(0.1)
        window.tick()
    res = window.end()
    by_id = {d.device_id: d for d in res.device_energy}
    assert set(by_id) == {"rapl:package-0", "rapl:package-0:dram", "rapl:package-1",
                          "rapl:package-1:dram"}
    assert by_id["rapl:package-0"].energy_j == pytest.approx(20.0)
    assert by_id["rapl:package-0:dram"].energy_j == pytest.approx(7.5)
    assert by_id["rapl:package-1"].energy_j == pytest.approx(10.0)
    assert by_id["rapl:package-0"].kind == "cpu" and by_id["rapl:package-0:dram"].kind == "dram"
    assert res.total_energy_j == pytest.approx(37.5)
    assert res.energy_source == "rapl" and res.throttle is None


def test_estimate_is_labelled_everywhere() -> None:
    cpu_sec = [0.0]
    sel = open_energy_source(EnergyConfig(backend="estimate", cpu_tdp_w=120.0), [])
    assert sel.source is not None
    sel.source._cpu_time = lambda: cpu_sec[0]  # type: ignore[attr-defined]
    sel.source.logical_cores = 4  # type: ignore[attr-defined]
    window = MeasurementWindow(sel, min_window_sec=0.0)
    window.begin()
    cpu_sec[0] = 2.0
    res = window.end()
    assert res.total_energy_j == pytest.approx(120.0 * 2.0 / 4)
    assert res.energy_source == "estimate"
    assert [d.source for d in res.device_energy] == ["estimate"]
    assert any("estimate" in w for w in res.warnings)
