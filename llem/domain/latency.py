"""Latency statistics of a result from its per-request latency samples.

The measured run summarises one process's samples; aggregation merges the samples of every
rank and summarises them once (percentiles of all samples, never an average of per-rank
percentiles). Both use these builders, so a figure means the same in a process result and in
an experiment's result.
"""

from __future__ import annotations

from collections.abc import Iterable

from llem.domain.metrics import (
    LatencyMeasurements,
    LatencyStatistics,
    RequestLatencyMetrics,
)
from llem.stats import mean_or_none, percentile, percentile_or_none


def latency_statistics(m: LatencyMeasurements) -> LatencyStatistics | None:
    """Summary of the samples; None when no request produced a token."""
    if not m.ttft_ms:
        return None
    trimmed = m.itl_trimmed_ms
    return LatencyStatistics(
        ttft_mean_ms=sum(m.ttft_ms) / len(m.ttft_ms),
        ttft_median_ms=percentile(m.ttft_ms, 50),
        ttft_p95_ms=percentile(m.ttft_ms, 95),
        ttft_p99_ms=percentile(m.ttft_ms, 99),
        ttft_min_ms=min(m.ttft_ms),
        ttft_max_ms=max(m.ttft_ms),
        ttft_samples=len(m.ttft_ms),
        itl_mean_ms=mean_or_none(trimmed),
        itl_median_ms=percentile_or_none(trimmed, 50),
        itl_p95_ms=percentile_or_none(trimmed, 95),
        itl_p99_ms=percentile_or_none(trimmed, 99),
        itl_samples=len(trimmed),
        itl_full_mean_ms=mean_or_none(m.itl_full_ms),
        itl_full_p99_ms=percentile_or_none(m.itl_full_ms, 99),
        e2e_mean_ms=mean_or_none(m.e2e_ms),
        e2e_median_ms=percentile_or_none(m.e2e_ms, 50),
        e2e_p95_ms=percentile_or_none(m.e2e_ms, 95),
        e2e_p99_ms=percentile_or_none(m.e2e_ms, 99),
        e2e_samples=len(m.e2e_ms),
    )


def merge_measurements(parts: Iterable[LatencyMeasurements]) -> LatencyMeasurements:
    """All samples of several processes in one set (statistics are then taken over all)."""
    merged = LatencyMeasurements(streaming_mode=True)
    for part in parts:
        merged.ttft_ms.extend(part.ttft_ms)
        merged.itl_full_ms.extend(part.itl_full_ms)
        merged.itl_trimmed_ms.extend(part.itl_trimmed_ms)
        merged.e2e_ms.extend(part.e2e_ms)
        merged.request_count += part.request_count
        merged.total_output_tokens += part.total_output_tokens
        merged.measurement_mode = part.measurement_mode
    return merged


def request_latency_metrics(stats: LatencyStatistics | None) -> RequestLatencyMetrics:
    """The end-to-end part of latency statistics, in the extended-metrics shape."""
    if stats is None:
        return RequestLatencyMetrics()
    return RequestLatencyMetrics(
        e2e_latency_mean_ms=stats.e2e_mean_ms,
        e2e_latency_median_ms=stats.e2e_median_ms,
        e2e_latency_p95_ms=stats.e2e_p95_ms,
        e2e_latency_p99_ms=stats.e2e_p99_ms,
        e2e_latency_samples=stats.e2e_samples,
    )
