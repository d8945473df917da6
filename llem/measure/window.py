"""The measured window: energy and wall time of exactly the work between ``begin`` and ``end``.

At each end the accelerator is synchronized, then every device's counter is read with its
own timestamp (a sweep over several GPUs takes milliseconds; one shared stamp would skew each
GPU's interval). A background sampler records power, temperature, clocks and clock-event
reasons in between, but only when something needs it (:func:`sampler_uses`): the time series,
throttle reasons, the prefill/decode split, or a source whose energy needs regular reads. The
result says what the sampler served and what it cost (:class:`InstrumentationCost`). Whatever
cannot be measured is None with a reason, never 0.

The window is a ``with`` block: entering begins it; leaving the block normally ends it, and
the result is then read from :attr:`MeasurementWindow.measured`; leaving it by an exception
aborts it (the sampler thread stops, there is no result) and the exception goes on. The
result is read after the block, not inside it, because the end read happens on the way out.

Example:
    >>> window = MeasurementWindow(sel, sync=torch.cuda.synchronize)
    >>> with window:
    ...     model.generate(...)
    >>> window.measured.total_energy_j, window.measured.energy_source
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from llem.domain.instrumentation import InstrumentationCost, SamplerUse
from llem.domain.metrics import DeviceEnergy, MeasuredWindow, ThermalThrottleInfo
from llem.energy.base import DeviceInfo, DeviceSample, EnergyReading, EnergySource
from llem.energy.select import EnergySelection
from llem.errors import EnergySourceError
from llem.measure.sampler import Sampler
from llem.measure.throttle import throttle_info


@dataclass(frozen=True)
class DeviceWindow:
    """One device's counter reads at both ends of the window, each with its own stamp."""

    device_id: str
    start_energy_j: float
    start_sec: float
    end_energy_j: float | None
    end_sec: float | None

    @property
    def duration_sec(self) -> float | None:
        return None if self.end_sec is None else self.end_sec - self.start_sec


@dataclass
class WindowResult:
    """What a measured window measured; plain data."""

    start_time: datetime
    end_time: datetime
    start_monotonic: float
    end_monotonic: float
    duration_sec: float
    device_energy: list[DeviceEnergy]
    total_energy_j: float | None
    energy_source: str
    unavailable_reason: str | None
    sample_count: int
    samples: list[DeviceSample]
    throttle: ThermalThrottleInfo | None
    below_minimum: bool
    warnings: list[str]
    min_window_sec: float | None = None
    sample_interval_sec: float | None = None
    instrumentation: InstrumentationCost | None = None
    device_windows: list[DeviceWindow] = field(default_factory=list)
    device_index: dict[str, int | None] = field(default_factory=dict)
    _points: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)

    def energy_between(self, t0_monotonic: float, t1_monotonic: float) -> float | None:
        """Energy over a sub-interval, interpolated between sampled cumulative energies.

        None when the energy is unmeasured or the points do not cover ``[t0, t1]``. The
        error is bounded by the energy source's update step; with the NVML counter that is
        about 100 ms of power at each end.
        """
        if self.total_energy_j is None or not self._points or t1_monotonic < t0_monotonic:
            return None
        total = 0.0
        for points in self._points.values():
            e0 = _interpolate(points, t0_monotonic)
            e1 = _interpolate(points, t1_monotonic)
            if e0 is None or e1 is None:
                return None
            total += max(0.0, e1 - e0)
        return total

    def measured_window(self, prompt_set_repeats: int = 1) -> MeasuredWindow:
        """The window as recorded in results."""
        return MeasuredWindow(
            start_time=self.start_time,
            end_time=self.end_time,
            duration_sec=self.duration_sec,
            sample_count=self.sample_count,
            min_window_sec=self.min_window_sec,
            prompt_set_repeats=prompt_set_repeats,
            below_minimum=self.below_minimum,
        )


def _interpolate(points: list[tuple[float, float]], t: float) -> float | None:
    """Cumulative energy at ``t`` from sorted (time, energy) points, None outside them."""
    if not points or t < points[0][0] - 1e-9 or t > points[-1][0] + 1e-9:
        return None
    times = [p[0] for p in points]
    i = bisect.bisect_left(times, t)
    if i < len(points) and abs(times[i] - t) <= 1e-12:
        return points[i][1]
    if i == 0:
        return points[0][1]
    if i >= len(points):
        return points[-1][1]
    (ta, ea), (tb, eb) = points[i - 1], points[i]
    if tb <= ta:
        return eb
    return ea + (eb - ea) * (t - ta) / (tb - ta)


