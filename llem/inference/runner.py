"""The measured run of one rank: load, warm up, generate under a measurement window, record.

Order matters: the model is loaded and warmed up first (never measured), then all ranks meet
at a barrier and the window covers generation only. If one pass over the prompt set ends
before ``energy.min_window_sec``, the set runs again (the repeats are counted) until every
rank's window is long enough.

Files (``out_dir`` is one cycle's folder)::

    warmup.json                      rank 0's WarmupResult
    raw/process_<rank>.json          RawProcessResult (schema v3)
    timeseries/process_<rank>.parquet  when timeseries.enabled and timeseries.save
    raw/process_<rank>.done          written last: this rank finished

A raw result's ``timeseries_path`` is relative to the folder of the raw file
(``../timeseries/process_<rank>.parquet``).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem import __version__
from llem.config.campaign import ExperimentSpec
from llem.constants import WRITTEN_BY_LLEM
from llem.domain.environment import EnvironmentMetadata
from llem.domain.experiment import RawProcessResult, Timestamps
from llem.domain.metrics import (
    BatchEfficiencyMetrics,
    ComputeMetrics,
    EnergyMetrics,
    ExtendedEfficiencyMetrics,
    InferenceMetrics,
    MemoryEfficiencyMetrics,
    WarmupResult,
)
from llem.errors import MeasurementError
from llem.inference.batching import Batch, encode_prompts, shard_and_batch
from llem.inference.devices import DevicePlan, plan_device
from llem.inference.distributed import Coordinator, RankInfo
from llem.inference.flops import estimate_flops, non_embedding_parameters
from llem.inference.generation import BatchOutcome, generate_batch, generation_kwargs
from llem.inference.latency import (
    collect_latencies,
    latency_statistics,
    request_latency_metrics,
)
from llem.inference.loading import LoadedModel, load_model
from llem.inference.phases import split_phases
from llem.inference.prompts import load_prompts
from llem.inference.warmup import run_warmup
from llem.io import write_json_atomic, write_text_atomic
from llem.measure.orphan import stop_if_orphaned

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Progress lines for the job's log."""
    print(f"llem: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class MeasureInputs:
    """Everything ``llem measure`` reads, as paths and the parsed spec."""

    spec: ExperimentSpec
    models_dir: Path
    out_dir: Path
    cycle: int = 0
    environment_path: Path | None = None
    baseline_path: Path | None = None


def raw_result_path(out_dir: Path, rank: int) -> Path:
    return out_dir / "raw" / f"process_{rank}.json"


def done_marker_path(out_dir: Path, rank: int) -> Path:
    return out_dir / "raw" / f"process_{rank}.done"


def timeseries_file_path(out_dir: Path, rank: int) -> Path:
    return out_dir / "timeseries" / f"process_{rank}.parquet"


@dataclass
class MeasuredPasses:
    """What happened inside the window."""

    outcomes: list[BatchOutcome]
    repeats: int


def measure(
    inputs: MeasureInputs,
    ranks: RankInfo | None = None,
    log: Log = stderr_log,
    on_loaded: Callable[[LoadedModel], None] | None = None,
    exclusive: Callable[[], None] | None = None,
) -> RawProcessResult:
    """Run one rank's measurement and write its files; returns the raw result.

    ``on_loaded`` is called with the loaded model before warmup (e.g. to attach hooks that
    observe what the run does to the model). ``exclusive`` is called after loading, before
    warmup: it returns once the host is this run's alone (the host lock, held to the end).
    """
    import torch

    from llem.energy.select import open_energy_source
    from llem.measure.window import MeasurementWindow

    ranks = ranks or RankInfo()
    cfg = inputs.spec.config
    if cfg.num_processes != ranks.world_size:
        raise MeasurementError(
            f"num_processes is {cfg.num_processes} but {ranks.world_size} process(es) run; "
            "start `llem measure` without --rank-worker and it launches torchrun itself"
        )
    plan = plan_device(cfg, ranks.local_rank)
    if plan.is_cuda:
        torch.cuda.set_device(plan.device)
    coordinator = Coordinator(ranks, use_cuda=plan.is_cuda)
    try:
        environment = _read_environment(inputs.environment_path, plan)
        tag = f"[rank {ranks.rank}] " if ranks.world_size > 1 else ""
        log(f"{tag}loading {cfg.model_name} on {plan.device} ({cfg.precision})")
        loaded = load_model(cfg, inputs.models_dir, plan)
        if on_loaded is not None:
            on_loaded(loaded)
        batches, prompt_warnings = _prepare_batches(inputs, loaded, ranks)
        gen_kwargs = generation_kwargs(cfg.decoder, loaded.model, loaded.tokenizer)
        sync = torch.cuda.synchronize if plan.is_cuda else None

        def run(batch: Batch) -> BatchOutcome:
            return generate_batch(loaded.model, batch, gen_kwargs, plan.device, sync)

        if exclusive is not None:
            exclusive()
        torch.manual_seed(cfg.decoder.seed)
        warmup = run_warmup(
            lambda i: run(batches[i % len(batches)]).latency_ms, cfg.warmup,
            log=lambda m: log(tag + m),
        )
        if ranks.rank == 0:
            write_json_atomic(inputs.out_dir / "warmup.json", warmup.model_dump(mode="json"))

        selection = open_energy_source(cfg.energy, cuda_device_indices=plan.cuda_indices,
                                       rank=ranks.rank)
        try:
            baseline = _read_baseline(inputs.baseline_path, selection.device_ids,
                                      environment.host)
            window = MeasurementWindow(  # the sampler starts only if something needs it
                selection, sample_interval_ms=cfg.timeseries.sample_interval_ms,
                keep_samples=cfg.timeseries.enabled, min_window_sec=cfg.energy.min_window_sec,
                sync=sync, phase_split=cfg.energy.phase_split,
            )
            if plan.is_cuda:
                torch.cuda.reset_peak_memory_stats(plan.device)
            torch.manual_seed(cfg.decoder.seed + ranks.rank)
            coordinator.barrier()
            window.begin()
            passes = _measured_passes(batches, run, cfg.energy.min_window_sec, coordinator,
                                      lambda m: log(tag + m))
            result = window.end()
            raw = _build_result(inputs, ranks, plan, loaded, environment, warmup, passes,
                                result, baseline, selection,
                                [*prompt_warnings, *selection.warnings])
            _write_outputs(inputs, ranks, cfg, raw, result)
        finally:
            selection.close()
        log(f"{tag}measured {raw.output_tokens} output tokens in "
            f"{raw.timestamps.duration_sec:.2f} s ({passes.repeats} pass(es))")
        return raw
    finally:
        coordinator.close()


def _read_environment(path: Path | None, plan: DevicePlan) -> EnvironmentMetadata:
    if path is None:
        from llem.measure.environment import collect_environment

        return collect_environment(cuda_device_indices=plan.cuda_indices or None)
    try:
        return EnvironmentMetadata.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"{path}: cannot read the environment file: {exc}") from exc


