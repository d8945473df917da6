"""Split the measured window's time and energy into prefill and decode.

Every batch has a prefill phase (from the start of ``generate`` to its first token) and a
decode phase (from the first token to the end). Their energies come from the energy source's
sampled points, interpolated at the step stamps (``WindowResult.energy_between``). Phases
shorter than the sample interval get the average power of the samples around them, so the
split is an estimate even when the total is a counter reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llem.domain.metrics import PhaseEnergy
from llem.inference.generation import BatchOutcome

METHOD = "sampled_energy_interpolated_at_step_stamps"


def split_phases(
    outcomes: Sequence[BatchOutcome], window: Any, energies: bool = True
) -> PhaseEnergy:
    """Prefill and decode time of all batches, and their energies when the window has them.

    ``energies=False`` (``energy.phase_split: false``) records the times only: no sampler ran
    for the split, so its energies are null with that reason.
    """
    prefill: list[tuple[float, float]] = []
    decode: list[tuple[float, float]] = []
    for outcome in outcomes:
        if not outcome.step_secs:
            continue
        first = outcome.step_secs[0]
        prefill.append((outcome.start_sec, first))
        decode.append((first, outcome.end_sec))
    prefill_sec = sum(b - a for a, b in prefill)
    decode_sec = sum(b - a for a, b in decode)
    if not energies:
        return PhaseEnergy(
            prefill_energy_j=None, decode_energy_j=None, prefill_time_sec=prefill_sec,
            decode_time_sec=decode_sec, method=METHOD,
            unavailable_reason="energy.phase_split is false: the energy was not split",
        )
    if window.total_energy_j is None:
        return PhaseEnergy(
            prefill_energy_j=None, decode_energy_j=None, prefill_time_sec=prefill_sec,
            decode_time_sec=decode_sec, method=METHOD,
            unavailable_reason=window.unavailable_reason or "energy was not measured",
        )
    prefill_j = _sum_between(window, prefill)
    decode_j = _sum_between(window, decode)
    reason = None
    if prefill_j is None or decode_j is None:
        reason = (
            "the energy source gave no sampled points to interpolate between (sampler "
            "samples are needed; time series or keep_samples off?)"
        )
        prefill_j = decode_j = None
    return PhaseEnergy(
        prefill_energy_j=prefill_j, decode_energy_j=decode_j, prefill_time_sec=prefill_sec,
        decode_time_sec=decode_sec, method=METHOD, unavailable_reason=reason,
    )


def _sum_between(window: Any, intervals: list[tuple[float, float]]) -> float | None:
    total = 0.0
    for start, end in intervals:
        part = window.energy_between(start, end)
        if part is None:
            return None
        total += part
    return total
