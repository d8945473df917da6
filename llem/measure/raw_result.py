"""One rank's raw result, built block by block from what its measured run saw.

Each builder makes one block of :class:`~llem.domain.experiment.RawProcessResult` (energy,
inference metrics, compute and memory, extended efficiency, warnings) from typed inputs;
:func:`build_raw_result` puts the blocks together. Whatever was not measured is None, never 0.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llem.config.campaign import ExperimentSpec
from llem.constants import WRITTEN_BY_LLEM
from llem.domain.baseline import BaselineRecord
from llem.domain.environment import EnvironmentMetadata
from llem.domain.experiment import RawProcessResult, Timestamps
from llem.domain.latency import latency_statistics, request_latency_metrics
from llem.domain.metrics import (
    BatchEfficiencyMetrics,
    ComputeMetrics,
    EnergyMetrics,
    ExtendedEfficiencyMetrics,
    InferenceMetrics,
    LatencyMeasurements,
    LatencyStatistics,
    MemoryEfficiencyMetrics,
    WarmupResult,
)
from llem.energy.select import EnergySelection
from llem.inference.devices import DevicePlan
from llem.inference.distributed import RankInfo
from llem.inference.flops import FlopsEstimate, estimate_flops, non_embedding_parameters
from llem.inference.generation import BatchOutcome
from llem.inference.latency import collect_latencies
from llem.inference.loading import LoadedModel
from llem.inference.phases import split_phases
from llem.measure.baseline import energy_breakdown
from llem.measure.window import WindowResult
from llem.stats import ratio_or_none
from llem.version import __version__

if TYPE_CHECKING:
    import torch


@dataclass
class MeasuredPasses:
    """What happened inside the window: every batch's outcome, and the passes over the set."""

    outcomes: list[BatchOutcome]
    repeats: int


@dataclass(frozen=True)
class MeasuredRun:
    """Everything one rank's raw result is built from.

    Attributes:
        spec: the experiment spec (config, hash, campaign, run).
        cycle: the cycle index.
        ranks, plan: which rank this is and where it ran.
        loaded: the model (for its parameters and where it came from).
        environment, warmup: read or measured before the window.
        passes, window: what ran inside the window and what the window measured.
        baseline: the job's idle baseline, or None.
        selection: the energy source the window read.
        extra_warnings: warnings of the prompts and of the energy source choice.
    """

    spec: ExperimentSpec
    cycle: int
    ranks: RankInfo
    plan: DevicePlan
    loaded: LoadedModel
    environment: EnvironmentMetadata
    warmup: WarmupResult
    passes: MeasuredPasses
    window: WindowResult
    baseline: BaselineRecord | None
    selection: EnergySelection
    extra_warnings: list[str]


@dataclass(frozen=True)
class TokenCounts:
    """Tokens of the measured passes."""

    input: int
    output: int

    @property
    def total(self) -> int:
        return self.input + self.output

    @classmethod
    def of(cls, outcomes: list[BatchOutcome]) -> TokenCounts:
        return cls(input=sum(o.input_tokens for o in outcomes),
                   output=sum(o.output_tokens for o in outcomes))


@dataclass(frozen=True)
class MemoryFigures:
    """Memory of the rank's device; on CPU the process's peak resident memory."""

    peak_mb: float
    total_mb: float
    model_mb: float
    device_name: str
    on_cuda: bool


def memory_figures(plan: DevicePlan, model: torch.nn.Module) -> MemoryFigures:
    """Peak and total memory of the device, and the model's parameter memory."""
    model_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    if not plan.is_cuda:  # process peak resident memory: the closest honest figure on CPU
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return MemoryFigures(peak_mb, 0.0, model_mb, "cpu", on_cuda=False)
    import torch

    return MemoryFigures(
        peak_mb=torch.cuda.max_memory_allocated(plan.device) / 2**20,
        total_mb=torch.cuda.get_device_properties(plan.device).total_memory / 2**20,
        model_mb=model_mb, device_name=torch.cuda.get_device_name(plan.device), on_cuda=True,
    )


