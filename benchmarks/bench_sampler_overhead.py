"""Does the background sampler disturb what it measures?

Runs the same CPU-bound work with and without the sampler (100 ms by default), alternating
A/B rounds in one process, and reports the throughput ratio (with / without). Target: >= 0.99.
Throughput per CPU second of the whole process counts the sampler's own CPU time and its
hold on the GIL, and is robust against other load on a shared host; per wall second is shown
too, but is only meaningful on a quiet machine.
The sampler reads the real source where one is available (NVML, RAPL), else a scripted
stand-in for four GPUs.

    python benchmarks/bench_sampler_overhead.py [--rounds 20] [--seconds 1] [--interval-ms 100]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llem.config.models import EnergyConfig
from llem.energy.select import EnergySelection, open_energy_source
from llem.measure.window import MeasurementWindow


def python_work(seconds: float) -> tuple[float, float]:
    """Pure-Python loop (holds the GIL, the worst case for a Python sampler thread).

    Returns (work per wall second, work per CPU second of the whole process).
    """
    n = 0
    c0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        for i in range(2000):
            n += i * i % 7
        n += 1
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def torch_work(seconds: float) -> tuple[float, float]:
    """Small matrix multiplies, like a tiny model's decode steps."""
    import torch

    a = torch.randn(256, 256)
    steps = 0
    c0, t0 = time.process_time(), time.perf_counter()
    end = t0 + seconds
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)
        steps += 1
    return steps / (time.perf_counter() - t0), steps / (time.process_time() - c0)


def open_selection(use_fake: bool) -> EnergySelection:
    if not use_fake:
        for indices in ([0], []):
            sel = open_energy_source(EnergyConfig(), indices)
            if sel.source is not None:
                return sel
    from tests.fakes.fake_nvml import FakeGpu, FakeNvml, uuid

    fake = FakeNvml([FakeGpu(uuid(i)) for i in range(4)], time.monotonic)
    sys.modules["pynvml"] = fake.module
    return open_energy_source(EnergyConfig(), [0, 1, 2, 3], environ={})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--fake", action="store_true", help="always use the stand-in GPUs")
    parser.add_argument("--workload", choices=["python", "torch", "both"], default="both")
    args = parser.parse_args()

    sel = open_selection(args.fake)
    print(f"sampler source: {sel.name} ({len(sel.devices)} device(s)), "
          f"interval {args.interval_ms} ms, {args.rounds} A/B rounds of {args.seconds:g} s")
    assert sel.source is not None
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        sel.source.sample()
    tick_us = (time.perf_counter() - t0) / n * 1e6
    print(f"one sampler tick costs {tick_us:.0f} us: at most "
          f"{tick_us / (args.interval_ms * 1000) * 100:.3f} % of one core (ratio floor "
          f"{1 - tick_us / (args.interval_ms * 1000):.4f})")
    workloads = {"python": python_work, "torch": torch_work}
    names = list(workloads) if args.workload == "both" else [args.workload]
    worst = 1.0
    for name in names:
        work = workloads[name]
        work(0.5)  # warm up
        wall_ratios, cpu_ratios = [], []
        ticks = 0
        for r in range(args.rounds):
            order = (False, True) if r % 2 == 0 else (True, False)
            rate = {}
            for with_sampler in order:
                if with_sampler:
                    window = MeasurementWindow(sel, sample_interval_ms=args.interval_ms,
                                               keep_samples=True, min_window_sec=0.0)
                    window.begin()
                    rate[True] = work(args.seconds)
                    ticks = window.end().sample_count
                else:
                    rate[False] = work(args.seconds)
            wall_ratios.append(rate[True][0] / rate[False][0])
            cpu_ratios.append(rate[True][1] / rate[False][1])
        wall, cpu = statistics.median(wall_ratios), statistics.median(cpu_ratios)
        worst = min(worst, cpu)
        print(f"{name:7s} with/without sampler: per CPU second {cpu:.4f} (median of "
              f"{len(cpu_ratios)}), per wall second {wall:.4f} (spread "
              f"{min(wall_ratios):.3f}-{max(wall_ratios):.3f}; other load on the host adds "
              f"noise here); {ticks} ticks in the last window")
    sel.close()
    print(f"target >= 0.99: {'met' if worst >= 0.99 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
