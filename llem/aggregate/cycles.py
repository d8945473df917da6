"""Cycles to statistics: mean, sample std, 95 % interval of the mean and CV across cycles.

Energy, throughput, latency and J per output token are positive, so their intervals are taken
on the log scale (:func:`llem.stats.summarize`): they never leave the positive axis, however
few the cycles. A figure is null when any cycle's is (one unmeasured cycle, no statistics).
"""

from __future__ import annotations

from collections.abc import Sequence

from llem.config.campaign import ExperimentSpec
from llem.domain.experiment import (
    AggregatedResult,
    CycleMetadata,
    CycleStatistics,
    MultiCycleResult,
)
from llem.errors import AggregationError
from llem.stats import summarize, summarize_or_none


def aggregate_cycles(
    cycles: Sequence[AggregatedResult], spec: ExperimentSpec
) -> MultiCycleResult:
    """Statistics across cycles; energy figures are null when any cycle's energy is."""
    if len(cycles) < 2:
        raise AggregationError("a multi-cycle result needs at least two cycles")
    cycles = sorted(cycles, key=lambda c: c.cycle_id or 0)
    start = min(c.start_time for c in cycles)
    end = max(c.end_time for c in cycles)
    return MultiCycleResult(
        experiment_id=spec.experiment_id,
        backend=cycles[0].backend,
        backend_version=cycles[0].backend_version,
        num_cycles=len(cycles),
        statistics=cycle_statistics(cycles),
        cycle_results=list(cycles),
        cycle_metadata=[
            CycleMetadata(
                cycle_id=c.cycle_id if c.cycle_id is not None else i,
                timestamp=c.start_time,
                gpu_temperature_c=c.thermal_throttle.max_temperature_c
                if c.thermal_throttle else None,
            )
            for i, c in enumerate(cycles)
        ],
        start_time=start,
        end_time=end,
        total_duration_sec=(end - start).total_seconds(),
        effective_config=spec.config.model_dump(mode="json"),
        config_warnings=sorted({w for c in cycles for w in c.config_warnings}),
        config_hash=spec.config_hash,
        llem_version=cycles[0].llem_version,
        written_by=cycles[0].written_by,
    )


def cycle_statistics(cycles: Sequence[AggregatedResult]) -> CycleStatistics:
    """Mean, std, 95 % interval and CV of each figure over ``cycles`` (at least two)."""

    def tokens_per_sec(c: AggregatedResult) -> float:
        return c.total_tokens / (c.end_time - c.start_time).total_seconds()

    throughput = summarize([tokens_per_sec(c) for c in cycles])
    energy = summarize_or_none([c.total_energy_j for c in cycles])
    output = summarize_or_none([c.output_tokens_per_second for c in cycles])
    per_token = summarize_or_none([c.energy_per_output_token_j for c in cycles])
    efficiency = summarize_or_none([
        None if c.total_energy_j in (None, 0) else c.total_tokens / c.total_energy_j
        for c in cycles
    ])
    latency = summarize_or_none(
        [c.latency_stats.e2e_mean_ms if c.latency_stats else None for c in cycles]
    )
    return CycleStatistics(
        num_cycles=len(cycles),
        energy_mean_j=energy.mean if energy else None,
        energy_std_j=energy.std if energy else None,
        energy_ci_95_lower=energy.ci_lower if energy else None,
        energy_ci_95_upper=energy.ci_upper if energy else None,
        energy_cv=energy.cv if energy else None,
        throughput_mean_tps=throughput.mean,
        throughput_std_tps=throughput.std,
        throughput_ci_95_lower=throughput.ci_lower,
        throughput_ci_95_upper=throughput.ci_upper,
        throughput_cv=throughput.cv,
        efficiency_mean_tpj=efficiency.mean if efficiency else None,
        efficiency_std_tpj=efficiency.std if efficiency else None,
        latency_mean_ms=latency.mean if latency else None,
        latency_std_ms=latency.std if latency else None,
        latency_ci_95_lower=latency.ci_lower if latency else None,
        latency_ci_95_upper=latency.ci_upper if latency else None,
        output_throughput_mean_tps=output.mean if output else None,
        output_throughput_std_tps=output.std if output else None,
        output_throughput_ci_95_lower=output.ci_lower if output else None,
        output_throughput_ci_95_upper=output.ci_upper if output else None,
        output_throughput_cv=output.cv if output else None,
        energy_per_output_token_mean_j=per_token.mean if per_token else None,
        energy_per_output_token_std_j=per_token.std if per_token else None,
        energy_per_output_token_ci_95_lower=per_token.ci_lower if per_token else None,
        energy_per_output_token_ci_95_upper=per_token.ci_upper if per_token else None,
        energy_per_output_token_cv=per_token.cv if per_token else None,
    )
