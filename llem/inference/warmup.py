"""Warmup in the measuring process, with the measured run's batch shapes and output length.

Kernels, allocator pools and clocks warmed in another process do not carry over, so warmup
runs right before the measured window, on the same batches. It stops by CV convergence
(after at least ``min_prompts`` iterations, the coefficient of variation -- population
standard deviation over mean -- of the last ``window_size`` latencies is below
``cv_threshold``; at ``max_prompts`` it stops unconverged) or after a fixed ``max_prompts``
iterations. A thermal floor keeps it going until ``thermal_floor_sec`` have passed.
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
    converged = False
    cv = 0.0
    start = clock()
    while True:
        latencies.append(iteration(len(latencies)))
        done = len(latencies)
        window = latencies[-cfg.window_size :]
        cv = coefficient_of_variation(window)
        if mode == "convergence" and done >= checks_from and cv < cfg.cv_threshold:
            converged = True
        log(f"warmup {done}/{cfg.max_prompts}: {latencies[-1]:.1f} ms, cv {cv:.3f}")
        floor_reached = clock() - start >= cfg.thermal_floor_sec
        if mode == "convergence":
            stop = converged or done >= cfg.max_prompts
        else:
            stop = done >= cfg.max_prompts
        if stop and floor_reached:
            break
    if mode == "fixed":  # not a stopping rule here; reported for information
        converged = len(latencies) >= checks_from and cv < cfg.cv_threshold
    return WarmupResult(
        converged=converged, final_cv=cv, iterations_completed=len(latencies),
        target_cv=cfg.cv_threshold, max_prompts=cfg.max_prompts, latencies_ms=latencies,
        mode=mode, duration_sec=clock() - start,
        thermal_floor_sec=cfg.thermal_floor_sec or None,
    )