def sampler_uses(
    source: EnergySource | None, *, timeseries: bool, phase_split: bool
) -> list[SamplerUse]:
    """What a sampler would serve for this source; empty: there is no reason to start one.

    Args:
        source: the energy source of the window (None: nothing is metered, nothing to sample).
        timeseries: the samples are written as a time series (``timeseries.enabled``).
        phase_split: the prefill/decode energy split is wanted (``energy.phase_split``).
    """
    if source is None:
        return []
    uses: list[SamplerUse] = []
    if timeseries:
        uses.append("timeseries")
    if source.reports_clock_events:
        uses.append("throttle_reasons")
    if phase_split:
        uses.append("phase_split")
    if source.needs_regular_reads:
        uses.append("regular_reads")
    return uses


class MeasurementWindow:
    """``with window:`` (or begin/end) around the work to measure; then read ``measured``.

    On an exception inside the ``with`` block the window calls :meth:`abort`, so the
    sampler thread never outlives a failed measurement.

    The sampler starts only when :func:`sampler_uses` names a reason: ``keep_samples`` (the
    time series), ``phase_split``, or the source itself (throttle reasons, regular reads).
    ``background=False`` runs no sampler thread: call :meth:`tick` to sample (tests drive
    the window this way with a fake clock).
    """

    def __init__(
        self,
        selection: EnergySelection,
        sample_interval_ms: int = 100,
        keep_samples: bool = False,
        min_window_sec: float = 10.0,
        sync: Callable[[], object] | None = None,
        *,
        phase_split: bool = False,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
        background: bool = True,
    ) -> None:
        self.selection = selection
        self.interval_sec = sample_interval_ms / 1000.0
        self.keep_samples = keep_samples
        self.phase_split = phase_split
        self.min_window_sec = min_window_sec
        self.sync = sync
        self._clock = clock
        self._wall_clock = wall_clock or (lambda: datetime.now(UTC))
        self._background = background
        self._sampler: Sampler | None = None
        self._uses: list[SamplerUse] = []
        self._process_cpu: list[float] = []
        self._start: list[EnergyReading] = []
        self._start_mono: float | None = None
        self._anchor: tuple[datetime, float] | None = None
        self._reason: str | None = selection.unavailable_reason
        self._warnings: list[str] = list(selection.warnings)
        self.result: WindowResult | None = None

    # -- begin / end -------------------------------------------------------------------

    def begin(self) -> None:
        """Synchronize, read every counter (each stamped), start the sampler."""
        if self._start_mono is not None:
            raise RuntimeError("window already begun")
        if self.sync is not None:
            self.sync()
        self._anchor = (self._wall_clock(), self._clock())
        source = self.selection.source
        if source is not None:
            try:
                self._start = source.read_energy()
            except EnergySourceError as exc:
                self._start = []
                self._reason = f"reading energy at the window start failed: {exc}"
        self._start_mono = self._start[0].timestamp_sec if self._start else self._clock()
        self._process_cpu = [time.process_time()]
        uses = sampler_uses(source, timeseries=self.keep_samples, phase_split=self.phase_split)
        if source is not None and self._start and uses:
            self._uses = uses
            self._sampler = Sampler(source, self.interval_sec)
            if self._background:
                self._sampler.start()
            else:
                self._sampler.tick()

    def tick(self) -> None:
        """Sample now (for ``background=False``)."""
        if self._sampler is not None:
            self._sampler.tick()

    def end(self) -> WindowResult:
        """Synchronize, read every counter, stop the sampler, compute the result."""
        if self._start_mono is None or self._anchor is None:
            raise RuntimeError("window not begun")
        if self.result is not None:
            return self.result
        source = self.selection.source
        end_readings: list[EnergyReading] = []
        try:
            if self.sync is not None:
                self.sync()
            if source is not None and self._start:
                try:
                    end_readings = source.read_energy()
                except EnergySourceError as exc:
                    self._reason = f"reading energy at the window end failed: {exc}"
            end_mono = end_readings[-1].timestamp_sec if end_readings else self._clock()
        finally:  # the sampler stops after the end read, and also when sync fails
            if self._sampler is not None:
                self._sampler.stop()
            self._process_cpu.append(time.process_time())
        self.result = self._compute(end_readings, end_mono)
        return self.result

    def abort(self) -> None:
        """Stop sampling without a result (the measured work failed)."""
        if self._sampler is not None:
            self._sampler.stop()

    @property
    def measured(self) -> WindowResult:
        """The result of the ended window (after a ``with`` block that raised nothing)."""
        if self.result is None:
            raise RuntimeError("window not ended: it has no result")
        return self.result

    def __enter__(self) -> MeasurementWindow:
        self.begin()
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        """End the window; on an exception (any, KeyboardInterrupt too) abort it instead."""
        if exc_type is None:
            self.end()
        else:
            self.abort()

    # -- result ------------------------------------------------------------------------

    def _compute(self, end_readings: list[EnergyReading], end_mono: float) -> WindowResult:
        """Assemble the result from both ends' reads and what the sampler saw in between."""
        assert self._anchor is not None and self._start_mono is not None
        anchor_wall, anchor_mono = self._anchor
        start_mono = self._start_mono
        duration = max(0.0, end_mono - start_mono)
        warnings = self._warnings
        source = self.selection.source
        sampler = self._sampler
        samples = sampler.samples if sampler is not None else []
        if sampler is not None and sampler.error_count:
            warnings.append(
                f"{sampler.error_count} sampler read(s) failed; first: {sampler.first_error}"
            )
        devices = [] if source is None else source.devices
        device_windows, device_energy = _device_results(
            source, devices, self._start, end_readings, self._reason)
        total, reason = _total_and_reason(device_energy, self._reason)
        throttle = None
        if sampler is not None and source is not None and source.reports_clock_events:
            throttle = throttle_info(sampler.ticks, start_mono, end_mono, self.interval_sec)
        below = self.min_window_sec > 0 and duration < self.min_window_sec
        if below:
            warnings.append(_short_window_warning(duration, self.min_window_sec, total))
        return WindowResult(
            start_time=anchor_wall + timedelta(seconds=start_mono - anchor_mono),
            end_time=anchor_wall + timedelta(seconds=end_mono - anchor_mono),
            start_monotonic=start_mono,
            end_monotonic=end_mono,
            duration_sec=duration,
            device_energy=device_energy,
            total_energy_j=total,
            energy_source=_energy_source_label(device_energy),
            unavailable_reason=reason if total is None else None,
            sample_count=_ticks_in_window(sampler, start_mono, end_mono),
            samples=samples,
            throttle=throttle,
            below_minimum=below,
            warnings=warnings,
            min_window_sec=self.min_window_sec,
            sample_interval_sec=self.interval_sec if sampler is not None else None,
            instrumentation=self._instrumentation(),
            device_windows=device_windows,
            device_index={d.device_id: d.index for d in devices},
            _points=_energy_points(device_windows, samples) if total is not None else {},
        )

    def _instrumentation(self) -> InstrumentationCost:
        """The sampler's own CPU time and reads against the process's CPU time."""
        sampler = self._sampler
        reasons: list[str] = []
        cpu0, cpu1 = self._process_cpu
        process_cpu: float | None = cpu1 - cpu0
        if process_cpu is not None and process_cpu <= 0:
            process_cpu = None
            reasons.append("the process used no measurable CPU time in the window")
        if sampler is None:  # no sampler thread existed: its cost is a measured zero
            sampler_cpu: float | None = 0.0
            reads, mean_read_ms = 0, None
            reasons.append("no sampler ran (nothing needed it), so no read was timed")
        else:
            sampler_cpu, reads = sampler.cpu_sec, sampler.reads
            mean_read_ms = sampler.read_sec * 1000.0 / reads if reads else None
            if sampler_cpu is None:
                reasons.append("this platform has no per-thread CPU clock")
            if not reads:
                reasons.append("the sampler made no read")
        fraction = None
        if sampler_cpu is not None and process_cpu is not None:
            fraction = sampler_cpu / process_cpu
        return InstrumentationCost(
            sampler_served=list(self._uses),
            sample_interval_ms=self.interval_sec * 1000.0 if sampler is not None else None,
            sampler_cpu_sec=sampler_cpu,
            reads=reads,
            mean_read_ms=mean_read_ms,
            process_cpu_sec=process_cpu,
            cpu_fraction=fraction,
            unavailable_reason="; ".join(reasons) or None,
        )


