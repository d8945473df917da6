"""Cost of the window API on the scripted stand-in GPUs: microseconds per begin/end pair.

Side by side in one run: the bare counter sweep (``source.read_energy()``, the floor), a
begin/end pair without the sampler thread, and one with it (thread start and join included).
Ratios are against two bare sweeps, which any begin/end pair needs.

    python benchmarks/bench_window_reads.py [--gpus 4] [--pairs 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llem.config.models import EnergyConfig
from llem.energy.select import open_energy_source
from llem.measure.window import MeasurementWindow
from tests.fakes.fake_nvml import FakeGpu, FakeNvml, uuid


def per_call_us(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=2000)
    args = parser.parse_args()
    fake = FakeNvml([FakeGpu(uuid(i)) for i in range(args.gpus)], time.monotonic)
    sys.modules["pynvml"] = fake.module
    sel = open_energy_source(EnergyConfig(), list(range(args.gpus)), environ={})
    assert sel.source is not None
    source = sel.source

    def pair(background: bool) -> None:
        w = MeasurementWindow(sel, min_window_sec=0.0, background=background)
        w.begin()
        w.end()

    sweep = per_call_us(source.read_energy, args.pairs)
    no_thread = per_call_us(lambda: pair(False), args.pairs)
    with_thread = per_call_us(lambda: pair(True), max(200, args.pairs // 10))
    print(f"{args.gpus} stand-in GPUs")
    print(f"counter sweep (read_energy):        {sweep:8.1f} us")
    print(f"begin/end pair, no sampler thread:  {no_thread:8.1f} us  "
          f"({no_thread / (2 * sweep):.2f}x two sweeps)")
    print(f"begin/end pair, sampler thread:     {with_thread:8.1f} us  "
          f"({with_thread / (2 * sweep):.2f}x two sweeps)")
    sel.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
