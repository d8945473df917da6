"""The fake NVML stands in for the real ``pynvml`` only where it has pynvml's exact shape.

Device-layer tests are only as good as the fake they run against: a function the fake defines
but the real module lacks, or calls with other parameters, would let llem pass its tests and
fail on the first real GPU.
"""

from __future__ import annotations

import inspect

import pynvml
import pytest

from tests.fakes import fake_nvml
from tests.fakes.fake_nvml import FakeClock, FakeGpu, FakeNvml, uuid


def _fake_functions() -> dict[str, object]:
    module = FakeNvml([FakeGpu(uuid=uuid(0))], FakeClock()).module
    return {name: obj for name, obj in vars(module).items()
            if name.startswith("nvml") and callable(obj)}


def _shape(function: object) -> list[tuple[str, object, object]]:
    """Parameter names, kinds and defaults: what a caller relies on."""
    return [(p.name, p.kind, p.default)
            for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


def test_the_fake_defines_the_nvml_functions_llem_calls() -> None:
    assert {"nvmlInit", "nvmlShutdown", "nvmlDeviceGetTotalEnergyConsumption",
            "nvmlDeviceGetPowerUsage", "nvmlDeviceGetUUID"} <= set(_fake_functions())


@pytest.mark.parametrize("name", sorted(_fake_functions()))
def test_each_fake_function_exists_in_pynvml_with_the_same_signature(name: str) -> None:
    assert hasattr(pynvml, name), f"pynvml has no {name}"
    assert _shape(_fake_functions()[name]) == _shape(getattr(pynvml, name))


def test_the_fake_error_codes_are_pynvml_s() -> None:
    codes = {name: value for name, value in vars(fake_nvml).items()
             if name.startswith("NVML_ERROR_")}
    assert codes
    for name, value in codes.items():
        assert getattr(pynvml, name) == value, name
