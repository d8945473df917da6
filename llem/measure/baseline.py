"""Idle (baseline) power: measured with a CUDA context alive, cached on disk, subtracted over
the measured window only.

A context alone adds tens of watts on HBM GPUs, so the baseline is taken with one alive. Each
device's mean power is its counter difference over its own read interval; the sampler ticks
in between keep polled-power integration and counter wrap handling fed. Snakemake jobs are
separate processes, so the cache lives on disk: one file per host and device, valid for
``cache_ttl_sec``. ``adjusted_j = raw_j - baseline_power_w x window seconds``, summed over the
devices, where the seconds are each device's own measured interval, never model load or
warmup. A device whose baseline exceeds its measured energy by more than the counters'
resolution makes ``adjusted_j`` null with the reason: that baseline is not valid for this
window. A device within the resolution of zero counts as zero.
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from llem.config.models import BaselineConfig, EnergyConfig
from llem.domain.baseline import BaselineRecord, DeviceBaseline
from llem.domain.metrics import EnergyBreakdown
from llem.energy.base import EnergyReading, EnergySource
from llem.energy.select import EnergySelection, open_energy_source
from llem.errors import EnergySourceError, MeasurementError
from llem.io import write_json_atomic
from llem.measure.window import WindowResult

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$LLEM_CACHE_DIR/baselines``, else ``~/.cache/llem/baselines``."""
    env = os.environ if environ is None else environ
    root = env.get("LLEM_CACHE_DIR")
    return Path(root) / "baselines" if root else Path.home() / ".cache" / "llem" / "baselines"


def read_baseline(path: str | Path) -> BaselineRecord:
    """Load ``baseline.json``; a missing or malformed file is a MeasurementError."""
    path = Path(path)
    try:
        return BaselineRecord.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MeasurementError(f"{path}: cannot read baseline: {exc.strerror or exc}") from exc
    except ValidationError as exc:
        raise MeasurementError(f"{path}: not a baseline record: {exc.errors()[0]['msg']}") from exc


def write_baseline(record: BaselineRecord, path: str | Path) -> None:
    """Write ``baseline.json`` atomically."""
    write_json_atomic(path, record.model_dump(mode="json"))


def _cache_path(cache_dir: Path, host: str, device_id: str) -> Path:
    return cache_dir / f"{_UNSAFE.sub('_', host)}__{_UNSAFE.sub('_', device_id)}.json"


def _cached(
    cache_dir: Path, host: str, device_id: str, source: str, ttl_sec: float, now: datetime
) -> tuple[DeviceBaseline, float] | None:
    """A valid cache entry and its age, else None (missing, expired, other device or source)."""
    path = _cache_path(cache_dir, host, device_id)
    try:
        entry = DeviceBaseline.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        return None
    if entry.device_id != device_id or entry.host != host or entry.source != source:
        return None
    measured = entry.measured_at
    if measured.tzinfo is None:
        return None
    age = (now - measured).total_seconds()
    if age < 0 or age > ttl_sec:
        return None
    return entry, age


def measure_baseline(
    baseline_cfg: BaselineConfig,
    selection: EnergySelection | None = None,
    *,
    energy_cfg: EnergyConfig | None = None,
    cuda_device_indices: list[int] | None = None,
    cache_dir: str | Path | None = None,
    host: str | None = None,
    use_cache: bool = True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    wall_clock: Callable[[], datetime] | None = None,
    keep_cuda_context: Callable[[list[int]], bool | None] | None = None,
) -> BaselineRecord:
    """Measure (or take from the cache) the idle power of the devices a job uses.

    Pass an open ``selection``, or ``energy_cfg`` and ``cuda_device_indices`` to open (and
    close) one here. Never raises for an unmeasurable baseline: the record says
    ``unavailable`` with the reason (see :meth:`BaselineRecord.raise_if_required`).
    """
    wall = wall_clock or (lambda: datetime.now(UTC))
    host = host or socket.gethostname()
    indices = list(cuda_device_indices or [])
    common: dict[str, object] = {
        "host": host,
        "duration_sec": baseline_cfg.duration_sec,
        "sample_interval_ms": baseline_cfg.sample_interval_ms,
        "required": baseline_cfg.required,
    }
    if not baseline_cfg.enabled:
        return BaselineRecord(method="unavailable", unavailable_reason="baseline switched off "
                              "(baseline.enabled: false)", **{**common, "required": False})
    own = selection is None
    if selection is None:
        selection = open_energy_source(energy_cfg or EnergyConfig(), indices, clock=clock)
    try:
        source = selection.source
        if source is None:
            return BaselineRecord(method="unavailable", energy_source=selection.name,
                                  unavailable_reason=selection.unavailable_reason, **common)
        if selection.name == "estimate":
            return BaselineRecord(method="unavailable", energy_source="estimate",
                                  unavailable_reason="an estimate has no idle power to "
                                  "measure", **common)
        cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        if use_cache:
            hit = _cached_record(source, selection.name, baseline_cfg, cache, host, wall(),
                                 common)
            if hit is not None:
                return hit
        return _measure_fresh(
            source, selection.name, baseline_cfg, indices=indices, cache=cache, host=host,
            clock=clock, sleep=sleep, wall=wall, keep_cuda_context=keep_cuda_context, common=common)
    finally:
        if own:
            selection.close()


