"""Time series Parquet files: columns of TimeSeriesRecord, window-relative times and energy."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llem.config.models import EnergyConfig
from llem.domain.timeseries import TimeSeriesRecord
from llem.energy.select import open_energy_source
from llem.measure.timeseries import write_timeseries
from llem.measure.window import MeasurementWindow
from tests.fakes.fake_nvml import FakeClock, FakeGpu, uuid
from tests.fakes.install import install_fake_nvml


def test_parquet_layout_and_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = FakeClock(100.0)
    gpus = [FakeGpu(uuid(0), power_w=200.0, reasons=[(101.0, 101.5, 0x40)]),
            FakeGpu(uuid(1), power_w=300.0)]
    install_fake_nvml(monkeypatch, gpus, clock=clock)
    sel = open_energy_source(EnergyConfig(), [0, 1], environ={"CUDA_VISIBLE_DEVICES": "0,1"},
                             clock=clock)
    window = MeasurementWindow(sel, clock=clock, background=False, keep_samples=True,
                               min_window_sec=0.0)
    window.begin()
    for _ in range(20):
        clock.advance(0.1)
        window.tick()
    res = window.end()
    sel.close()
    path = tmp_path / "timeseries" / "process_3.parquet"
    write_timeseries(res, path, rank=3)

    table = pq.read_table(path)
    assert table.column_names == list(TimeSeriesRecord.model_fields)
    rows = table.to_pylist()
    assert len(rows) == 2 * 21
    for row in rows:
        TimeSeriesRecord.model_validate(row)
    gpu0 = [r for r in rows if r["device_id"] == uuid(0)]
    assert gpu0[0]["t_sec"] == pytest.approx(0.0, abs=1e-6) and gpu0[0]["energy_j"] == 0.0
    assert gpu0[-1]["t_sec"] == pytest.approx(2.0)
    assert gpu0[-1]["energy_j"] == pytest.approx(400.0, abs=0.01)
    assert all(r["rank"] == 3 and r["in_window"] for r in rows)
    assert {r["device_index"] for r in rows} == {0, 1}
    throttled = [r["t_sec"] for r in gpu0 if r["clock_event_reasons"]]
    assert throttled and min(throttled) >= 1.0 - 1e-6 and max(throttled) < 1.5
    assert not list(path.parent.glob(".*.tmp"))


def test_empty_window_still_writes_the_layout(tmp_path: Path) -> None:
    sel = open_energy_source(EnergyConfig(backend="none"), [])
    with MeasurementWindow(sel, keep_samples=True, min_window_sec=0.0) as window:
        pass
    assert window.result is not None
    write_timeseries(window.result, tmp_path / "ts.parquet", rank=0)
    table = pq.read_table(tmp_path / "ts.parquet")
    assert table.num_rows == 0 and table.column_names == list(TimeSeriesRecord.model_fields)
