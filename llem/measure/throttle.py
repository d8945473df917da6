"""Throttling from sampled NVML clock-event reason bits.

NVML renamed "clocks throttle reasons" to "clocks event reasons" (CUDA 12); the bits are the
same. thermal = hardware or software thermal slowdown (the earlier tool looked at the software
bit only); power = hardware power brake or software power cap; hardware slowdown = the generic
HwSlowdown bit, which NVML sets for either cause without saying which. Any of them is
throttling; :func:`llem.domain.metrics.throttle_reasons` names them for every output.
Duration = throttled ticks x sample interval; timestamps are seconds since the window start.
"""

from __future__ import annotations

from llem.domain.metrics import ThermalThrottleInfo
from llem.energy.base import DeviceSample

GPU_IDLE = 0x1
APPLICATIONS_CLOCKS_SETTING = 0x2
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SYNC_BOOST = 0x10
SW_THERMAL_SLOWDOWN = 0x20
HW_THERMAL_SLOWDOWN = 0x40
HW_POWER_BRAKE_SLOWDOWN = 0x80
DISPLAY_CLOCK_SETTING = 0x100

#: bit -> (current NVML name, legacy NVML name)
REASON_NAMES: dict[int, tuple[str, str]] = {
    GPU_IDLE: ("nvmlClocksEventReasonGpuIdle", "nvmlClocksThrottleReasonGpuIdle"),
    APPLICATIONS_CLOCKS_SETTING: (
        "nvmlClocksEventReasonApplicationsClocksSetting",
        "nvmlClocksThrottleReasonApplicationsClocksSetting",
    ),
    SW_POWER_CAP: ("nvmlClocksEventReasonSwPowerCap", "nvmlClocksThrottleReasonSwPowerCap"),
    HW_SLOWDOWN: ("nvmlClocksEventReasonHwSlowdown", "nvmlClocksThrottleReasonHwSlowdown"),
    SYNC_BOOST: ("nvmlClocksEventReasonSyncBoost", "nvmlClocksThrottleReasonSyncBoost"),
    SW_THERMAL_SLOWDOWN: (
        "nvmlClocksEventReasonSwThermalSlowdown",
        "nvmlClocksThrottleReasonSwThermalSlowdown",
    ),
    HW_THERMAL_SLOWDOWN: (
        "nvmlClocksEventReasonHwThermalSlowdown",
        "nvmlClocksThrottleReasonHwThermalSlowdown",
    ),
    HW_POWER_BRAKE_SLOWDOWN: (
        "nvmlClocksEventReasonHwPowerBrakeSlowdown",
        "nvmlClocksThrottleReasonHwPowerBrakeSlowdown",
    ),
    DISPLAY_CLOCK_SETTING: (
        "nvmlClocksEventReasonDisplayClockSetting",
        "nvmlClocksThrottleReasonDisplayClockSetting",
    ),
}

THERMAL_BITS = SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN
POWER_BITS = SW_POWER_CAP | HW_POWER_BRAKE_SLOWDOWN
#: Bits that mean the clocks were held down (idle, application clocks and sync boost do not).
THROTTLE_BITS = THERMAL_BITS | POWER_BITS | HW_SLOWDOWN


def reason_names(bits: int, legacy: bool = False) -> list[str]:
    """NVML names of the bits set, current names unless ``legacy``."""
    return [names[1 if legacy else 0] for bit, names in REASON_NAMES.items() if bits & bit]


def throttle_info(
    ticks: list[list[DeviceSample]],
    window_start_sec: float,
    window_end_sec: float,
    interval_sec: float,
) -> ThermalThrottleInfo | None:
    """Throttling seen by the sampler inside the window; None when no tick read reason bits.

    A tick counts as throttled when any device in it reports a throttling bit.
    """
    observed = 0
    throttled = 0
    any_bits = 0
    timestamps: list[float] = []
    max_temp: float | None = None
    for tick in ticks:
        inside = [s for s in tick if window_start_sec <= s.timestamp_sec <= window_end_sec]
        if not inside:
            continue
        for s in inside:
            if s.temperature_c is not None:
                max_temp = s.temperature_c if max_temp is None else max(max_temp, s.temperature_c)
        with_bits = [s for s in inside if s.clock_event_reasons is not None]
        if not with_bits:
            continue
        observed += 1
        bits = 0
        for s in with_bits:
            bits |= s.clock_event_reasons or 0
        if bits & THROTTLE_BITS:
            throttled += 1
            any_bits |= bits
            t_rel = min(s.timestamp_sec for s in with_bits) - window_start_sec
            timestamps.append(round(t_rel, 6))
    if observed == 0:
        return None
    thermal = bool(any_bits & THERMAL_BITS)
    power = bool(any_bits & POWER_BITS)
    return ThermalThrottleInfo(
        detected=throttled > 0,
        thermal=thermal,
        power=power,
        sw_thermal=bool(any_bits & SW_THERMAL_SLOWDOWN),
        hw_thermal=bool(any_bits & HW_THERMAL_SLOWDOWN),
        hw_power=bool(any_bits & HW_POWER_BRAKE_SLOWDOWN),
        sw_power_cap=bool(any_bits & SW_POWER_CAP),
        hw_slowdown=bool(any_bits & HW_SLOWDOWN),
        throttle_duration_sec=min(throttled * interval_sec, window_end_sec - window_start_sec),
        max_temperature_c=max_temp,
        throttle_timestamps=timestamps,
        sample_count=observed,
    )
