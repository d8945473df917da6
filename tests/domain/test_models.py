"""The v3 result and config models: importable, schema version 3, documented defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError


def test_v3_models_import() -> None:
    from llem.domain.environment import EnvironmentMetadata
    from llem.domain.experiment import AggregatedResult, RawProcessResult
    from llem.domain.metrics import EnergyBreakdown, ThermalThrottleInfo, WarmupResult

    for model in (EnergyBreakdown, ThermalThrottleInfo, WarmupResult, EnvironmentMetadata,
                  RawProcessResult, AggregatedResult):
        assert model.model_json_schema()["type"] == "object"


def test_schema_version_is_3() -> None:
    from llem.constants import SCHEMA_VERSION

    assert SCHEMA_VERSION == "3.0.0"


def test_raw_process_result_without_any_v3_field() -> None:
    from llem.domain.experiment import RawProcessResult

    r = RawProcessResult(
        experiment_id="test", process_index=0, gpu_id=0, config_name="t", model_name="m",
        timestamps={"start": "2024-01-01T00:00:00", "end": "2024-01-01T00:01:00",
                    "duration_sec": 60.0},
        inference_metrics={"total_tokens": 100, "input_tokens": 50, "output_tokens": 50,
                           "inference_time_sec": 60.0, "tokens_per_second": 1.67,
                           "latency_per_token_ms": 600.0},
        energy_metrics={"total_energy_j": 100.0, "duration_sec": 60.0},
        compute_metrics={"flops_total": 1e12},
    )
    assert r.schema_version == "3.0.0"
    for field in ("environment", "energy_breakdown", "thermal_throttle", "warmup_result",
                  "timeseries_path"):
        assert getattr(r, field) is None
    assert r.energy_metrics.total_energy_j == 100.0


def test_experiment_config_defaults() -> None:
    from llem.config.models import ExperimentConfig

    c = ExperimentConfig(config_name="test", model_name="m")
    assert (c.warmup.cv_threshold, c.baseline.enabled, c.timeseries.save) == (0.05, True, False)
    assert c.trust_remote_code is False


def test_warmup_config_defaults_are_the_documented_ones() -> None:
    from llem.config.models import WarmupConfig

    w = WarmupConfig()
    assert (w.enabled, w.convergence_detection, w.cv_threshold, w.max_prompts,
            w.window_size, w.min_prompts) == (True, True, 0.05, 50, 5, 5)


def test_warmup_window_larger_than_max_prompts_rejected() -> None:
    from llem.config.models import WarmupConfig

    with pytest.raises(ValidationError, match="window_size"):
        WarmupConfig(window_size=10, max_prompts=5)
    with pytest.raises(ValidationError, match="min_prompts"):
        WarmupConfig(min_prompts=60, max_prompts=50)


def test_baseline_and_timeseries_bounds_are_the_documented_ones() -> None:
    from llem.config.models import BaselineConfig, TimeSeriesConfig

    assert BaselineConfig().duration_sec == 30.0
    with pytest.raises(ValidationError):
        BaselineConfig(duration_sec=4.0)
    with pytest.raises(ValidationError):
        BaselineConfig(cache_ttl_sec=59.0)
    with pytest.raises(ValidationError):
        TimeSeriesConfig(sample_interval_ms=40)
    assert TimeSeriesConfig().sample_interval_ms == 100
