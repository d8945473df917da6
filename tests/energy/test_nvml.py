"""The NVML source and its selection, against a scripted stand-in for pynvml."""

from __future__ import annotations

import pytest

from llem.config.models import EnergyConfig
from llem.energy.select import open_energy_source
from llem.errors import EnergySourceError
from tests.fakes.fake_nvml import (
    NVML_ERROR_DRIVER_NOT_LOADED,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NO_PERMISSION,
    FakeClock,
    FakeGpu,
    uuid,
)
from tests.fakes.install import install_fake_nvml

AUTO = EnergyConfig()


def four_gpus() -> list[FakeGpu]:
    return [FakeGpu(uuid(i), power_w=100.0 + 10 * i) for i in range(4)]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (NVML_ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver"),
        (NVML_ERROR_DRIVER_NOT_LOADED, "driver not loaded"),
        (NVML_ERROR_NO_PERMISSION, "no permission"),
    ],
)
def test_init_failures_become_one_plain_reason(
    monkeypatch: pytest.MonkeyPatch, code: int, words: str
) -> None:
    install_fake_nvml(monkeypatch, four_gpus(), init_error=code)
    sel = open_energy_source(AUTO, [0], environ={})
    assert sel.source is None and sel.name == "none"
    assert words in (sel.unavailable_reason or "")
    with pytest.raises(EnergySourceError, match=f"energy.backend nvml: .*{words}"):
        open_energy_source(EnergyConfig(backend="nvml"), [0], environ={})


def test_no_gpu_found(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, [])
    sel = open_energy_source(AUTO, [0], environ={})
    assert sel.name == "none" and "no NVIDIA GPU" in (sel.unavailable_reason or "")


@pytest.mark.parametrize(
    ("cvd", "indices", "expected"),
    [
        (None, [0, 1], [0, 1]),
        ("2,3", [0, 1], [2, 3]),
        ("2,3", [1], [3]),
        (f"{uuid(3)},{uuid(0)}", [0, 1], [3, 0]),
        (uuid(2)[:15], [0], [2]),
    ],
)
def test_cuda_visible_devices_meters_the_right_physical_gpus(
    monkeypatch: pytest.MonkeyPatch, cvd: str | None, indices: list[int], expected: list[int]
) -> None:
    install_fake_nvml(monkeypatch, four_gpus())
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    with open_energy_source(AUTO, indices, environ=env) as sel:
        assert sel.name == "nvml_counter"
        assert sel.device_ids == [uuid(i) for i in expected]
        assert [d.index for d in sel.devices] == expected


def test_two_ranks_sharing_a_gpu_name_the_same_device(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, four_gpus())
    a = open_energy_source(AUTO, [0], rank=0, environ={"CUDA_VISIBLE_DEVICES": "1"})
    b = open_energy_source(AUTO, [0], rank=1, environ={"CUDA_VISIBLE_DEVICES": "1"})
    assert a.device_ids == b.device_ids == [uuid(1)]  # the aggregator dedups by device_id
    a.close()
    b.close()


def test_missing_cuda_device_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, four_gpus())
    with pytest.raises(EnergySourceError, match="CUDA device 2 does not exist"):
        open_energy_source(AUTO, [2], environ={"CUDA_VISIBLE_DEVICES": "0,1"})