def _cached_record(
    source: EnergySource,
    energy_source: str,
    baseline_cfg: BaselineConfig,
    cache: Path,
    host: str,
    now: datetime,
    common: dict[str, object],
) -> BaselineRecord | None:
    """The cached baseline when every device has a valid entry, else None.

    All or nothing: a record mixing cached and fresh devices would have no single age or
    measurement time to report.
    """
    devices = source.devices
    hits = [_cached(cache, host, d.device_id, source.device_source(d),
                    baseline_cfg.cache_ttl_sec, now) for d in devices]
    if not devices or any(h is None for h in hits):
        return None
    entries = [h[0] for h in hits if h is not None]
    ages = [h[1] for h in hits if h is not None]
    oldest = min(e.measured_at for e in entries)
    return BaselineRecord(
        method="cached", power_w=sum(e.power_w for e in entries), devices=entries,
        timestamp=oldest, cache_age_sec=max(ages), energy_source=energy_source, **common)


def _measure_fresh(
    source: EnergySource,
    energy_source: str,
    baseline_cfg: BaselineConfig,
    *,
    indices: list[int],
    cache: Path,
    host: str,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    wall: Callable[[], datetime],
    keep_cuda_context: Callable[[list[int]], bool | None] | None,
    common: dict[str, object],
) -> BaselineRecord:
    """Measure each device's idle power now and cache it; unavailable with the reason if not.

    Args:
        source: the open energy source metering the job's devices.
        energy_source: the selection's name, written to the record.
        baseline_cfg: duration and sampling interval of the measurement.
        indices: CUDA indices of the job's GPUs, for the context kept alive meanwhile.
        cache: the cache folder the new entries are written to.
        host: the host name the entries are cached under.
        clock, sleep, wall: monotonic clock, sleep and wall clock (tests pass fakes).
        keep_cuda_context: creates the CUDA contexts (default :func:`keep_cuda_context_alive`).
        common: the fields every record of this call carries (host, configured duration...).
    """
    devices = source.devices
    context: bool | None = None
    warnings: list[str] = []
    if any(d.kind == "gpu" for d in devices):
        context = (keep_cuda_context or keep_cuda_context_alive)(indices)
        if not context:
            warnings.append("no CUDA context was alive while measuring: the baseline may "
                            "be low by the context's idle draw")
    try:
        start, end, ticks = _read_over_interval(source, baseline_cfg, clock, sleep)
    except EnergySourceError as exc:
        return BaselineRecord(method="unavailable", energy_source=energy_source,
                              unavailable_reason=f"baseline measurement failed: {exc}",
                              **common)
    measured_at = wall()
    entries = _device_baselines(source, start, end, measured_at, host)
    if isinstance(entries, str):
        return BaselineRecord(method="unavailable", energy_source=energy_source,
                              unavailable_reason=entries, **common)
    _write_cache(entries, cache, host, warnings)
    return BaselineRecord(
        method="fresh", power_w=sum(e.power_w for e in entries), devices=entries,
        timestamp=measured_at, cache_age_sec=None, sample_count=ticks,
        energy_source=energy_source, cuda_context=context, warnings=warnings, **common)


