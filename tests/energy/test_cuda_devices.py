"""CUDA_VISIBLE_DEVICES is read the way CUDA reads it, and mapped to physical GPUs by UUID."""

from __future__ import annotations

import pytest

from llem.energy.cuda_devices import select_visible, visible_devices
from llem.errors import EnergySourceError
from tests.fakes.fake_nvml import uuid

PHYS = [uuid(i) for i in range(4)]


def physical(env: str | None) -> list[int | None]:
    return [d.physical_index for d in visible_devices(env, PHYS)[0]]


def test_unset_means_every_gpu_in_order() -> None:
    assert physical(None) == [0, 1, 2, 3]


def test_indices_renumber() -> None:
    devices, note = visible_devices("2,3", PHYS)
    assert [(d.cuda_index, d.physical_index) for d in devices] == [(0, 2), (1, 3)]
    assert note is None


def test_uuid_and_prefix_forms() -> None:
    assert physical(f"{PHYS[3]},{PHYS[1][:12]}") == [3, 1]


def test_list_stops_at_first_invalid_entry() -> None:
    devices, note = visible_devices("1,7,0", PHYS)
    assert [d.physical_index for d in devices] == [1]
    assert note and "'7'" in note
    assert physical("0,-1,2") == [0]
    assert physical("") == []
    assert physical("GPU-nonexistent,0") == []


def test_ambiguous_uuid_prefix_names_no_device() -> None:
    assert physical("GPU-,1") == []


def test_duplicate_hides_everything() -> None:
    devices, note = visible_devices("1,1", PHYS)
    assert devices == [] and note and "twice" in note


def test_mig_entries_are_marked() -> None:
    devices, _ = visible_devices("MIG-abcdef12-3456", PHYS)
    assert devices[0].is_mig and devices[0].physical_index is None


def test_select_visible_maps_torch_numbers_and_rejects_missing() -> None:
    visible, _ = visible_devices("2,3", PHYS)
    assert [d.uuid for d in select_visible([1, 0], visible, "2,3")] == [PHYS[3], PHYS[2]]
    with pytest.raises(EnergySourceError, match="CUDA device 2 does not exist"):
        select_visible([2], visible, "2,3")
