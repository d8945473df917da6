"""Latency samples of the measured run and their summary statistics.

Samples come from the per-step stamps of each batch (``measurement_mode =
"per_request_batch"``): every request of a batch shares the batch's time to first token,
and its inter-token latencies are the gaps between the decoding steps that produced its
tokens.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from llem.domain.metrics import (
    LatencyMeasurements,
    LatencyStatistics,
    RequestLatencyMetrics,
)
from llem.inference.generation import BatchOutcome


def collect_latencies(outcomes: Iterable[BatchOutcome]) -> LatencyMeasurements:
    """Raw samples over every request of the measured run."""
    ttft: list[float] = []
    itl_full: list[float] = []
    itl_trimmed: list[float] = []
    e2e: list[float] = []
    requests = tokens = 0
    for outcome in outcomes:
        first = outcome.ttft_ms
        for count, gaps, end_ms in zip(
            outcome.output_counts, outcome.itl_ms(), outcome.e2e_ms(), strict=True
        ):
            if count == 0:
                continue
            requests += 1
            tokens += count
            if first is not None:
                ttft.append(first)
            e2e.append(end_ms)
            itl_full.extend(gaps)
            itl_trimmed.extend(gaps[1:-1])
    return LatencyMeasurements(
        ttft_ms=ttft, itl_full_ms=itl_full, itl_trimmed_ms=itl_trimmed, request_count=requests,
        total_output_tokens=tokens, streaming_mode=True, measurement_mode="per_request_batch",
        e2e_ms=e2e,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


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
        itl_mean_ms=_mean(trimmed),
        itl_median_ms=_pct(trimmed, 50),
        itl_p95_ms=_pct(trimmed, 95),
        itl_p99_ms=_pct(trimmed, 99),
        itl_samples=len(trimmed),
        itl_full_mean_ms=_mean(m.itl_full_ms),
        itl_full_p99_ms=_pct(m.itl_full_ms, 99),
        e2e_mean_ms=_mean(m.e2e_ms),
        e2e_median_ms=_pct(m.e2e_ms, 50),
        e2e_p95_ms=_pct(m.e2e_ms, 95),
        e2e_p99_ms=_pct(m.e2e_ms, 99),
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