def _read_over_interval(
    source: EnergySource,
    baseline_cfg: BaselineConfig,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> tuple[list[EnergyReading], list[EnergyReading], int]:
    """Counter reads at both ends of ``duration_sec`` and the sampler ticks taken between.

    The ticks keep sources fed that integrate polled power or handle counter wrap, so the
    end read's difference stays correct. Raises EnergySourceError when a read fails.
    """
    start = source.read_energy()
    t_begin = clock()
    interval = baseline_cfg.sample_interval_ms / 1000.0
    ticks = 0
    next_t = t_begin
    while True:
        next_t += interval
        if next_t > t_begin + baseline_cfg.duration_sec:
            break
        sleep(max(0.0, next_t - clock()))
        source.sample()
        ticks += 1
    sleep(max(0.0, t_begin + baseline_cfg.duration_sec - clock()))
    end = source.read_energy()
    return start, end, ticks


def _device_baselines(
    source: EnergySource,
    start: list[EnergyReading],
    end: list[EnergyReading],
    measured_at: datetime,
    host: str,
) -> list[DeviceBaseline] | str:
    """Each device's mean power over its own read interval, or why one has none.

    One device without a usable difference (no time passed, the counter went backwards)
    makes the whole baseline unavailable: a partial baseline would under-subtract.
    """
    ends = {r.device_id: r for r in end}
    entries = []
    for dev, s in zip(source.devices, start, strict=True):
        e = ends[dev.device_id]
        dt = e.timestamp_sec - s.timestamp_sec
        if dt <= 0 or e.energy_j < s.energy_j:
            return (f"{dev.device_id}: no usable energy difference over the baseline "
                    "interval")
        entries.append(DeviceBaseline(
            device_id=dev.device_id, kind=dev.kind, power_w=(e.energy_j - s.energy_j) / dt,
            duration_sec=dt, source=source.device_source(dev), measured_at=measured_at,
            host=host))
    return entries


def _write_cache(entries: list[DeviceBaseline], cache: Path, host: str,
                 warnings: list[str]) -> None:
    """Cache each entry for the next jobs; a cache that cannot be written is a warning.

    The measurement itself stands without the cache, so a failed write stops the writes
    and adds one warning instead of failing the baseline.
    """
    for entry in entries:
        try:
            write_json_atomic(_cache_path(cache, host, entry.device_id),
                              entry.model_dump(mode="json"))
        except OSError as exc:
            warnings.append(f"baseline cache not written ({cache}): {exc}")
            break


def keep_cuda_context_alive(cuda_device_indices: list[int]) -> bool | None:
    """Create a CUDA context on each GPU (kept for the process's life); None without CUDA."""
    if not cuda_device_indices:
        return None
    try:
        import torch
    except ImportError:  # no torch, no context: the record then warns the baseline may be low
        return None
    try:
        if not torch.cuda.is_available():
            return None
        for index in cuda_device_indices:
            torch.zeros(1, device=f"cuda:{index}")
            torch.cuda.synchronize(index)
    except (RuntimeError, AssertionError):
        # RuntimeError: a CUDA failure (out of memory, a busy or lost device; torch's CUDA
        # errors subclass it). AssertionError: a torch built without CUDA.
        return None
    return True


def energy_breakdown(
    window: WindowResult, baseline: BaselineRecord | None
) -> EnergyBreakdown | None:
    """Raw, baseline and adjusted energy of a window; None when its energy is unmeasured.

    Raises MeasurementError for a baseline measured on other devices.
    """
    if window.total_energy_j is None:
        return None
    raw = window.total_energy_j
    if baseline is None:
        return EnergyBreakdown(raw_j=raw, adjusted_unavailable_reason="no baseline was given")
    if baseline.method == "unavailable":
        return EnergyBreakdown(raw_j=raw, baseline_method="unavailable",
                               adjusted_unavailable_reason="baseline unavailable: "
                               f"{baseline.unavailable_reason or 'not measured'}")
    device_ids = [d.device_id for d in window.device_energy]
    baseline.check_devices(device_ids)
    measured = {d.device_id: d.energy_j for d in window.device_energy}
    adjusted_j = 0.0
    baseline_w = 0.0
    invalid: list[str] = []
    for dw in window.device_windows:
        entry = baseline.device(dw.device_id)
        assert entry is not None  # check_devices guarantees it
        seconds = dw.duration_sec if dw.duration_sec is not None else window.duration_sec
        device_j = measured[dw.device_id]
        assert device_j is not None  # a measured total has every device's energy
        share_j = device_j - entry.power_w * seconds
        if share_j < -adjustment_resolution_j(seconds, entry.duration_sec):
            invalid.append(
                f"{dw.device_id}: baseline {entry.power_w:.2f} W over {seconds:.2f} s "
                f"({entry.power_w * seconds:.1f} J) exceeds the {device_j:.1f} J measured"
            )
        adjusted_j += max(share_j, 0.0)  # below zero only within the counters' resolution
        baseline_w += entry.power_w
    reason = None
    if invalid:
        reason = ("the baseline is not valid for this window (idle power above the measured "
                  "power): " + "; ".join(invalid))
    return EnergyBreakdown(
        raw_j=raw,
        adjusted_j=None if invalid else adjusted_j,
        baseline_power_w=baseline_w,
        baseline_method=baseline.method,
        baseline_timestamp=baseline.timestamp,
        baseline_cache_age_sec=baseline.cache_age_sec,
        adjusted_unavailable_reason=reason,
    )


#: Resolution of one energy counter read, J: NVML counts whole millijoules (RAPL finer).
COUNTER_RESOLUTION_J = 0.001


def adjustment_resolution_j(window_sec: float, baseline_sec: float) -> float:
    """How far below zero one device's adjusted energy can fall from counter resolution alone.

    Two reads bound the window's energy, two the baseline's, whose error scales with the
    window over the baseline interval.
    """
    scale = window_sec / baseline_sec if baseline_sec > 0 else 0.0
    return 2 * COUNTER_RESOLUTION_J * (1.0 + scale)


def baseline_summary(record: BaselineRecord) -> str:
    """One line for logs."""
    if record.method == "unavailable":
        return f"baseline unavailable: {record.unavailable_reason}"
    age = f", {record.cache_age_sec:.0f} s old" if record.cache_age_sec is not None else ""
    return (f"baseline {record.method}: {record.power_w:.1f} W idle over "
            f"{len(record.devices)} device(s) ({record.energy_source}{age})")