def _read_baseline(path: Path | None, device_ids: list[str], host: str | None) -> Any:
    """The job's baseline, refused when it was measured on other devices (or host)."""
    if path is None:
        return None
    from llem.measure.baseline import read_baseline

    record = read_baseline(path)
    record.check_devices(device_ids, host=host)
    record.raise_if_required()
    return record


def _prepare_batches(
    inputs: MeasureInputs, loaded: LoadedModel, ranks: RankInfo
) -> tuple[list[Batch], list[str]]:
    cfg = inputs.spec.config
    prompts = load_prompts(cfg.prompts)
    if len(prompts.texts) < ranks.world_size:
        raise MeasurementError(
            f"num_prompts ({len(prompts.texts)}) is smaller than num_processes "
            f"({ranks.world_size}): some ranks would have nothing to do"
        )
    encoded = encode_prompts(prompts.texts, loaded.tokenizer, cfg.prompts)
    batches = shard_and_batch(encoded, cfg.batching, ranks.rank, ranks.world_size)
    return batches, prompts.warnings


def _measured_passes(
    batches: list[Batch],
    run: Callable[[Batch], BatchOutcome],
    min_window_sec: float,
    coordinator: Coordinator,
    log: Log,
    clock: Callable[[], float] = time.monotonic,
) -> MeasuredPasses:
    """Run the rank's prompt set, again and again until every rank reached the minimum.

    The minimum is checked after each whole pass, so a window holds whole passes only.
    """
    outcomes: list[BatchOutcome] = []
    start = clock()
    repeats = 0
    next_report = start + 10.0
    while True:
        repeats += 1
        for i, batch in enumerate(batches, start=1):
            outcomes.append(run(batch))
            now = clock()
            if now >= next_report or (repeats == 1 and i == len(batches)):
                log(f"measured pass {repeats}: batch {i}/{len(batches)}, "
                    f"{now - start:.1f} s elapsed")
                next_report = now + 10.0
        shortest = coordinator.min(clock() - start)
        if shortest >= min_window_sec:
            return MeasuredPasses(outcomes=outcomes, repeats=repeats)