def _sum_kind(window: WindowResult, kind: str) -> float | None:
    """Energy of one device kind, or None if any such device was unmeasured (or none exist)."""
    values = [d.energy_j for d in window.device_energy if d.kind == kind]
    if not values or any(v is None for v in values):
        return None
    return float(sum(v for v in values if v is not None))


def energy_metrics(window: WindowResult, tokens: TokenCounts) -> EnergyMetrics:
    """Energy of the window, by device kind, and per token."""
    duration = window.duration_sec
    gpu_j, cpu_j = _sum_kind(window, "gpu"), _sum_kind(window, "cpu")
    return EnergyMetrics(
        total_energy_j=window.total_energy_j,
        gpu_energy_j=gpu_j,
        cpu_energy_j=cpu_j,
        ram_energy_j=_sum_kind(window, "dram"),
        gpu_power_w=ratio_or_none(gpu_j, duration),
        cpu_power_w=ratio_or_none(cpu_j, duration),
        duration_sec=duration,
        energy_per_token_j=ratio_or_none(window.total_energy_j, tokens.total),
        energy_source=window.energy_source,
        unavailable_reason=window.unavailable_reason,
    )


def inference_metrics(
    tokens: TokenCounts,
    duration_sec: float,
    latencies: LatencyMeasurements,
    stats: LatencyStatistics | None,
) -> InferenceMetrics:
    """Tokens, throughput and latency samples of the measured passes."""
    total = tokens.total
    return InferenceMetrics(
        total_tokens=total,
        input_tokens=tokens.input,
        output_tokens=tokens.output,
        inference_time_sec=duration_sec,
        tokens_per_second=total / duration_sec,
        latency_per_token_ms=duration_sec * 1000.0 / total if total else 0.0,
        time_to_first_token_ms=stats.ttft_mean_ms if stats else None,
        latency_measurements=latencies.model_dump(mode="json"),
        output_tokens_per_second=tokens.output / duration_sec,
    )


def compute_metrics(
    flops: FlopsEstimate,
    memory: MemoryFigures,
    tokens: TokenCounts,
    duration_sec: float,
    precision: str,
) -> ComputeMetrics:
    """FLOPs estimate and memory figures."""
    return ComputeMetrics(
        flops_total=flops.total,
        flops_per_token=flops.total / tokens.total if tokens.total else 0.0,
        flops_per_second=flops.total / duration_sec,
        peak_memory_mb=memory.peak_mb,
        model_memory_mb=memory.model_mb,
        flops_method=flops.method,
        flops_confidence=flops.confidence,
        compute_precision=precision,
        flops_prefill=flops.prefill,
        flops_decode=flops.decode,
    )


def _mean_tpot_ms(outcomes: list[BatchOutcome]) -> float | None:
    """Mean time per output token after the first, over requests with more than one token."""
    tpot = [
        (e2e - ttft) / (n - 1)
        for o in outcomes
        for n, e2e, ttft in zip(o.output_counts, o.e2e_ms(), [o.ttft_ms] * o.batch_size,
                                strict=True)
        if n > 1 and ttft is not None
    ]
    return sum(tpot) / len(tpot) if tpot else None


def extended_metrics(
    outcomes: list[BatchOutcome],
    tokens: TokenCounts,
    memory: MemoryFigures,
    stats: LatencyStatistics | None,
    batch_size: int,
) -> ExtendedEfficiencyMetrics:
    """Time per output token, memory use, batch use and request latency."""
    num_requests = sum(o.batch_size for o in outcomes)
    padding = sum(o.padding_tokens for o in outcomes)
    return ExtendedEfficiencyMetrics(
        tpot_ms=_mean_tpot_ms(outcomes),
        memory=MemoryEfficiencyMetrics(
            total_vram_mb=memory.total_mb, model_memory_mb=memory.model_mb,
            peak_memory_mb=memory.peak_mb,
            inference_memory_mb=(memory.peak_mb - memory.model_mb) if memory.on_cuda else None,
            tokens_per_gb_vram=None,
        ),
        batch=BatchEfficiencyMetrics(
            effective_batch_size=num_requests / len(outcomes),
            batch_utilisation=num_requests / (len(outcomes) * batch_size),
            padding_overhead=padding / (padding + tokens.input) if tokens.input else None,
            num_batches=len(outcomes),
        ),
        request_latency=request_latency_metrics(stats),
    )