def _device_results(
    source: EnergySource | None,
    devices: list[DeviceInfo],
    start_readings: list[EnergyReading],
    end_readings: list[EnergyReading],
    reason: str | None,
) -> tuple[list[DeviceWindow], list[DeviceEnergy]]:
    """Each metered device's reads at both ends and its energy, or None with the reason.

    A device without a start read is left out (the window's reason says why the start read
    failed); one whose counter went backwards gets no energy, since a difference across a
    counter reset would be a wrong number, not a small one.

    Args:
        source: the window's energy source (None: nothing is metered).
        devices: the devices that source meters.
        start_readings: the counters read at ``begin``.
        end_readings: the counters read at ``end`` (empty when that read failed).
        reason: why energy is unmeasured so far, given to every device without energy.
    """
    starts = {r.device_id: r for r in start_readings}
    ends = {r.device_id: r for r in end_readings}
    device_windows: list[DeviceWindow] = []
    device_energy: list[DeviceEnergy] = []
    for dev in devices:
        start = starts.get(dev.device_id)
        if start is None:
            continue  # the start read failed: the reason says so
        end = ends.get(dev.device_id)
        energy_j: float | None = None
        dev_reason = reason
        if end is not None:
            energy_j = end.energy_j - start.energy_j
            if energy_j < 0:
                energy_j = None
                dev_reason = (f"{dev.device_id}: energy counter went backwards "
                              "(driver reloaded?)")
        device_windows.append(DeviceWindow(
            dev.device_id, start.energy_j, start.timestamp_sec,
            None if end is None else end.energy_j, None if end is None else end.timestamp_sec,
        ))
        device_energy.append(DeviceEnergy(
            device_id=dev.device_id,
            kind=dev.kind,  # type: ignore[arg-type]
            name=dev.name,
            energy_j=energy_j,
            source=source.device_source(dev) if source is not None else "none",
            unavailable_reason=None if energy_j is not None else dev_reason,
            counter_start_j=start.energy_j,
            counter_end_j=None if end is None else end.energy_j,
        ))
    return device_windows, device_energy


