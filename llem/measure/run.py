"""The measured run of one rank: load, warm up, generate under a measurement window, record.

This is what ``llem measure`` runs. Order matters: the model is loaded and warmed up first
(never measured), then all ranks meet at a barrier and the window covers generation only.
If one pass over the prompt set ends before ``energy.min_window_sec``, the set runs again
(the repeats are counted) until every rank's window is long enough. The window is a ``with``
block: if generation fails inside it, the window is aborted and its sampler thread stops.

The result is built by :mod:`llem.measure.raw_result` and written by
:mod:`llem.measure.outputs` (file names in :mod:`llem.layout`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llem.config.campaign import ExperimentSpec
from llem.config.models import ExperimentConfig
from llem.domain.baseline import BaselineRecord
from llem.domain.environment import EnvironmentMetadata
from llem.domain.experiment import RawProcessResult
from llem.domain.metrics import WarmupResult
from llem.energy.select import open_energy_source
from llem.errors import MeasurementError
from llem.inference.batching import Batch, encode_prompts, shard_and_batch
from llem.inference.devices import DevicePlan, plan_device
from llem.inference.distributed import Coordinator, RankInfo
from llem.inference.generation import BatchOutcome, generate_batch, generation_kwargs
from llem.inference.loading import LoadedModel, load_model
from llem.inference.models import Log, stderr_log
from llem.inference.prompts import load_prompts
from llem.inference.warmup import run_warmup
from llem.measure.baseline import read_baseline
from llem.measure.outputs import write_rank_outputs, write_warmup
from llem.measure.raw_result import MeasuredPasses, MeasuredRun, build_raw_result
from llem.measure.window import MeasurementWindow

Generate = Callable[[Batch], BatchOutcome]


@dataclass(frozen=True)
class MeasureInputs:
    """Everything ``llem measure`` reads, as paths and the parsed spec."""

    spec: ExperimentSpec
    models_dir: Path
    out_dir: Path
    cycle: int = 0
    environment_path: Path | None = None
    baseline_path: Path | None = None


@dataclass(frozen=True)
class _Rank:
    """One rank's place in the run: who it is, where it runs, how it meets the others."""

    ranks: RankInfo
    plan: DevicePlan
    coordinator: Coordinator
    log: Log  # progress lines, tagged with the rank when there are several


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
    tag = f"[rank {ranks.rank}] " if ranks.world_size > 1 else ""
    rank = _Rank(ranks, plan, Coordinator(ranks, use_cuda=plan.is_cuda),
                 log=lambda m: log(tag + m))
    try:
        environment = _read_environment(inputs.environment_path, plan)
        rank.log(f"loading {cfg.model_name} on {plan.device} ({cfg.precision})")
        loaded = load_model(cfg, inputs.models_dir, plan)
        if on_loaded is not None:
            on_loaded(loaded)
        batches, prompt_warnings = _prepare_batches(inputs, loaded, ranks)
        generate = _generator(cfg, loaded, plan)
        if exclusive is not None:
            exclusive()
        warmup = _warm_up(inputs, rank, batches, generate)
        return _measure_window(inputs, rank, loaded, batches, generate, environment, warmup,
                               prompt_warnings)
    finally:
        rank.coordinator.close()


def _generator(cfg: ExperimentConfig, loaded: LoadedModel, plan: DevicePlan) -> Generate:
    """One generate call per batch, synchronized with the accelerator at its ends."""
    import torch

    gen_kwargs = generation_kwargs(cfg.decoder, loaded.model, loaded.tokenizer)
    sync = torch.cuda.synchronize if plan.is_cuda else None

    def generate(batch: Batch) -> BatchOutcome:
        return generate_batch(loaded.model, batch, gen_kwargs, plan.device, sync)

    return generate


def _warm_up(
    inputs: MeasureInputs, rank: _Rank, batches: list[Batch], generate: Generate
) -> WarmupResult:
    """Warm up on the prompt set (never measured); rank 0 writes ``warmup.json``."""
    import torch

    cfg = inputs.spec.config
    torch.manual_seed(cfg.decoder.seed)
    warmup = run_warmup(lambda i: generate(batches[i % len(batches)]).latency_ms, cfg.warmup,
                        log=rank.log)
    if rank.ranks.rank == 0:
        write_warmup(inputs.out_dir, warmup)
    return warmup


def _measure_window(
    inputs: MeasureInputs,
    rank: _Rank,
    loaded: LoadedModel,
    batches: list[Batch],
    generate: Generate,
    environment: EnvironmentMetadata,
    warmup: WarmupResult,
    prompt_warnings: list[str],
) -> RawProcessResult:
    """Open the energy source, run the measured passes inside the window, write the result."""
    import torch

    cfg, plan, ranks = inputs.spec.config, rank.plan, rank.ranks
    with open_energy_source(cfg.energy, cuda_device_indices=plan.cuda_indices,
                            rank=ranks.rank) as selection:
        baseline = _read_baseline(inputs.baseline_path, selection.device_ids,
                                  environment.host)
        window = MeasurementWindow(  # the sampler starts only if something needs it
            selection, sample_interval_ms=cfg.timeseries.sample_interval_ms,
            keep_samples=cfg.timeseries.enabled, min_window_sec=cfg.energy.min_window_sec,
            sync=torch.cuda.synchronize if plan.is_cuda else None,
            phase_split=cfg.energy.phase_split,
        )
        if plan.is_cuda:
            torch.cuda.reset_peak_memory_stats(plan.device)
        torch.manual_seed(cfg.decoder.seed + ranks.rank)
        rank.coordinator.barrier()
        with window:  # a failure inside aborts the window: the sampler thread stops
            passes = _measured_passes(batches, generate, cfg.energy.min_window_sec,
                                      rank.coordinator, rank.log)
        measured = MeasuredRun(
            spec=inputs.spec, cycle=inputs.cycle, ranks=ranks, plan=plan, loaded=loaded,
            environment=environment, warmup=warmup, passes=passes, window=window.measured,
            baseline=baseline, selection=selection,
            extra_warnings=[*prompt_warnings, *selection.warnings],
        )
        raw = build_raw_result(measured)
        write_rank_outputs(inputs.out_dir, ranks.rank, cfg.timeseries, raw, window.measured)
    rank.log(f"measured {raw.output_tokens} output tokens in "
             f"{raw.timestamps.duration_sec:.2f} s ({passes.repeats} pass(es))")
    return raw


def _read_environment(path: Path | None, plan: DevicePlan) -> EnvironmentMetadata:
    if path is None:
        from llem.measure.environment import collect_environment

        return collect_environment(cuda_device_indices=plan.cuda_indices or None)
    try:
        return EnvironmentMetadata.model_validate_json(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MeasurementError(f"{path}: cannot read the environment file: {exc}") from exc


def _read_baseline(
    path: Path | None, device_ids: list[str], host: str | None
) -> BaselineRecord | None:
    """The job's baseline, refused when it was measured on other devices (or host)."""
    if path is None:
        return None
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
    run: Generate,
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
