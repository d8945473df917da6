"""RAPL over a fake powercap tree: which zones count, wraparound, and why it is unavailable."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from llem.config.models import EnergyConfig
from llem.energy.base import EnergySourceUnavailable
from llem.energy.probe import probe_rapl
from llem.energy.rapl import RaplSource, unavailable_reason
from llem.energy.select import open_energy_source
from llem.errors import EnergySourceError
from tests.fakes.fake_nvml import FakeClock
from tests.fakes.fake_powercap import build_powercap


def _as_nobody(call: Callable[[], str | None]) -> str:
    """Run ``call`` in a forked child that dropped root; return what it returned."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 1
        try:
            os.close(read_fd)
            os.setgid(65534)
            os.setuid(65534)
            os.write(write_fd, str(call()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        out = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return out


def test_only_package_and_dram_are_counted(tmp_path: Path) -> None:
    build_powercap(tmp_path, packages=2, dram=True, core=True, psys=True)
    source = RaplSource(tmp_path)
    assert [(d.device_id, d.kind) for d in source.devices] == [
        ("rapl:package-0", "cpu"), ("rapl:package-0:dram", "dram"),
        ("rapl:package-1", "cpu"), ("rapl:package-1:dram", "dram"),
    ]


def test_wraparound_is_counted(tmp_path: Path) -> None:
    tree = build_powercap(tmp_path, packages=1, dram=False, energy_uj=900, max_range_uj=1000)
    clock = FakeClock()
    source = RaplSource(tmp_path, clock=clock)
    start = source.read_energy()[0].energy_j
    tree.add_energy("intel-rapl:0", 300e-6)  # 900 -> 1200 wraps to 200
    mid = source.read_energy()[0].energy_j
    tree.add_energy("intel-rapl:0", 700e-6)  # 200 -> 900, no wrap
    end = source.read_energy()[0].energy_j
    assert (mid - start) == pytest.approx(300e-6)
    assert (end - start) == pytest.approx(1000e-6)


def test_sample_reports_power_between_samples(tmp_path: Path) -> None:
    tree = build_powercap(tmp_path, packages=1, dram=False)
    clock = FakeClock()
    source = RaplSource(tmp_path, clock=clock)
    first = source.sample()[0]
    assert first.power_w is None  # no previous sample
    tree.add_energy("intel-rapl:0", 12.5)
    clock.advance(0.25)
    assert source.sample()[0].power_w == pytest.approx(50.0)


def test_absent_powercap(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert "absent" in (unavailable_reason(missing) or "")
    sel = open_energy_source(EnergyConfig(), [], environ={}, powercap_root=missing)
    assert sel.name == "none" and "no RAPL" in (sel.unavailable_reason or "")
    with pytest.raises(EnergySourceError, match=r"energy\.backend rapl: no RAPL"):
        open_energy_source(EnergyConfig(backend="rapl"), [], environ={}, powercap_root=missing)


def test_tree_without_package_zones(tmp_path: Path) -> None:
    (tmp_path / "intel-rapl").mkdir()
    assert "no package zones" in (unavailable_reason(tmp_path) or "")
    with pytest.raises(EnergySourceUnavailable):
        RaplSource(tmp_path)


def test_only_local_rank_zero_meters_the_host(tmp_path: Path) -> None:
    build_powercap(tmp_path)
    rank0 = open_energy_source(EnergyConfig(), [], rank=0, environ={}, powercap_root=tmp_path)
    rank1 = open_energy_source(EnergyConfig(), [], rank=1, environ={}, powercap_root=tmp_path)
    other_node = open_energy_source(EnergyConfig(), [], rank=4, environ={"LOCAL_RANK": "0"},
                                    powercap_root=tmp_path)
    assert rank0.name == "rapl" and other_node.name == "rapl"
    assert rank1.name == "none" and "local rank 0" in (rank1.unavailable_reason or "")


def test_gpu_run_never_falls_back_to_rapl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.fake_nvml import NVML_ERROR_LIBRARY_NOT_FOUND
    from tests.fakes.install import install_fake_nvml

    build_powercap(tmp_path)
    install_fake_nvml(monkeypatch, [], init_error=NVML_ERROR_LIBRARY_NOT_FOUND)
    sel = open_energy_source(EnergyConfig(), [0], environ={}, powercap_root=tmp_path)
    assert sel.name == "none" and "NVIDIA" in (sel.unavailable_reason or "")


def test_probe_lists_zones(tmp_path: Path) -> None:
    build_powercap(tmp_path, psys=True)
    report = probe_rapl(tmp_path)
    assert report.available
    text = "\n".join(report.details)
    assert "intel-rapl:0: package-0, readable, counted" in text
    assert "core, readable, not added" in text and "psys, readable, not added" in text


def test_root_only_energy_files_are_reported(tmp_path: Path) -> None:
    """energy_uj readable by root only: checked as an unprivileged user."""
    root = Path(tempfile.mkdtemp(prefix="llem-powercap-"))
    try:
        os.chmod(root, 0o755)
        build_powercap(root, packages=1)
        for f in root.glob("intel-rapl:*/energy_uj"):
            f.chmod(0o400)
        if os.geteuid() != 0:
            reason = unavailable_reason(root)
        else:  # root reads anything: ask as "nobody" in a forked child
            reason = _as_nobody(lambda: unavailable_reason(root))
        assert reason and "root only" in reason
    finally:
        shutil.rmtree(root)