def measurement_warnings(run: MeasuredRun) -> list[str] | None:
    """The run's warnings, ordered and unique, plus a warmup that did not converge."""
    warnings = list(dict.fromkeys([*run.extra_warnings, *run.window.warnings]))
    warmup, cfg = run.warmup, run.spec.config
    if cfg.warmup.enabled and not warmup.converged and warmup.mode == "convergence":
        warnings.append(
            f"warmup did not converge (cv {warmup.final_cv:.3f} >= {warmup.target_cv} after "
            f"{warmup.iterations_completed} iterations)"
        )
    return warnings or None


def energy_tracking_failed(run: MeasuredRun) -> bool:
    """Energy is unmeasured and no other rank's figure covers it.

    A host-wide meter (RAPL) is read by local rank 0 only; the other ranks' energy is in
    its figure, so their "none" is not a failure.
    """
    if run.window.total_energy_j is not None:
        return False
    covered = (
        run.selection.name == "none" and not run.plan.cuda_indices
        and run.ranks.local_rank != 0 and run.spec.config.energy.backend in ("auto", "rapl")
    )
    return not covered


def build_raw_result(run: MeasuredRun) -> RawProcessResult:
    """The rank's RawProcessResult (schema v3)."""
    spec, cfg, window, outcomes = run.spec, run.spec.config, run.window, run.passes.outcomes
    tokens = TokenCounts.of(outcomes)
    duration = window.duration_sec
    latencies = collect_latencies(outcomes)
    stats = latency_statistics(latencies)
    flops = estimate_flops(non_embedding_parameters(run.loaded.model), tokens.input,
                           tokens.output)
    memory = memory_figures(run.plan, run.loaded.model)
    return RawProcessResult(
        experiment_id=spec.experiment_id, config_name=cfg.config_name,
        model_name=cfg.model_name, config_hash=spec.config_hash,
        run_id=spec.run_id, campaign=spec.campaign, cycle_id=run.cycle,
        cycle_run_info={"cycle_id": run.cycle, "total_cycles": cfg.num_cycles},
        effective_config=cfg.model_dump(mode="json"), config_warnings=[],
        backend_version=_transformers_version(), llem_version=__version__,
        written_by=WRITTEN_BY_LLEM,
        process_index=run.ranks.rank, gpu_id=run.plan.gpu_id, gpu_name=memory.device_name,
        environment=run.environment, model_source=run.loaded.source, warmup_result=run.warmup,
        timestamps=Timestamps(start=window.start_time, end=window.end_time,
                              duration_sec=duration),
        measured_window=window.measured_window(prompt_set_repeats=run.passes.repeats),
        inference_metrics=inference_metrics(tokens, duration, latencies, stats),
        latency_stats=stats,
        per_request_latencies_ms=list(latencies.e2e_ms),
        output_tokens=tokens.output,
        output_tokens_per_second=tokens.output / duration,
        energy_metrics=energy_metrics(window, tokens),
        energy_measurement_warning=window.unavailable_reason,
        energy_tracking_failed=energy_tracking_failed(run),
        energy_source=window.energy_source,
        energy_unavailable_reason=window.unavailable_reason,
        device_energy=list(window.device_energy),
        energy_per_output_token_j=ratio_or_none(window.total_energy_j, tokens.output),
        energy_breakdown=energy_breakdown(window, run.baseline),
        phase_energy=split_phases(outcomes, window, energies=cfg.energy.phase_split),
        compute_metrics=compute_metrics(flops, memory, tokens, duration, cfg.precision),
        extended_metrics=extended_metrics(outcomes, tokens, memory, stats,
                                          cfg.batching.batch_size),
        gpu_utilisation_samples=[
            s.gpu_utilization_pct for s in window.samples if s.gpu_utilization_pct is not None
        ],
        thermal_throttle=window.throttle,
        instrumentation=window.instrumentation,
        measurement_warnings=measurement_warnings(run),
    )


def _transformers_version() -> str | None:
    try:
        import transformers
    except ImportError:
        return None
    return str(transformers.__version__)