def _sum_kind(result: Any, kind: str) -> float | None:
    """Energy of one device kind, or None if any such device was unmeasured (or none exist)."""
    values = [d.energy_j for d in result.device_energy if d.kind == kind]
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))


def _per(value: float | None, count: float) -> float | None:
    return None if value is None or count <= 0 else value / count


def _build_result(
    inputs: MeasureInputs,
    ranks: RankInfo,
    plan: DevicePlan,
    loaded: LoadedModel,
    environment: EnvironmentMetadata,
    warmup: WarmupResult,
    passes: MeasuredPasses,
    result: Any,
    baseline: Any,
    selection: Any,
    extra_warnings: list[str],
) -> RawProcessResult:
    import torch

    from llem.measure.baseline import energy_breakdown

    spec, cfg = inputs.spec, inputs.spec.config
    outcomes = passes.outcomes
    input_tokens = sum(o.input_tokens for o in outcomes)
    output_tokens = sum(o.output_tokens for o in outcomes)
    total_tokens = input_tokens + output_tokens
    duration = result.duration_sec
    energy_j = result.total_energy_j

    latencies = collect_latencies(outcomes)
    stats = latency_statistics(latencies)
    params = non_embedding_parameters(loaded.model)
    flops = estimate_flops(params, input_tokens, output_tokens)
    model_mb = sum(p.numel() * p.element_size() for p in loaded.model.parameters()) / 2**20
    if plan.is_cuda:
        peak_mb = torch.cuda.max_memory_allocated(plan.device) / 2**20
        total_mb = torch.cuda.get_device_properties(plan.device).total_memory / 2**20
        gpu_name = torch.cuda.get_device_name(plan.device)
    else:  # process peak resident memory: the closest honest figure on CPU
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        total_mb = 0.0
        gpu_name = "cpu"

    warnings = list(dict.fromkeys([*extra_warnings, *result.warnings]))  # ordered, unique
    if cfg.warmup.enabled and not warmup.converged and warmup.mode == "convergence":
        warnings.append(
            f"warmup did not converge (cv {warmup.final_cv:.3f} >= {warmup.target_cv} after "
            f"{warmup.iterations_completed} iterations)"
        )
    num_requests = sum(o.batch_size for o in outcomes)
    padding = sum(o.padding_tokens for o in outcomes)
    tpot = [
        (e2e - ttft) / (n - 1)
        for o in outcomes
        for n, e2e, ttft in zip(o.output_counts, o.e2e_ms(), [o.ttft_ms] * o.batch_size,
                                strict=True)
        if n > 1 and ttft is not None
    ]
    gpu_utilisation = [
        s.gpu_utilization_pct for s in (result.samples or [])
        if getattr(s, "gpu_utilization_pct", None) is not None
    ]
    breakdown = energy_breakdown(result, baseline)
    # A host-wide meter (RAPL) is read by local rank 0 only; the other ranks' energy is in
    # its figure, so their "none" is not a failure.
    covered = (
        energy_j is None and selection.name == "none" and not plan.cuda_indices
        and ranks.local_rank != 0 and cfg.energy.backend in ("auto", "rapl")
    )

    return RawProcessResult(
        experiment_id=spec.experiment_id,
        backend_version=_transformers_version(),
        process_index=ranks.rank,
        gpu_id=plan.gpu_id,
        gpu_name=gpu_name,
        energy_measurement_warning=result.unavailable_reason,
        energy_tracking_failed=energy_j is None and not covered,
        config_name=cfg.config_name,
        model_name=cfg.model_name,
        timestamps=Timestamps(start=result.start_time, end=result.end_time,
                              duration_sec=duration),
        inference_metrics=InferenceMetrics(
            total_tokens=total_tokens,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            inference_time_sec=duration,
            tokens_per_second=total_tokens / duration,
            latency_per_token_ms=duration * 1000.0 / total_tokens if total_tokens else 0.0,
            time_to_first_token_ms=stats.ttft_mean_ms if stats else None,
            latency_measurements=latencies.model_dump(mode="json"),
            output_tokens_per_second=output_tokens / duration,
        ),
        energy_metrics=EnergyMetrics(
            total_energy_j=energy_j,
            gpu_energy_j=_sum_kind(result, "gpu"),
            cpu_energy_j=_sum_kind(result, "cpu"),
            ram_energy_j=_sum_kind(result, "dram"),
            gpu_power_w=_per(_sum_kind(result, "gpu"), duration),
            cpu_power_w=_per(_sum_kind(result, "cpu"), duration),
            duration_sec=duration,
            energy_per_token_j=_per(energy_j, total_tokens),
            energy_source=result.energy_source,
            unavailable_reason=result.unavailable_reason,
        ),
        compute_metrics=ComputeMetrics(
            flops_total=flops.total,
            flops_per_token=flops.total / total_tokens if total_tokens else 0.0,
            flops_per_second=flops.total / duration,
            peak_memory_mb=peak_mb,
            model_memory_mb=model_mb,
            flops_method=flops.method,
            flops_confidence=flops.confidence,
            compute_precision=cfg.precision,
            flops_prefill=flops.prefill,
            flops_decode=flops.decode,
        ),
        effective_config=cfg.model_dump(mode="json"),
        config_warnings=[],
        cycle_run_info={"cycle_id": inputs.cycle, "total_cycles": cfg.num_cycles},
        extended_metrics=ExtendedEfficiencyMetrics(
            tpot_ms=sum(tpot) / len(tpot) if tpot else None,
            memory=MemoryEfficiencyMetrics(
                total_vram_mb=total_mb, model_memory_mb=model_mb, peak_memory_mb=peak_mb,
                inference_memory_mb=(peak_mb - model_mb) if plan.is_cuda else None,
                tokens_per_gb_vram=None,
            ),
            batch=BatchEfficiencyMetrics(
                effective_batch_size=num_requests / len(outcomes),
                batch_utilisation=num_requests / (len(outcomes) * cfg.batching.batch_size),
                padding_overhead=padding / (padding + input_tokens) if input_tokens else None,
                num_batches=len(outcomes),
            ),
            request_latency=request_latency_metrics(stats),
        ),
        per_request_latencies_ms=list(latencies.e2e_ms),
        gpu_utilisation_samples=gpu_utilisation,
        environment=environment,
        energy_breakdown=breakdown,
        thermal_throttle=result.throttle,
        warmup_result=warmup,
        latency_stats=stats,
        config_hash=spec.config_hash,
        llem_version=__version__,
        written_by=WRITTEN_BY_LLEM,
        run_id=spec.run_id,
        campaign=spec.campaign,
        energy_source=result.energy_source,
        energy_unavailable_reason=result.unavailable_reason,
        device_energy=list(result.device_energy),
        measured_window=result.measured_window(prompt_set_repeats=passes.repeats),
        output_tokens=output_tokens,
        output_tokens_per_second=output_tokens / duration,
        energy_per_output_token_j=_per(energy_j, output_tokens),
        phase_energy=split_phases(outcomes, result, energies=cfg.energy.phase_split),
        instrumentation=result.instrumentation,
        model_source=loaded.source,
        measurement_warnings=warnings or None,
        cycle_id=inputs.cycle,
    )


def _write_outputs(
    inputs: MeasureInputs, ranks: RankInfo, cfg: Any, raw: RawProcessResult, result: Any
) -> None:
    """Time series, then the raw result, then the completion marker (last)."""
    stop_if_orphaned()  # an orphan exits here: nothing of it looks complete
    if cfg.timeseries.enabled and cfg.timeseries.save:
        from llem.measure.timeseries import write_timeseries

        write_timeseries(result, timeseries_file_path(inputs.out_dir, ranks.rank), ranks.rank)
        raw.timeseries_path = f"../timeseries/process_{ranks.rank}.parquet"
    write_json_atomic(raw_result_path(inputs.out_dir, ranks.rank), raw.model_dump(mode="json"))
    write_text_atomic(done_marker_path(inputs.out_dir, ranks.rank), "done\n")


def _transformers_version() -> str | None:
    try:
        import transformers
    except ImportError:
        return None
    return str(transformers.__version__)
