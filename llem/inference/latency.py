"""Latency samples of the measured run, from the stamps of its generated batches.

Samples come from the per-step stamps of each batch (``measurement_mode =
"per_request_batch"``): every request of a batch shares the batch's time to first token,
and its inter-token latencies are the gaps between the decoding steps that produced its
tokens. The statistics of the samples are built in :mod:`llem.domain.latency` (shared with
aggregation).
"""

from __future__ import annotations

from collections.abc import Iterable

from llem.domain.metrics import LatencyMeasurements
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
