"""Energy of one cycle's ranks: summed over distinct physical devices, and its phase split.

A device several ranks report is metered once, over the union of their windows; energy is
null, with the reason, when any share of it is unmeasured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llem.domain.experiment import RawProcessResult
from llem.domain.metrics import DeviceEnergy, EnergyBreakdown, PhaseEnergy


@dataclass
class CombinedEnergy:
    """The ranks' energy, combined.

    Attributes:
        total_j: energy over distinct devices; None when any share is unmeasured.
        source: the energy source of every rank, "mixed", or "none" when unmeasured.
        unavailable_reason: why ``total_j`` is None, naming the rank or device.
        devices: one entry per distinct device (shared devices over the union window).
        breakdown: the summed baseline breakdown, when every metering rank has one.
        attribution_verified: no device was reported by more than one rank.
        warnings: one per shared device.
    """

    total_j: float | None
    source: str | None
    unavailable_reason: str | None
    devices: list[DeviceEnergy]
    breakdown: EnergyBreakdown | None
    attribution_verified: bool
    warnings: list[str]


def _device_identity(raw: RawProcessResult, device: DeviceEnergy) -> tuple[str, ...]:
    """Physical devices are one per host and id; an estimate belongs to its process."""
    host = raw.environment.host if raw.environment and raw.environment.host else "?"
    if device.source == "estimate":
        return (host, str(raw.process_index), device.device_id)
    return (host, device.device_id)


def combine_energy(raws: Sequence[RawProcessResult]) -> CombinedEnergy:
    """Energy summed over distinct devices; null (with the reason) if any share is unmeasured.

    A device several ranks report is metered once, over the union of their windows.
    """
    readings: dict[tuple[str, ...], list[tuple[int, DeviceEnergy]]] = {}
    for raw in raws:
        for device in raw.device_energy or []:
            key = _device_identity(raw, device)
            readings.setdefault(key, []).append((raw.process_index, device))
    warnings: list[str] = []
    devices: list[DeviceEnergy] = []
    shared: list[str] = []
    for entries in readings.values():
        if len(entries) == 1:
            devices.append(entries[0][1])
            continue
        device = _over_union_window(entries)
        shared.append(device.device_id)
        warnings.append(
            f"device {device.device_id} is reported by ranks "
            f"{', '.join(str(rank) for rank, _ in entries)}; metered once over the union of "
            "their windows"
        )
        devices.append(device)
    sources = sorted({r.energy_source for r in raws if r.energy_source not in (None, "none")})
    failed = [r for r in raws if r.energy_tracking_failed]
    unmeasured_devices = [d for d in devices if d.energy_j is None]
    total: float | None
    reason: str | None = None
    if failed:
        total = None
        r = failed[0]
        reason = f"rank {r.process_index}: {r.energy_unavailable_reason or 'energy unmeasured'}"
    elif unmeasured_devices:
        total = None
        d = unmeasured_devices[0]
        reason = f"device {d.device_id}: {d.unavailable_reason or 'energy unmeasured'}"
    elif not devices:
        total = None
        reason = next((r.energy_unavailable_reason for r in raws if r.energy_unavailable_reason),
                      "no energy source measured any device")
    else:
        total = float(sum(d.energy_j for d in devices if d.energy_j is not None))
    if total is None:
        source = "none"
    elif len(sources) == 1:
        source = sources[0]
    else:
        source = "mixed"
    breakdown: EnergyBreakdown | None = None
    if total is not None and shared:
        breakdown = EnergyBreakdown(
            raw_j=total, adjusted_unavailable_reason=f"device {shared[0]} is shared by ranks: "
            "its baseline over the union of their windows is not attributed")
    elif total is not None:
        breakdown = _combine_breakdowns(raws)
    return CombinedEnergy(total, source, reason, devices, breakdown, not shared, warnings)


def _over_union_window(entries: Sequence[tuple[int, DeviceEnergy]]) -> DeviceEnergy:
    """One device's energy from the earliest start to the latest end of the ranks reporting it.

    Only the NVML counter is one counter for every process of a host; other readings of
    different processes have different origins, so the device's energy is then null.
    """
    parts = [device for _, device in entries]
    first = parts[0]
    unmeasured = next((d for d in parts if d.energy_j is None), None)
    if unmeasured is not None:
        return unmeasured
    starts = [d.counter_start_j for d in parts if d.counter_start_j is not None]
    ends = [d.counter_end_j for d in parts if d.counter_end_j is not None]
    if all(d.source == "nvml_counter" for d in parts) and len(starts) == len(ends) == len(parts):
        return first.model_copy(update={"energy_j": max(ends) - min(starts),
                                        "counter_start_j": min(starts),
                                        "counter_end_j": max(ends)})
    ranks = ", ".join(str(rank) for rank, _ in entries)
    return first.model_copy(update={
        "energy_j": None, "counter_start_j": None, "counter_end_j": None,
        "unavailable_reason": f"shared by ranks {ranks}, whose {first.source} readings have "
        "no common counter: its energy over the union of their windows is unknown",
    })


def _combine_breakdowns(raws: Sequence[RawProcessResult]) -> EnergyBreakdown | None:
    """Sum of the ranks' breakdowns; only when every rank that metered energy has one.

    Adjusted energy is null, with the first rank's reason, when any rank's is.
    """
    metering = [r for r in raws if r.device_energy]
    parts = [r.energy_breakdown for r in metering]
    if not parts or any(p is None for p in parts):
        return None
    parts_ok = [p for p in parts if p is not None]
    adjusted = [p.adjusted_j for p in parts_ok]
    baseline = [p.baseline_power_w for p in parts_ok]
    methods = {p.baseline_method for p in parts_ok}
    stamps = [p.baseline_timestamp for p in parts_ok if p.baseline_timestamp is not None]
    ages = [p.baseline_cache_age_sec for p in parts_ok if p.baseline_cache_age_sec is not None]
    reason = next((f"rank {r.process_index}: {p.adjusted_unavailable_reason or 'unknown'}"
                   for r, p in zip(metering, parts_ok, strict=True) if p.adjusted_j is None),
                  None)
    return EnergyBreakdown(
        raw_j=sum(p.raw_j for p in parts_ok),
        adjusted_j=None if reason else sum(a for a in adjusted if a is not None),
        baseline_power_w=None if any(b is None for b in baseline)
        else sum(b for b in baseline if b),
        baseline_method=methods.pop() if len(methods) == 1 else "mixed",
        baseline_timestamp=min(stamps) if stamps else None,
        baseline_cache_age_sec=max(ages) if ages else None,
        adjusted_unavailable_reason=reason,
    )



def _shared_devices(raws: Sequence[RawProcessResult]) -> list[str]:
    """Ids of physical devices that more than one rank reports."""
    ranks_by_device: dict[tuple[str, ...], set[int]] = {}
    for raw in raws:
        for device in raw.device_energy or []:
            ranks_by_device.setdefault(_device_identity(raw, device), set()).add(
                raw.process_index)
    return sorted(key[-1] for key, ranks in ranks_by_device.items() if len(ranks) > 1)


def combine_phases(raws: Sequence[RawProcessResult]) -> PhaseEnergy | None:
    """Prefill/decode times summed over ranks; energies summed over the ranks that meter.

    Energies are null when the combined energy is: when any rank failed to measure, or any
    metering rank could not split its energy. They are null too when ranks share a device:
    each rank's split holds the whole device's energy, so their sum would count it twice.
    """
    phases = [r.phase_energy for r in raws]
    if any(p is None for p in phases):
        return None
    ok = [p for p in phases if p is not None]
    metered = [p for r, p in zip(raws, ok, strict=True) if r.device_energy]
    shared = _shared_devices(raws)
    known = (
        bool(metered)
        and not shared
        and not any(r.energy_tracking_failed for r in raws)
        and all(p.prefill_energy_j is not None and p.decode_energy_j is not None
                for p in metered)
    )
    reason = None
    if shared:
        reason = (f"device(s) {', '.join(shared)} are shared by ranks: their energy cannot be "
                  "split into each rank's prefill and decode")
    elif not known:
        reason = next((p.unavailable_reason for p in ok if p.unavailable_reason),
                      "energy unmeasured")
    return PhaseEnergy(
        prefill_energy_j=sum(p.prefill_energy_j or 0.0 for p in metered) if known else None,
        decode_energy_j=sum(p.decode_energy_j or 0.0 for p in metered) if known else None,
        prefill_time_sec=sum(p.prefill_time_sec for p in ok),
        decode_time_sec=sum(p.decode_time_sec for p in ok),
        method=ok[0].method,
        unavailable_reason=reason,
    )