def _total_and_reason(
    device_energy: list[DeviceEnergy], reason: str | None
) -> tuple[float | None, str | None]:
    """The window's total energy, or None and why: a total is only a sum over every device.

    A partial sum would under-count without saying so, so one unmeasured device makes the
    total None; the reason is the window's own, else the missing devices' reasons.
    """
    if device_energy and all(d.energy_j is not None for d in device_energy):
        return sum(d.energy_j for d in device_energy if d.energy_j is not None), None
    if device_energy:
        missing = [d for d in device_energy if d.energy_j is None]
        return None, reason or "; ".join(d.unavailable_reason or d.device_id for d in missing)
    return None, reason if reason is not None else "no device was metered"


def _energy_source_label(device_energy: list[DeviceEnergy]) -> str:
    """The window's ``energy_source``: the devices' one label, "mixed", or "none".

    A source may meter devices by different methods (counter, integrated power); results
    name the method when all devices share it, so a reader knows the numbers' quality.
    """
    if not device_energy:
        return "none"
    sources = {d.source for d in device_energy}
    return sources.pop() if len(sources) == 1 else "mixed"


def _energy_points(
    device_windows: list[DeviceWindow], samples: list[DeviceSample]
) -> dict[str, list[tuple[float, float]]]:
    """Each device's sorted (time, cumulative energy) points, for sub-interval energies.

    The end reads and every sampled energy between them are the points
    :meth:`WindowResult.energy_between` interpolates over.
    """
    points: dict[str, list[tuple[float, float]]] = {}
    for dw in device_windows:
        pts = [(dw.start_sec, dw.start_energy_j)]
        if dw.end_sec is not None and dw.end_energy_j is not None:
            pts.append((dw.end_sec, dw.end_energy_j))
        pts += [(s.timestamp_sec, s.energy_j) for s in samples
                if s.device_id == dw.device_id and s.energy_j is not None]
        points[dw.device_id] = sorted(pts)
    return points


def _short_window_warning(duration_sec: float, min_window_sec: float,
                          total_j: float | None) -> str:
    """The warning for a window shorter than the minimum, with the error it risks.

    Counters step about every 100 ms, so a short window's energy can be off by a share a
    reader should see next to the number.
    """
    text = (f"measured window {duration_sec:.2f} s is shorter than the minimum "
            f"{min_window_sec:g} s")
    if total_j is not None:
        text += (f"; energy counters update about every 100 ms, so the error may "
                 f"reach {min(100.0, 20.0 / max(duration_sec, 1e-9)):.1f} %")
    return text


def _ticks_in_window(sampler: Sampler | None, start_mono: float, end_mono: float) -> int:
    """How many sampler ticks fall inside the window (the sampler may tick just outside)."""
    return sum(1 for tick in (sampler.ticks if sampler else [])
               if tick and start_mono <= tick[0].timestamp_sec <= end_mono)
