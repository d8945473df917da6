"""Put a fake ``pynvml`` where llem's lazy import finds it."""

from __future__ import annotations

import sys

import pytest

from tests.fakes.fake_nvml import FakeClock, FakeGpu, FakeNvml


def install_fake_nvml(
    monkeypatch: pytest.MonkeyPatch, gpus: list[FakeGpu], clock: FakeClock | None = None,
    **kwargs: object,
) -> FakeNvml:
    """Replace ``pynvml`` for the test's duration; returns the fake."""
    fake = FakeNvml(gpus, clock or FakeClock(), **kwargs)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)
    return fake
