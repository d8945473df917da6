"""Warmup in the measuring process, with the measured run's batch shapes and output length.

Kernels, allocator pools and clocks warmed in another process do not carry over, so warmup
runs right before the measured window, on the same batches. The rules, in the order they
apply after each iteration:

1. ``max_prompts`` is a hard cap: at that many iterations warmup stops, whatever else holds
   (the thermal floor included).
2. Convergence mode stops at the first iteration where the window is steady -- at least
   ``max(min_prompts, window_size)`` iterations ran and the coefficient of variation
   (population standard deviation over mean) of the last ``window_size`` latencies is below
   ``cv_threshold`` -- and ``thermal_floor_sec`` have passed since warmup began. Fixed mode
   runs ``max_prompts`` iterations.

``converged`` describes the final state: whether the last window was steady when warmup
stopped, in either mode.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from llem.config.models import WarmupConfig
from llem.domain.metrics import WarmupResult

#: Runs warmup iteration ``i`` and returns its latency in milliseconds.
Iteration = Callable[[int], float]


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Population std / mean; 0 for fewer than two values, inf for a zero mean."""
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    if mean == 0:
        return math.inf
    variance = sum((v - mean) ** 2 for v in values) / len(values)
    return math.sqrt(variance) / mean


def run_warmup(
    iteration: Iteration,
    cfg: WarmupConfig,
    log: Callable[[str], None] = lambda _msg: None,
    clock: Callable[[], float] = time.monotonic,
) -> WarmupResult:
    """Call ``iteration`` until the stopping rule holds; returns what happened."""
    if not cfg.enabled:
        return WarmupResult(
            converged=False, final_cv=0.0, iterations_completed=0, target_cv=cfg.cv_threshold,
            max_prompts=cfg.max_prompts, mode="disabled", duration_sec=0.0,
            thermal_floor_sec=cfg.thermal_floor_sec or None,
        )
    mode = "convergence" if cfg.convergence_detection else "fixed"
    checks_from = max(cfg.min_prompts, cfg.window_size)
    latencies: list[float] = []
    steady = False
    cv = 0.0
    start = clock()
    while True:
        latencies.append(iteration(len(latencies)))
        done = len(latencies)
        cv = coefficient_of_variation(latencies[-cfg.window_size :])
        steady = done >= checks_from and cv < cfg.cv_threshold
        log(f"warmup {done}/{cfg.max_prompts}: {latencies[-1]:.1f} ms, cv {cv:.3f}")
        if done >= cfg.max_prompts:
            break  # the cap comes first
        if mode == "convergence" and steady and clock() - start >= cfg.thermal_floor_sec:
            break
    converged = steady
    elapsed = clock() - start
    if elapsed < cfg.thermal_floor_sec:
        log(f"warmup stopped at max_prompts ({cfg.max_prompts}) after {elapsed:.1f} s, before "
            f"thermal_floor_sec ({cfg.thermal_floor_sec:g} s)")
    return WarmupResult(
        converged=converged, final_cv=cv, iterations_completed=len(latencies),
        target_cv=cfg.cv_threshold, max_prompts=cfg.max_prompts, latencies_ms=latencies,
        mode=mode, duration_sec=elapsed,
        thermal_floor_sec=cfg.thermal_floor_sec or None,
    )
