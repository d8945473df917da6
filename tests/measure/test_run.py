"""The measured run end to end on a tiny model: files, counts, repeats, warmup, baselines."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.domain.experiment import RawProcessResult
from llem.domain.metrics import WarmupResult
from llem.errors import MeasurementError, ModelPreparationError
from llem.inference.distributed import Coordinator, RankInfo
from llem.inference.loading import LoadedModel
from llem.inference.models import MODEL_RECORD, model_key, models_dir_of_record
from llem.inference.tiny import build_tiny_model
from llem.measure.run import MeasureInputs, _measured_passes, measure
from llem.measure.sampler import THREAD_NAME

MAX_NEW = 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("runner") / "llama")


def _spec(tiny: Path, **overrides: Any):
    data: dict[str, Any] = {
        "config_name": "tiny",
        "model_name": str(tiny),
        "device": "cpu",
        "prompts": {"num_prompts": 6},
        "batching": {"batch_size": 2},
        "decoder": {"max_output_tokens": MAX_NEW, "min_output_tokens": MAX_NEW},
        "energy": {"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 0.0},
        "warmup": {"convergence_detection": False, "max_prompts": 3, "window_size": 3,
                   "min_prompts": 3},
    }
    for key, value in overrides.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return make_spec(parse_experiment(data), "camp", "run1")


def _count_forwards(counter: list[int]):
    def attach(loaded: LoadedModel) -> None:
        loaded.model.register_forward_hook(lambda *_: counter.append(1))

    return attach


def test_measure_writes_every_file_with_exact_counts(tiny: Path, tmp_path: Path) -> None:
    spec = _spec(tiny, timeseries={"enabled": True, "save": True, "sample_interval_ms": 50})
    out = tmp_path / "cycle_0"
    raw = measure(MeasureInputs(spec=spec, models_dir=tmp_path / "models", out_dir=out),
                  log=lambda _m: None)
    on_disk = RawProcessResult.model_validate_json((out / "raw" / "process_0.json").read_text())
    assert (out / "raw" / "process_0.done").is_file()
    assert WarmupResult.model_validate_json((out / "warmup.json").read_text()).mode == "fixed"
    assert (out / "raw" / on_disk.timeseries_path).resolve() == (
        out / "timeseries" / "process_0.parquet"
    ).resolve()
    assert on_disk.output_tokens == raw.output_tokens == 6 * MAX_NEW  # fixed-length decode
    assert on_disk.inference_metrics.input_tokens > 0
    assert on_disk.inference_metrics.total_tokens == (
        on_disk.inference_metrics.input_tokens + on_disk.output_tokens
    )
    assert on_disk.config_hash == spec.config_hash and on_disk.experiment_id == "camp/run1/tiny"
    assert on_disk.model_source is not None and on_disk.model_source.obtained == "local"
    assert on_disk.energy_source == "estimate" and on_disk.energy_metrics.total_energy_j
    assert on_disk.energy_per_output_token_j == pytest.approx(
        on_disk.energy_metrics.total_energy_j / on_disk.output_tokens
    )
    assert on_disk.measured_window is not None and on_disk.measured_window.prompt_set_repeats == 1
    assert on_disk.latency_stats is not None and on_disk.latency_stats.ttft_samples == 6
    flops = on_disk.compute_metrics
    assert flops.flops_prefill is not None and flops.flops_decode is not None
    assert flops.flops_total == pytest.approx(flops.flops_prefill + flops.flops_decode)
    phases = on_disk.phase_energy
    assert phases is not None and phases.prefill_time_sec > 0 and phases.decode_time_sec > 0
    assert phases.prefill_time_sec + phases.decode_time_sec <= on_disk.timestamps.duration_sec


def test_warmup_really_runs_on_the_model(tiny: Path, tmp_path: Path) -> None:
    with_warmup: list[int] = []
    without: list[int] = []
    measure(MeasureInputs(spec=_spec(tiny), models_dir=tmp_path, out_dir=tmp_path / "a"),
            log=lambda _m: None, on_loaded=_count_forwards(with_warmup))
    spec = _spec(tiny, warmup={"enabled": False})
    measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "b"),
            log=lambda _m: None, on_loaded=_count_forwards(without))
    # fixed-length decode: every generate call is exactly MAX_NEW forward passes;
    # 3 measured batches, plus 3 warmup iterations of the same batch shape
    assert len(without) == 3 * MAX_NEW
    assert len(with_warmup) == (3 + 3) * MAX_NEW


class _SlowerRank(Coordinator):
    """Another rank whose pass takes ``lag_sec`` longer to start counting (its min wins)."""

    def __init__(self, lag_sec: float) -> None:
        super().__init__(RankInfo(), use_cuda=False)
        self.lag_sec = lag_sec

    def min(self, value: float) -> float:
        return value - self.lag_sec


@pytest.mark.parametrize(("lag_sec", "passes"), [(0.0, 2), (0.5, 4)])
def test_short_prompt_sets_repeat_until_every_rank_has_the_minimum(
    lag_sec: float, passes: int
) -> None:
    """Whole passes, until the shortest rank's window reaches the minimum (a driven clock:
    each batch takes 0.15 s, a pass of two batches 0.3 s, the minimum is 0.5 s)."""
    now = [100.0]

    def run(batch: Any) -> Any:
        now[0] += 0.15
        return batch

    result = _measured_passes(["b1", "b2"], run, 0.5, _SlowerRank(lag_sec),
                              log=lambda _m: None, clock=lambda: now[0])
    assert result.repeats == passes
    assert result.outcomes == ["b1", "b2"] * passes


def test_short_prompt_sets_repeat_until_the_minimum_window(tiny: Path, tmp_path: Path) -> None:
    spec = _spec(tiny, energy={"min_window_sec": 0.5}, warmup={"enabled": False})
    raw = measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "c"),
                  log=lambda _m: None)
    window = raw.measured_window
    # However fast this machine is: whole passes, and the window reaches the minimum.
    assert window is not None and window.prompt_set_repeats >= 1
    assert raw.timestamps.duration_sec >= 0.5 and not window.below_minimum
    assert raw.output_tokens == window.prompt_set_repeats * 6 * MAX_NEW


def test_unmeasured_energy_is_null_with_a_reason(tiny: Path, tmp_path: Path) -> None:
    spec = _spec(tiny, energy={"backend": "none", "cpu_tdp_w": None}, warmup={"enabled": False})
    raw = measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "d"),
                  log=lambda _m: None)
    assert raw.energy_metrics.total_energy_j is None and raw.energy_tracking_failed
    assert raw.energy_per_output_token_j is None and raw.energy_unavailable_reason
    assert raw.phase_energy is not None and raw.phase_energy.prefill_energy_j is None


def test_a_foreign_baseline_is_refused(tiny: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({
        "method": "fresh", "power_w": 30.0, "host": "elsewhere", "energy_source": "nvml_counter",
        "devices": [{"device_id": "GPU-other", "kind": "gpu", "power_w": 30.0,
                     "duration_sec": 5.0, "source": "nvml_counter",
                     "measured_at": "2026-01-01T00:00:00Z"}],
    }))
    spec = _spec(tiny, warmup={"enabled": False})
    with pytest.raises(MeasurementError, match="foreign baseline"):
        measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=tmp_path / "e",
                              baseline_path=baseline), log=lambda _m: None)
    assert not (tmp_path / "e" / "raw" / "process_0.done").exists()


def test_measure_cli_runs_one_cycle(tiny: Path, tmp_path: Path) -> None:
    from llem.cli import main

    spec_path = tmp_path / "spec.json"
    write_experiment_spec(_spec(tiny, warmup={"enabled": False}), spec_path)
    out = tmp_path / "exp" / "cycle_1"
    code = main(["measure", "--spec", str(spec_path), "--models-dir", str(tmp_path / "m"),
                 "--out-dir", str(out), "--cycle", "1"])
    assert code == 0
    raw = RawProcessResult.model_validate_json((out / "raw" / "process_0.json").read_text())
    assert raw.cycle_id == 1 and raw.cycle_run_info["cycle_id"] == 1


def test_measure_cli_takes_the_prepared_model_record(tiny: Path, tmp_path: Path) -> None:
    """The workflow hands measure the record prepare-model wrote, and a wrong one is refused."""
    from llem.cli import main

    spec = _spec(tiny, warmup={"enabled": False})
    spec_path = tmp_path / "spec.json"
    write_experiment_spec(spec, spec_path)
    models = tmp_path / "models"
    assert main(["prepare-model", "--spec", str(spec_path), "--models-dir", str(models)]) == 0
    record = models / model_key(spec.config) / MODEL_RECORD
    out = tmp_path / "exp" / "cycle_0"
    assert main(["measure", "--spec", str(spec_path), "--model-record", str(record),
                 "--out-dir", str(out)]) == 0
    assert (out / "raw" / "process_0.done").is_file()

    other = models / "org--other-model" / MODEL_RECORD
    other.parent.mkdir()
    other.write_text(record.read_text())
    with pytest.raises(ModelPreparationError, match="org--other-model"):
        models_dir_of_record(other, spec.config)
    refused = tmp_path / "refused" / "cycle_0"
    assert main(["measure", "--spec", str(spec_path), "--model-record", str(other),
                 "--out-dir", str(refused)]) != 0
    assert not refused.exists()


def test_a_generation_failing_inside_the_window_stops_the_sampler_thread(
    tiny: Path, tmp_path: Path
) -> None:
    """The model's forward raises on the measured pass; the sampler thread must not outlive it."""
    running_at_failure: list[threading.Thread] = []

    def fail_on_forward(loaded: LoadedModel) -> None:
        def hook(*_: Any) -> None:
            running_at_failure.extend(
                t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()
            )
            raise RuntimeError("forward failed")

        loaded.model.register_forward_hook(hook)

    before = {t for t in threading.enumerate() if t.name == THREAD_NAME}
    # warmup off: the first forward is the measured pass's; the time series needs the sampler
    spec = _spec(tiny, warmup={"enabled": False},
                 timeseries={"enabled": True, "save": True, "sample_interval_ms": 50})
    out = tmp_path / "failed" / "cycle_0"
    with pytest.raises(RuntimeError, match="forward failed"):
        measure(MeasureInputs(spec=spec, models_dir=tmp_path, out_dir=out),
                log=lambda _m: None, on_loaded=fail_on_forward)
    started = [t for t in running_at_failure if t not in before]
    assert started, "the sampler thread was not running during the measured pass"
    assert not any(t.is_alive() for t in started)
    assert not (out / "raw" / "process_0.done").exists()
