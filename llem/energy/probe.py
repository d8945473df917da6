"""What this machine can measure, and why not, in plain words (``llem doctor``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llem.energy import nvml as nv
from llem.energy.base import DeviceInfo, SourceReport
from llem.energy.cuda_devices import visible_devices
from llem.energy.rapl import DEFAULT_POWERCAP_ROOT, scan_zones, unavailable_reason
from llem.errors import EnergySourceError


def probe_nvml(environ: Mapping[str, str] | None = None) -> SourceReport:
    """NVIDIA GPUs: count, UUIDs, counter support, MIG, persistence, readable sensors."""
    env = os.environ if environ is None else environ
    report = SourceReport(name="nvml", available=False)
    try:
        nvml = nv.load_nvml()
        nv.nvml_init(nvml)
    except EnergySourceError as exc:
        report.reason = getattr(exc, "reason", None) or str(exc)
        return report
    try:
        gpus = nv.list_gpus(nvml)
        driver = _ask(nvml, lambda: nv.nvml_text(nvml.nvmlSystemGetDriverVersion()))
        report.details.append(f"driver {driver or 'version unreadable'}, {len(gpus)} GPU(s)")
        if not gpus:
            report.reason = "NVML found no NVIDIA GPU"
            return report
        for g in gpus:
            h = g.handle
            power = _ask(nvml, lambda h=h: nvml.nvmlDeviceGetPowerUsage(h))
            persistence = _ask(nvml, lambda h=h: nvml.nvmlDeviceGetPersistenceMode(h))
            reasons = "unreadable"
            for fn_name in nv.CLOCK_EVENT_FUNCTIONS:
                fn = getattr(nvml, fn_name, None)
                if fn is not None and _ask(nvml, lambda fn=fn, h=h: fn(h)) is not None:
                    reasons = f"readable ({fn_name})"
                    break
            counter = "yes" if g.counter_supported else f"no ({g.counter_reason}); polled " \
                "power is integrated instead"
            report.details.append(
                f"GPU {g.index}: {g.name} {g.uuid} | energy counter: {counter} | "
                f"MIG: {'on (cannot be metered)' if g.mig_enabled else 'off'} | persistence "
                f"mode: {_onoff(persistence)} | power: "
                f"{'readable' if power is not None else 'unreadable'} | clock-event reasons: "
                f"{reasons}"
            )
            report.devices.append(DeviceInfo(g.uuid, "gpu", g.name, g.index,
                                             g.counter_supported))
        cvd = env.get("CUDA_VISIBLE_DEVICES")
        visible, note = visible_devices(cvd, [g.uuid for g in gpus])
        if cvd is not None:
            mapping = ", ".join(
                f"cuda:{v.cuda_index} -> "
                + (f"MIG {v.uuid}" if v.is_mig else f"GPU {v.physical_index}")
                for v in visible) or "no device"
            report.details.append(f"CUDA_VISIBLE_DEVICES={cvd!r}: {mapping}")
        if note:
            report.details.append(note)
        meterable = [g for g in gpus if not g.mig_enabled]
        report.available = bool(meterable)
        if not meterable:
            report.reason = "every GPU is in MIG mode: NVML cannot meter MIG slices"
        return report
    except (EnergySourceError, nvml.NVMLError) as exc:
        report.reason = getattr(exc, "reason", None) or str(exc)
        return report
    finally:
        nv.nvml_shutdown(nvml)


def probe_rapl(root: Path = DEFAULT_POWERCAP_ROOT) -> SourceReport:
    """RAPL zones, which are counted, and whether they can be read."""
    report = SourceReport(name="rapl", available=False)
    reason = unavailable_reason(root)
    for z in scan_zones(root):
        use = "counted" if z.counted else "not added (part of a package, or contains one)"
        state = "readable" if z.readable else z.reason
        report.details.append(f"{z.zone}: {z.name}, {state}, {use}")
    report.available = reason is None
    report.reason = reason
    return report


def probe(
    environ: Mapping[str, str] | None = None, powercap_root: Path = DEFAULT_POWERCAP_ROOT
) -> list[SourceReport]:
    """Every source llem knows, probed."""
    return [probe_nvml(environ), probe_rapl(powercap_root)]


def format_report(reports: list[SourceReport]) -> str:
    """Plain-words report, one section per source, and what ``auto`` will pick."""
    by_name = {r.name: r for r in reports}
    lines = ["What this machine can measure:", ""]
    titles = {"nvml": "NVIDIA GPUs (NVML)", "rapl": "CPU package and DRAM energy (RAPL)"}
    for r in reports:
        state = "available" if r.available else f"unavailable: {r.reason}"
        lines.append(f"{titles.get(r.name, r.name)}: {state}")
        lines += [f"  {d}" for d in r.details]
    nvml, rapl = by_name.get("nvml"), by_name.get("rapl")
    lines += ["", "energy.backend auto will use:"]
    if nvml and nvml.available:
        counters = all(d.counter_supported for d in nvml.devices)
        lines.append("  GPU runs: nvml_counter" if counters else
                     "  GPU runs: NVML (power integration where a GPU has no counter)")
    else:
        lines.append(f"  GPU runs: none, energy null ({nvml.reason if nvml else 'not probed'})")
    if rapl and rapl.available:
        lines.append("  CPU runs: rapl (host-wide, metered by local rank 0)")
    else:
        lines.append(f"  CPU runs: none, energy null ({rapl.reason if rapl else 'not probed'})")
    lines.append("  estimate: only when a config sets energy.backend: estimate and cpu_tdp_w; "
                 "labelled 'estimate'")
    return "\n".join(lines)


def report_document(reports: list[SourceReport]) -> list[dict[str, Any]]:
    """The reports as JSON-ready data."""
    return [asdict(r) for r in reports]


def _ask(nvml: Any, call: Any) -> Any:
    """One optional NVML read: None when NVML refuses it."""
    try:
        return call()
    except nvml.NVMLError:
        return None


def _onoff(value: Any) -> str:
    return "unknown" if value is None else ("on" if value else "off")
