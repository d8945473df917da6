"""What measuring costs, and the sampler running only when something needs it.

The window API is driven on the fake NVML and a fake clock; the sampler thread is looked for
by name during a real measured run of a tiny model.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import pytest

from llem.aggregate import aggregate_processes
from llem.config.campaign import make_spec, parse_experiment
from llem.config.models import EnergyConfig
from llem.energy.select import open_energy_source
from llem.inference.loading import LoadedModel
from llem.inference.tiny import build_tiny_model
from llem.measure.run import MeasureInputs, measure
from llem.measure.sampler import THREAD_NAME
from llem.measure.window import MeasurementWindow
from llem.report.rows import row_of
from llem.report.table import write_csv
from tests.fakes.fake_nvml import FakeClock, FakeGpu, uuid
from tests.fakes.install import install_fake_nvml

T0 = 1000.0
ESTIMATE = EnergyConfig(backend="estimate", cpu_tdp_w=65.0, min_window_sec=0.0)


def test_the_window_counts_the_samplers_reads_and_cpu_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock(T0)
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0)), FakeGpu(uuid(1))], clock=clock,
                      call_latency_sec=0.001)
    sel = open_energy_source(EnergyConfig(), [0, 1], environ={}, clock=clock)
    window = MeasurementWindow(sel, sample_interval_ms=100, clock=clock, background=False,
                               min_window_sec=0.0)
    window.begin()  # the sampler's first read happens at once
    for _ in range(5):
        clock.advance(0.1)
        window.tick()
    res = window.end()
    sel.close()

    cost = res.instrumentation
    assert cost is not None
    assert cost.sampler_served == ["throttle_reasons"]  # NVML polls reason bits
    assert cost.reads == 6 and cost.sample_interval_ms == 100.0
    assert cost.mean_read_ms is not None and cost.mean_read_ms > 0
    assert cost.sampler_cpu_sec is not None and cost.sampler_cpu_sec > 0
    assert cost.process_cpu_sec is not None and cost.process_cpu_sec >= cost.sampler_cpu_sec
    assert cost.cpu_fraction == pytest.approx(cost.sampler_cpu_sec / cost.process_cpu_sec)
    assert cost.unavailable_reason is None


def test_failed_reads_are_counted_as_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(T0)
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0))], clock=clock)
    sel = open_energy_source(EnergyConfig(), [0], environ={}, clock=clock)
    assert sel.source is not None
    window = MeasurementWindow(sel, clock=clock, background=False, min_window_sec=0.0)
    window.begin()

    def broken() -> list:
        raise OSError("sensor gone")

    monkeypatch.setattr(sel.source, "sample", broken)
    window.tick()
    window.tick()
    res = window.end()
    assert res.instrumentation is not None and res.instrumentation.reads == 3
    assert any("2 sampler read(s) failed" in w for w in res.warnings)


def test_no_sampler_runs_when_nothing_needs_it_and_its_cost_is_a_measured_zero() -> None:
    sel = open_energy_source(ESTIMATE, [])
    window = MeasurementWindow(sel, keep_samples=False, phase_split=False, min_window_sec=0.0)
    window.begin()
    assert THREAD_NAME not in {t.name for t in threading.enumerate()}
    sum(i * i for i in range(20000))  # some CPU work inside the window
    res = window.end()
    cost = res.instrumentation
    assert cost is not None and cost.sampler_served == []
    assert cost.sampler_cpu_sec == 0.0 and cost.reads == 0
    assert cost.mean_read_ms is None and "no sampler ran" in (cost.unavailable_reason or "")
    assert cost.cpu_fraction == 0.0 and cost.sample_interval_ms is None
    assert res.total_energy_j is not None  # the energy is still measured at both ends

    with MeasurementWindow(sel, phase_split=True, min_window_sec=0.0) as split:
        assert THREAD_NAME in {t.name for t in threading.enumerate()}
    assert split.result is not None and split.result.instrumentation is not None
    assert split.result.instrumentation.sampler_served == ["phase_split"]
    assert split.result.instrumentation.reads >= 1


# -- a real measured run of a tiny model ------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("instrumentation") / "llama")


def _spec(tiny: Path, **overrides: Any):
    data: dict[str, Any] = {
        "config_name": "tiny", "model_name": str(tiny), "device": "cpu",
        "prompts": {"num_prompts": 4}, "batching": {"batch_size": 2},
        "decoder": {"max_output_tokens": 4, "min_output_tokens": 4},
        "energy": {"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 0.0},
        "warmup": {"enabled": False},  # every forward pass is inside the window
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value}
    return make_spec(parse_experiment(data), "camp", "run1")


def _sampler_seen(seen: list[bool]):
    """Record, at every forward pass, whether a sampler thread is alive."""

    def attach(loaded: LoadedModel) -> None:
        loaded.model.register_forward_hook(
            lambda *_: seen.append(THREAD_NAME in {t.name for t in threading.enumerate()})
        )

    return attach


def test_timeseries_off_and_no_other_need_runs_no_sampler_thread(
    tiny: Path, tmp_path: Path
) -> None:
    spec = _spec(tiny, timeseries={"enabled": False}, energy={"phase_split": False})
    seen: list[bool] = []
    raw = measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "off"),
                  log=lambda _m: None, on_loaded=_sampler_seen(seen))
    assert seen and not any(seen)
    cost = raw.instrumentation
    assert cost is not None and cost.sampler_served == [] and cost.reads == 0
    assert cost.sampler_cpu_sec == 0.0 and cost.process_cpu_sec
    assert raw.energy_metrics.total_energy_j is not None
    phases = raw.phase_energy
    assert phases is not None and phases.prefill_energy_j is None
    assert "phase_split" in (phases.unavailable_reason or "") and phases.prefill_time_sec > 0


def test_a_needed_sampler_runs_and_the_result_says_what_it_served(
    tiny: Path, tmp_path: Path
) -> None:
    spec = _spec(tiny, timeseries={"enabled": True, "sample_interval_ms": 50})
    seen: list[bool] = []
    raw = measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "on"),
                  log=lambda _m: None, on_loaded=_sampler_seen(seen))
    assert seen and all(seen)
    cost = raw.instrumentation
    assert cost is not None and cost.sampler_served == ["timeseries", "phase_split"]
    assert cost.reads >= 1 and cost.sampler_cpu_sec is not None and cost.sampler_cpu_sec > 0
    assert cost.cpu_fraction is not None and 0 < cost.cpu_fraction < 1

    # the aggregate carries it, and the report table shows it
    result = aggregate_processes([raw], spec)
    assert result.instrumentation is not None
    assert result.instrumentation.sampler_cpu_sec == cost.sampler_cpu_sec
    table = tmp_path / "table.csv"
    write_csv([row_of(result, tmp_path / "result.json")], table)
    row = next(csv.DictReader(table.open()))
    assert float(row["sampler_cpu_sec"]) == pytest.approx(cost.sampler_cpu_sec)
    assert int(row["sampler_reads"]) == cost.reads
    assert float(row["sampler_cpu_fraction"]) == pytest.approx(cost.cpu_fraction)
