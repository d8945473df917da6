"""Baseline: fresh, cached, expired, other GPU, foreign refusal, an invalid baseline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llem.config.models import BaselineConfig, EnergyConfig
from llem.domain.baseline import BaselineRecord, DeviceBaseline
from llem.energy.select import open_energy_source
from llem.errors import MeasurementError
from llem.measure.baseline import (
    default_cache_dir,
    energy_breakdown,
    measure_baseline,
    read_baseline,
    write_baseline,
)
from llem.measure.window import MeasurementWindow, WindowResult
from tests.fakes.fake_nvml import FakeClock, FakeGpu, Trace, uuid
from tests.fakes.install import install_fake_nvml

T0 = 2000.0
CFG = BaselineConfig(duration_sec=10.0, cache_ttl_sec=600.0, sample_interval_ms=100)


class Wall:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = FakeClock(T0)
    gpus = [FakeGpu(uuid(0), power_w=70.0), FakeGpu(uuid(1), power_w=90.0),
            FakeGpu(uuid(2), power_w=Trace([(0, 40.0), (T0 + 5, 60.0), (T0 + 20, 40.0)]),
                    counter_supported=False)]
    install_fake_nvml(monkeypatch, gpus, clock=clock, call_latency_sec=0.0005)
    wall = Wall()
    contexts: list[list[int]] = []

    def baseline(indices: list[int], cfg: BaselineConfig = CFG) -> BaselineRecord:
        def keeper(idx: list[int]) -> bool:
            contexts.append(idx)
            return True

        return measure_baseline(cfg, energy_cfg=EnergyConfig(), cuda_device_indices=indices,
                                cache_dir=tmp_path / "cache", host="node1", clock=clock,
                                sleep=clock.sleep, wall_clock=wall, keep_cuda_context=keeper)

    return clock, wall, baseline, contexts, tmp_path


def test_fresh_then_cached_then_expired(rig) -> None:  # type: ignore[no-untyped-def]
    clock, wall, baseline, contexts, tmp_path = rig
    fresh = baseline([0, 1])
    assert fresh.method == "fresh" and fresh.cuda_context is True and contexts == [[0, 1]]
    assert fresh.power_w == pytest.approx(160.0, rel=1e-4)
    assert [d.power_w for d in fresh.devices] == pytest.approx([70.0, 90.0], rel=1e-4)
    assert 99 <= fresh.sample_count <= 100
    assert fresh.timestamp == wall.now and fresh.cache_age_sec is None
    assert len(list((tmp_path / "cache").glob("node1__GPU-*.json"))) == 2

    wall.now += timedelta(seconds=120)
    t_before = clock()
    cached = baseline([0, 1])
    assert cached.method == "cached" and clock() - t_before < 1.0  # nothing was measured
    assert cached.cache_age_sec == pytest.approx(120.0)
    assert cached.power_w == pytest.approx(fresh.power_w)
    assert cached.timestamp == fresh.timestamp

    wall.now += timedelta(seconds=CFG.cache_ttl_sec)  # now older than the TTL
    again = baseline([0, 1])
    assert again.method == "fresh" and again.timestamp == wall.now


def test_other_gpu_is_not_served_from_cache(rig) -> None:  # type: ignore[no-untyped-def]
    _clock, wall, baseline, _ctx, _ = rig
    assert baseline([0]).method == "fresh"
    wall.now += timedelta(seconds=10)
    other = baseline([1])
    assert other.method == "fresh" and other.device_ids == [uuid(1)]
    assert baseline([0, 1]).method == "cached"  # both now cached
    assert baseline([0, 2]).method == "fresh"  # GPU 2 never measured


def test_integrated_baseline_for_gpu_without_counter(rig) -> None:  # type: ignore[no-untyped-def]
    clock, _wall, baseline, _ctx, _ = rig
    rec = baseline([2])
    assert rec.devices[0].source == "nvml_power_integration"
    d = rec.devices[0]
    trace = Trace([(0, 40.0), (T0 + 5, 60.0), (T0 + 20, 40.0)])
    truth = trace.integral(clock() - d.duration_sec, clock()) / d.duration_sec
    assert d.power_w == pytest.approx(truth, rel=0.01)


def window_on(clock: FakeClock, indices: list[int], seconds: float) -> WindowResult:
    sel = open_energy_source(EnergyConfig(), indices, environ={}, clock=clock)
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    window.begin()
    clock.advance(seconds)
    res = window.end()
    sel.close()
    return res


def test_adjusted_energy_over_the_window_only(rig) -> None:  # type: ignore[no-untyped-def]
    clock, _wall, baseline, _ctx, _ = rig
    rec = baseline([0, 1])
    clock.advance(300.0)  # model load and warmup happen here: never subtracted
    res = window_on(clock, [0, 1], 20.0)
    eb = energy_breakdown(res, rec)
    assert eb is not None and res.total_energy_j is not None
    assert eb.raw_j == pytest.approx(160.0 * 20.0, rel=1e-3)
    expected = max(0.0, res.total_energy_j - sum(
        rec.power_of(dw.device_id) * dw.duration_sec  # type: ignore[operator]
        for dw in res.device_windows))
    assert eb.adjusted_j == pytest.approx(expected)
    assert eb.adjusted_j == pytest.approx(0.0, abs=0.5)  # idle window: raw ~ baseline
    assert eb.baseline_power_w == pytest.approx(160.0, rel=1e-4)
    assert eb.baseline_method == "fresh"


def test_a_baseline_above_the_measured_power_nulls_adjusted_energy(rig) -> None:  # type: ignore[no-untyped-def]
    clock, _wall, baseline, _ctx, _ = rig
    rec = baseline([0, 1])
    inflated = rec.model_copy(update={"devices": [
        rec.devices[0].model_copy(update={"power_w": 100.0}), rec.devices[1]]})
    res = window_on(clock, [0, 1], 5.0)  # GPU 0 draws 70 W: 350 J against a 500 J baseline
    eb = energy_breakdown(res, inflated)
    assert eb is not None and eb.raw_j == pytest.approx(800.0, rel=1e-2)
    assert eb.adjusted_j is None  # not 0, and not GPU 1's share alone
    reason = eb.adjusted_unavailable_reason or ""
    assert "not valid for this window" in reason and uuid(0) in reason and uuid(1) not in reason
    assert eb.baseline_power_w == pytest.approx(190.0, rel=1e-4)


def test_an_unavailable_baseline_says_why_adjusted_energy_is_null(rig) -> None:  # type: ignore[no-untyped-def]
    clock, *_ = rig
    res = window_on(clock, [0], 1.0)
    eb = energy_breakdown(res, BaselineRecord(method="unavailable", unavailable_reason="no NVML"))
    assert eb is not None and eb.adjusted_j is None
    assert "no NVML" in (eb.adjusted_unavailable_reason or "")


def test_foreign_baseline_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    clock, _wall, baseline, _ctx, _ = rig
    rec = baseline([0])
    res = window_on(clock, [1], 2.0)
    with pytest.raises(MeasurementError, match="foreign baseline"):
        rec.check_devices([uuid(1)])
    with pytest.raises(MeasurementError, match="foreign"):
        energy_breakdown(res, rec)
    rec.check_devices([uuid(0)])  # its own GPU is fine


def test_host_bound_devices_check_the_host() -> None:
    device = DeviceBaseline(device_id="rapl:package-0", kind="cpu", power_w=20.0,
                            duration_sec=30.0, source="rapl", measured_at=datetime.now(UTC),
                            host="a")
    rec = BaselineRecord(method="fresh", host="a", devices=[device], power_w=20.0)
    rec.check_devices(["rapl:package-0"], host="a")
    with pytest.raises(MeasurementError, match="host"):
        rec.check_devices(["rapl:package-0"], host="b")


def test_unavailable_here_and_required(tmp_path: Path) -> None:
    rec = measure_baseline(BaselineConfig(required=True), energy_cfg=EnergyConfig(),
                           cuda_device_indices=[], cache_dir=tmp_path)
    if rec.method != "unavailable":
        pytest.skip("this host can measure energy")
    assert rec.power_w is None and rec.unavailable_reason
    with pytest.raises(MeasurementError, match="baseline required but unavailable"):
        rec.raise_if_required()
    optional = rec.model_copy(update={"required": False})
    optional.raise_if_required()
    assert not list(tmp_path.iterdir())  # nothing cached


def test_breakdown_without_energy_or_baseline(rig) -> None:  # type: ignore[no-untyped-def]
    clock, *_ = rig
    none_window = window_on(clock, [0], 1.0)
    none_window.total_energy_j = None
    assert energy_breakdown(none_window, None) is None
    res = window_on(clock, [0], 1.0)
    unavailable = BaselineRecord(method="unavailable", unavailable_reason="x")
    eb = energy_breakdown(res, unavailable)
    assert eb is not None and eb.adjusted_j is None and eb.baseline_method == "unavailable"
    assert eb.raw_j == res.total_energy_j


def test_disabled_baseline(tmp_path: Path) -> None:
    rec = measure_baseline(BaselineConfig(enabled=False, required=True), cache_dir=tmp_path)
    assert rec.method == "unavailable" and "switched off" in (rec.unavailable_reason or "")
    rec.raise_if_required()  # switched off is not a failure


def test_write_and_read_roundtrip(rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _clock, _wall, baseline, _ctx, _ = rig
    rec = baseline([0, 1])
    write_baseline(rec, tmp_path / "out" / "baseline.json")
    back = read_baseline(tmp_path / "out" / "baseline.json")
    assert back == rec
    doc = json.loads((tmp_path / "out" / "baseline.json").read_text())
    assert doc["method"] == "fresh" and doc["timestamp"].endswith("Z")
    (tmp_path / "bad.json").write_text('{"method": "sometimes"}')
    with pytest.raises(MeasurementError, match="not a baseline record"):
        read_baseline(tmp_path / "bad.json")
    with pytest.raises(MeasurementError, match="cannot read"):
        read_baseline(tmp_path / "missing.json")


def test_default_cache_dir() -> None:
    assert default_cache_dir({"LLEM_CACHE_DIR": "/x"}) == Path("/x/baselines")
    assert default_cache_dir({}).parts[-3:] == (".cache", "llem", "baselines")
