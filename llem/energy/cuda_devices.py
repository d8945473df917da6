"""Map CUDA device numbers to physical GPUs the way CUDA reads ``CUDA_VISIBLE_DEVICES``.

torch numbers the GPUs it can see from 0; NVML numbers every GPU in the machine. A job given
``CUDA_VISIBLE_DEVICES=2,3`` calls its GPUs 0 and 1, and the energy of those must come from
physical GPUs 2 and 3, so llem maps by UUID. The parsing follows CUDA: entries are indices or
(unique prefixes of) UUIDs; the list ends at the first entry that names no device; a repeated
device makes the whole list invalid (no device visible). MIG instances (``MIG-...``) are kept
as such: NVML cannot meter their energy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llem.errors import EnergySourceError

_LEADING_INT = re.compile(r"^[+-]?\d+")


@dataclass(frozen=True)
class VisibleDevice:
    """One device CUDA makes visible, in CUDA order."""

    cuda_index: int  # the number torch uses
    physical_index: int | None  # NVML index; None for a MIG instance
    uuid: str  # GPU-... or MIG-...
    is_mig: bool = False


def visible_devices(
    env_value: str | None, physical_uuids: list[str]
) -> tuple[list[VisibleDevice], str | None]:
    """Devices CUDA would expose given ``CUDA_VISIBLE_DEVICES`` and the physical GPU UUIDs.

    Returns the devices in CUDA order and a note when the list was cut short (the part of
    the variable that names no device), else None.
    """
    if env_value is None:
        return [VisibleDevice(i, i, u) for i, u in enumerate(physical_uuids)], None
    chosen: list[VisibleDevice] = []
    seen: set[str] = set()
    note: str | None = None
    entries = env_value.split(",")
    for pos, raw in enumerate(entries):
        entry = raw.strip()
        device = _resolve_entry(entry, physical_uuids, len(chosen))
        if device is None:
            rest = ",".join(entries[pos:])
            note = f"CUDA_VISIBLE_DEVICES entry {entry!r} names no device; CUDA ignores {rest!r}"
            break
        if device.uuid in seen:
            return [], f"CUDA_VISIBLE_DEVICES={env_value!r} names a device twice: CUDA sees none"
        seen.add(device.uuid)
        chosen.append(device)
    return chosen, note


def _resolve_entry(entry: str, physical_uuids: list[str], cuda_index: int) -> VisibleDevice | None:
    if not entry:
        return None
    if entry.startswith("MIG-"):
        return VisibleDevice(cuda_index, None, entry, is_mig=True)
    if entry.startswith("GPU-"):
        matches = [i for i, u in enumerate(physical_uuids) if u.startswith(entry)]
        if len(matches) != 1:
            return None
        return VisibleDevice(cuda_index, matches[0], physical_uuids[matches[0]])
    match = _LEADING_INT.match(entry)
    if match is None:
        return None
    index = int(match.group(0))
    if index < 0 or index >= len(physical_uuids):
        return None
    return VisibleDevice(cuda_index, index, physical_uuids[index])


def select_visible(
    cuda_device_indices: list[int], visible: list[VisibleDevice], env_value: str | None
) -> list[VisibleDevice]:
    """The visible devices a job uses, by the numbers torch gives them."""
    picked: list[VisibleDevice] = []
    for index in cuda_device_indices:
        if index < 0 or index >= len(visible):
            shown = "unset" if env_value is None else repr(env_value)
            raise EnergySourceError(
                f"CUDA device {index} does not exist: {len(visible)} GPU(s) visible "
                f"(CUDA_VISIBLE_DEVICES {shown})"
            )
        device = visible[index]
        if device not in picked:
            picked.append(device)
    return picked
