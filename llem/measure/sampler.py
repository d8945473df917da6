"""Background sampling of an energy source during a measured window.

A daemon thread calls ``source.sample()`` on a fixed schedule and sleeps in between, so it
takes almost no CPU from the work it measures (see ``benchmarks/bench_sampler_overhead.py``).
Ticks that fall behind are skipped, never bunched up. A failing read is counted and the
sampler keeps going; the window reports the first error as a warning.
"""

from __future__ import annotations

import threading
import time

from llem.energy.base import DeviceSample, EnergySource


class Sampler:
    """Samples every device of a source once per tick; one tick = one list of samples."""

    def __init__(self, source: EnergySource, interval_sec: float) -> None:
        if interval_sec <= 0:
            raise ValueError("sample interval must be positive")
        self.source = source
        self.interval_sec = interval_sec
        self.ticks: list[list[DeviceSample]] = []
        self.error_count = 0
        self.first_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Take one sample of every device now (also usable without the thread)."""
        try:
            samples = self.source.sample()
        except Exception as exc:  # a sampler must never take the measured work down
            self.error_count += 1
            if self.first_error is None:
                self.first_error = f"{type(exc).__name__}: {exc}"
            return
        self.ticks.append(samples)

    def start(self) -> None:
        """Start the thread; its first tick happens at once."""
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._thread = threading.Thread(target=self._run, name="llem-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one tick's read)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def samples(self) -> list[DeviceSample]:
        return [s for tick in self.ticks for s in tick]

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            self.tick()
            next_tick += self.interval_sec
            delay = next_tick - time.monotonic()
            if delay < 0:  # fell behind: skip the missed ticks
                next_tick = time.monotonic()
                delay = 0.0
            if self._stop.wait(delay):
                break