def test_mig_cannot_be_metered(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = four_gpus()
    gpus[1].mig = True
    install_fake_nvml(monkeypatch, gpus)
    sel = open_energy_source(AUTO, [1], environ={})
    assert sel.name == "none" and "MIG" in (sel.unavailable_reason or "")
    sel = open_energy_source(AUTO, [0], environ={"CUDA_VISIBLE_DEVICES": "MIG-1234abcd"})
    assert sel.name == "none" and "MIG instance" in (sel.unavailable_reason or "")
    # a healthy GPU next to a MIG one is still metered
    with open_energy_source(AUTO, [0], environ={}) as ok:
        assert ok.name == "nvml_counter"


def test_gpu_without_counter_falls_back_to_power_integration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpus = four_gpus()
    gpus[2].counter_supported = False
    install_fake_nvml(monkeypatch, gpus)
    with open_energy_source(AUTO, [0, 2], environ={}) as sel:
        assert sel.name == "nvml_power_integration"
        assert sel.source is not None and sel.source.needs_regular_reads
        labels = {d.device_id: sel.source.device_source(d) for d in sel.devices}
        assert labels == {uuid(0): "nvml_counter", uuid(2): "nvml_power_integration"}
        assert any("no energy counter" in w for w in sel.warnings)


def test_nvml_is_shut_down_on_close(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install_fake_nvml(monkeypatch, four_gpus())
    sel = open_energy_source(AUTO, [0], environ={})
    assert fake.init_count == 1
    sel.close()
    sel.close()
    assert fake.init_count == 0


def test_reads_are_stamped_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(50.0)
    install_fake_nvml(monkeypatch, four_gpus(), clock=clock, call_latency_sec=0.004)
    with open_energy_source(AUTO, [0, 1, 2, 3], environ={}, clock=clock) as sel:
        assert sel.source is not None
        t0 = clock()
        readings = sel.source.read_energy()
    stamps = [r.timestamp_sec - t0 for r in readings]
    assert stamps == pytest.approx([0.002, 0.006, 0.010, 0.014])
    for r, gpu_power in zip(readings, [100, 110, 120, 130], strict=True):
        # counter origin + integral from t=0 to the read's own stamp, in J
        assert r.energy_j == pytest.approx(987_654.321 + gpu_power * r.timestamp_sec, abs=1e-3)


def test_sample_reads_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid(0), power_w=250.0, temperature_c=71.0, gpu_util_pct=93.0,
                    mem_util_pct=40.0, memory_used_mb=1234.0, reasons=[(0.0, 1e9, 0x4)])]
    install_fake_nvml(monkeypatch, gpus)
    with open_energy_source(AUTO, [0], environ={}) as sel:
        assert sel.source is not None
        (s,) = sel.source.sample()
    assert (s.power_w, s.temperature_c, s.gpu_utilization_pct, s.mem_utilization_pct) == (
        250.0, 71.0, 93.0, 40.0)
    assert s.memory_used_mb == pytest.approx(1234.0)
    assert (s.sm_clock_mhz, s.mem_clock_mhz, s.clock_event_reasons) == (1980.0, 2619.0, 0x4)
    assert s.energy_j is not None


def test_legacy_clock_event_function_is_used_when_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [FakeGpu(uuid(0), reasons=[(0.0, 1e9, 0x40)])]
    fake = install_fake_nvml(monkeypatch, gpus, legacy_reason_name_only=True)
    assert not hasattr(fake.module, "nvmlDeviceGetCurrentClocksEventReasons")
    with open_energy_source(AUTO, [0], environ={}) as sel:
        assert sel.source is not None
        assert sel.source.sample()[0].clock_event_reasons == 0x40


@pytest.mark.parametrize(
    ("indices", "cuda_uuids"),
    [([0, 0], [uuid(0), uuid(0)]), ([0, 1], [uuid(0), uuid(0)]), ([0, 0], None)],
)
def test_one_gpu_named_twice_is_metered_once(
    monkeypatch: pytest.MonkeyPatch, indices: list[int], cuda_uuids: list[str] | None
) -> None:
    clock = FakeClock()
    install_fake_nvml(monkeypatch, [FakeGpu(uuid(0), power_w=250.0), FakeGpu(uuid(1))],
                      clock=clock)
    with open_energy_source(AUTO, indices, environ={}, clock=clock,
                            cuda_uuids=cuda_uuids) as sel:
        assert sel.device_ids == [uuid(0)]
        assert sel.source is not None
        start = sel.source.read_energy()
        clock.advance(1.0)
        end = sel.source.read_energy()
    joules = sum(b.energy_j - a.energy_j for a, b in zip(start, end, strict=True))
    assert joules == pytest.approx(250.0, abs=0.01)  # one 250 W GPU over 1 s
