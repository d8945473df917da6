"""Background sampling of an energy source during a measured window.

A daemon thread calls ``source.sample()`` on a fixed schedule and sleeps in between, so it
takes almost no CPU from the work it measures. It sleeps on a lock that ``stop`` releases: one
call into the interpreter's lock, where ``threading.Event.wait`` runs a condition variable in
Python (measured on a 2-core VM: about 15 us more CPU per wake-up). Ticks that fall behind
are skipped, never bunched up. A failing read is counted and the sampler keeps going; the
window reports the first error as a warning.

The sampler also accounts for its own cost: the number of reads, their wall time, and its
CPU time from the thread CPU clock, read inside the sampler thread when it starts and when it
stops (``benchmarks/bench_instrumentation_overhead.py`` compares it with a plain polling
thread).
"""

from __future__ import annotations

import threading
import time

from llem.energy.base import DeviceSample, EnergySource

#: Name of the sampler thread (tests look for it in ``threading.enumerate()``).
THREAD_NAME = "llem-sampler"


def thread_cpu_sec() -> float | None:
    """CPU seconds of the calling thread; None where the platform has no thread CPU clock."""
    try:
        return time.thread_time()
    except (AttributeError, OSError):
        return None


class Sampler:
    """Samples every device of a source once per tick; one tick = one list of samples.

    Attributes:
        ticks: the successful reads, each one list of samples (one per device).
        reads: every read attempted, failed ones included.
        read_sec: wall time of all reads together.
        cpu_sec: CPU time spent sampling (thread CPU clock); None when it cannot be read.
    """

    def __init__(self, source: EnergySource, interval_sec: float) -> None:
        if interval_sec <= 0:
            raise ValueError("sample interval must be positive")
        self.source = source
        self.interval_sec = interval_sec
        self.ticks: list[list[DeviceSample]] = []
        self.error_count = 0
        self.first_error: str | None = None
        self.reads = 0
        self.read_sec = 0.0
        self.cpu_sec: float | None = 0.0
        self._stop = threading.Lock()  # held until stop(): acquiring it is the sleep
        self._stop.acquire()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Take one sample of every device now, in the calling thread (its CPU is counted)."""
        cpu0 = thread_cpu_sec()
        self._read()
        self._add_cpu(cpu0)

    def start(self) -> None:
        """Start the thread; its first tick happens at once."""
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it (at most one tick's read)."""
        if not self._stopped:
            self._stopped = True
            self._stop.release()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def samples(self) -> list[DeviceSample]:
        return [s for tick in self.ticks for s in tick]

    def _read(self) -> None:
        t0 = time.perf_counter()
        try:
            samples = self.source.sample()
        except Exception as exc:  # a sampler must never take the measured work down
            self.error_count += 1
            if self.first_error is None:
                self.first_error = f"{type(exc).__name__}: {exc}"
        else:
            self.ticks.append(samples)
        self.read_sec += time.perf_counter() - t0
        self.reads += 1

    def _add_cpu(self, cpu0: float | None) -> None:
        cpu1 = thread_cpu_sec()
        if cpu0 is None or cpu1 is None or self.cpu_sec is None:
            self.cpu_sec = None
        else:
            self.cpu_sec += cpu1 - cpu0

    def _run(self) -> None:
        cpu0 = thread_cpu_sec()
        try:
            next_tick = time.monotonic()
            while not self._stopped:
                self._read()
                next_tick += self.interval_sec
                delay = next_tick - time.monotonic()
                if delay <= 0:  # fell behind: skip the missed ticks
                    next_tick = time.monotonic()
                    if self._stop.acquire(blocking=False):
                        break
                elif self._stop.acquire(timeout=delay):
                    break
        finally:
            self._add_cpu(cpu0)
