"""Warmup stopping rules (scripted latencies) and proof that warmup runs on the real model."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from llem.config.models import WarmupConfig
from llem.inference.warmup import coefficient_of_variation, run_warmup


def _scripted(values: list[float]) -> tuple[list[int], object]:
    calls: list[int] = []

    def iteration(i: int) -> float:
        calls.append(i)
        return values[i] if i < len(values) else values[-1]

    return calls, iteration


def test_cv_is_population_std_over_mean() -> None:
    assert coefficient_of_variation([10.0, 10.0, 10.0]) == 0.0
    assert coefficient_of_variation([9.0, 11.0]) == pytest.approx(0.1)
    assert coefficient_of_variation([5.0]) == 0.0


def test_converges_at_the_first_stable_window_after_min_prompts() -> None:
    latencies = [200.0, 150.0, 120.0, 101.0, 100.0, 100.0, 99.0, 100.0, 100.0]
    calls, iteration = _scripted(latencies)
    cfg = WarmupConfig(cv_threshold=0.02, window_size=3, min_prompts=4, max_prompts=20)
    result = run_warmup(iteration, cfg)
    # last-3 windows: [150,120,101] cv 0.16 at 4 done, [120,101,100] cv 0.09 at 5,
    # [101,100,100] cv 0.0047 at 6: stop there
    assert result.converged and result.iterations_completed == 6 and calls == list(range(6))
    assert result.final_cv < 0.02 and result.latencies_ms == latencies[:6]
    assert result.mode == "convergence"


def test_min_prompts_delays_the_first_check() -> None:
    _, iteration = _scripted([100.0] * 10)
    result = run_warmup(iteration, WarmupConfig(window_size=3, min_prompts=7, max_prompts=10))
    assert result.converged and result.iterations_completed == 7


def test_stops_unconverged_at_max_prompts() -> None:
    noisy = [100.0, 200.0] * 10
    _, iteration = _scripted(noisy)
    result = run_warmup(iteration, WarmupConfig(window_size=3, min_prompts=3, max_prompts=8))
    assert not result.converged and result.iterations_completed == 8
    assert result.final_cv > 0.05


def test_fixed_mode_runs_max_prompts() -> None:
    calls, iteration = _scripted([100.0] * 20)
    cfg = WarmupConfig(convergence_detection=False, max_prompts=6, window_size=3, min_prompts=3)
    result = run_warmup(iteration, cfg)
    assert len(calls) == 6 and result.mode == "fixed"


def test_thermal_floor_keeps_warming_past_convergence() -> None:
    ticks: Iterator[float] = itertools.count(0.0, 1.0)  # every clock read advances 1 s
    _, iteration = _scripted([100.0] * 100)
    cfg = WarmupConfig(window_size=3, min_prompts=3, max_prompts=50, thermal_floor_sec=10.0)
    result = run_warmup(iteration, cfg, clock=lambda: next(ticks))
    assert result.converged and 3 < result.iterations_completed < 50
    assert result.duration_sec is not None and result.duration_sec >= 10.0
    assert result.thermal_floor_sec == 10.0


def test_max_prompts_caps_warmup_before_the_thermal_floor() -> None:
    ticks: Iterator[float] = itertools.count(0.0, 1.0)
    calls, iteration = _scripted([100.0] * 100)
    messages: list[str] = []
    cfg = WarmupConfig(window_size=3, min_prompts=3, max_prompts=5, thermal_floor_sec=30.0)
    result = run_warmup(iteration, cfg, log=messages.append, clock=lambda: next(ticks))
    assert len(calls) == 5 and result.iterations_completed == 5
    assert result.duration_sec is not None and result.duration_sec < 30.0
    assert result.converged  # the last window is steady
    assert "before thermal_floor_sec" in messages[-1]


def test_converged_describes_the_final_window() -> None:
    ticks: Iterator[float] = itertools.count(0.0, 1.0)
    # steady at first, so a window converges; then noisy while the floor keeps it going
    _, iteration = _scripted([100.0] * 5 + [30.0, 200.0] * 20)
    cfg = WarmupConfig(window_size=3, min_prompts=3, max_prompts=12, thermal_floor_sec=100.0)
    result = run_warmup(iteration, cfg, clock=lambda: next(ticks))
    assert result.iterations_completed == 12 and result.final_cv > cfg.cv_threshold
    assert not result.converged


def test_disabled_warmup_runs_nothing() -> None:
    calls, iteration = _scripted([1.0])
    result = run_warmup(iteration, WarmupConfig(enabled=False))
    assert calls == [] and result.iterations_completed == 0 and result.mode == "disabled"
