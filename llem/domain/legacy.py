"""Frozen result shapes of the earlier tool: schema v2 ("2.0.0") and its later line.

These models exist to validate and document old files exactly as they were written (their
JSON Schemas are exported under ``schemas/v2/`` and never change). Loading converts them to the
v3 models (:mod:`llem.results.loader`); nothing in llem writes these shapes.

v2 rules kept here: unknown keys ignored; fields added after the December 2025 core are
optional with their v2 defaults; datetimes may be naive (local time, kept as given); a failed
energy measurement was written as 0.0.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llem.domain.types import Timestamp


class _V2(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class V2Timestamps(_V2):
    """Start, end and duration of a process's work."""

    start: Timestamp = Field(description="Start time (naive local time in v2).")
    end: Timestamp = Field(description="End time.")
    duration_sec: float = Field(description="Duration in seconds.")


class V2InferenceMetrics(_V2):
    """v2 inference metrics; tokens_per_second counts input plus output tokens."""

    total_tokens: int = Field(description="Input plus output tokens.")
    input_tokens: int = Field(description="Input tokens.")
    output_tokens: int = Field(description="Output tokens.")
    inference_time_sec: float = Field(description="Inference time, s.")
    tokens_per_second: float = Field(description="Total tokens per second.")
    latency_per_token_ms: float = Field(description="Latency per token, ms.")
    time_to_first_token_ms: float | None = Field(default=None, description="TTFT, ms.")
    latency_measurements: dict[str, Any] | None = Field(
        default=None, description="LatencyMeasurements object."
    )


class V2EnergyMetrics(_V2):
    """v2 energy metrics; 0.0 also meant 'not measured'."""

    total_energy_j: float = Field(description="Total energy, J.")
    gpu_energy_j: float = Field(default=0.0, description="GPU energy, J.")
    cpu_energy_j: float = Field(default=0.0, description="CPU energy, J.")
    ram_energy_j: float = Field(default=0.0, description="RAM energy, J.")
    gpu_power_w: float = Field(default=0.0, description="GPU power, W.")
    cpu_power_w: float = Field(default=0.0, description="CPU power, W.")
    duration_sec: float = Field(description="Duration, s (CodeCarbon wrote 0.0).")
    emissions_kg_co2: float = Field(default=0.0, description="Emissions, kg CO2-eq.")
    energy_per_token_j: float = Field(default=0.0, description="Never filled by v2.")


class V2ComputeMetrics(_V2):
    """v2 compute metrics."""

    flops_total: float = Field(description="FLOPs.")
    flops_per_token: float = Field(default=0.0, description="FLOPs per token.")
    flops_per_second: float = Field(default=0.0, description="FLOPs per second.")
    peak_memory_mb: float = Field(default=0.0, description="Peak memory, MB.")
    model_memory_mb: float = Field(default=0.0, description="Model memory, MB.")
    flops_method: str = Field(default="unknown", description="How FLOPs were obtained.")
    flops_confidence: str = Field(default="unknown", description="high, medium or low.")
    compute_precision: str = Field(default="fp16", description="Compute precision.")


class V2LatencyStatistics(_V2):
    """v2 latency statistics."""

    ttft_mean_ms: float = Field(description="Mean TTFT, ms.")
    ttft_median_ms: float = Field(description="Median TTFT, ms.")
    ttft_p95_ms: float = Field(description="p95 TTFT, ms.")
    ttft_p99_ms: float = Field(description="p99 TTFT, ms.")
    ttft_min_ms: float = Field(description="Min TTFT, ms.")
    ttft_max_ms: float = Field(description="Max TTFT, ms.")
    ttft_samples: int = Field(description="TTFT samples.")
    itl_mean_ms: float | None = Field(default=None, description="Mean ITL, ms.")
    itl_median_ms: float | None = Field(default=None, description="Median ITL, ms.")
    itl_p95_ms: float | None = Field(default=None, description="p95 ITL, ms.")
    itl_p99_ms: float | None = Field(default=None, description="p99 ITL, ms.")
    itl_samples: int = Field(default=0, description="ITL samples.")
    itl_full_mean_ms: float | None = Field(default=None, description="Mean full ITL, ms.")
    itl_full_p99_ms: float | None = Field(default=None, description="p99 full ITL, ms.")


class V2ExtendedEfficiencyMetrics(_V2):
    """v2 extended metrics, kept opaque below the top level."""

    tpot_ms: float | None = Field(default=None, description="Time per output token, ms.")
    token_efficiency_index: float | None = Field(default=None, description="Index.")
    memory: dict[str, Any] = Field(default_factory=dict, description="Memory metrics.")
    gpu_utilisation: dict[str, Any] = Field(default_factory=dict, description="GPU use.")
    batch: dict[str, Any] = Field(default_factory=dict, description="Batch metrics.")
    kv_cache: dict[str, Any] = Field(default_factory=dict, description="KV cache metrics.")
    request_latency: dict[str, Any] = Field(default_factory=dict, description="E2E latency.")


class V2RawProcessResult(_V2):
    """v2 per-process result (``raw/<id>/process_<rank>.json``)."""

    schema_version: str = Field(default="2.0.0", description="Schema version.")
    experiment_id: str = Field(description="Experiment id.")
    backend: str = Field(default="pytorch", description="Backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    process_index: int = Field(description="Rank.")
    gpu_id: int = Field(description="GPU index.")
    gpu_name: str = Field(default="", description="GPU name.")
    gpu_is_mig: bool = Field(default=False, description="MIG slice.")
    gpu_mig_profile: str | None = Field(default=None, description="MIG profile.")
    energy_measurement_warning: str | None = Field(default=None, description="Warning.")
    energy_tracking_failed: bool = Field(default=False, description="Energy tracking failed.")
    config_name: str = Field(default="", description="Config name (added 2025-12-21).")
    model_name: str = Field(default="", description="Model name (added 2025-12-21).")
    timestamps: V2Timestamps = Field(description="Times.")
    inference_metrics: V2InferenceMetrics = Field(description="Inference metrics.")
    energy_metrics: V2EnergyMetrics = Field(description="Energy metrics.")
    compute_metrics: V2ComputeMetrics = Field(description="Compute metrics.")
    effective_config: dict[str, Any] = Field(default_factory=dict, description="Config.")
    cli_overrides: dict[str, Any] = Field(default_factory=dict, description="CLI overrides.")
    config_warnings: list[str] = Field(default_factory=list, description="Warnings.")
    parameter_provenance: dict[str, Any] = Field(default_factory=dict, description="Provenance.")
    preset_chain: list[str] = Field(default_factory=list, description="Presets.")
    cycle_run_info: dict[str, Any] = Field(default_factory=dict, description="Cycle info.")
    extended_metrics: V2ExtendedEfficiencyMetrics = Field(
        default_factory=V2ExtendedEfficiencyMetrics, description="Extended metrics."
    )
    per_request_latencies_ms: list[float] = Field(default_factory=list, description="E2E, ms.")
    gpu_utilisation_samples: list[float] = Field(default_factory=list, description="GPU use.")


class V2AggregationMetadata(_V2):
    """v2 aggregation metadata."""

    method: str = Field(default="sum_energy_avg_throughput", description="Method.")
    num_processes: int = Field(description="Processes.")
    temporal_overlap_verified: bool = Field(default=False, description="Overlap checked.")
    gpu_attribution_verified: bool = Field(default=False, description="Attribution checked.")
    warnings: list[str] = Field(default_factory=list, description="Warnings.")


class V2AggregatedResult(_V2):
    """v2 aggregated result (``aggregated/<id>.json``)."""

    schema_version: str = Field(default="2.0.0", description="Schema version.")
    experiment_id: str = Field(description="Experiment id.")
    backend: str = Field(default="pytorch", description="Backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    aggregation: V2AggregationMetadata = Field(description="Aggregation metadata.")
    total_tokens: int = Field(description="Sum of tokens.")
    total_energy_j: float = Field(description="Sum of energy, J.")
    total_inference_time_sec: float = Field(description="Sum of per-rank times, s.")
    avg_tokens_per_second: float = Field(description="Mean of per-rank rates.")
    avg_energy_per_token_j: float = Field(description="Energy per token, J.")
    total_flops: float = Field(description="Sum of FLOPs.")
    process_results: list[V2RawProcessResult] = Field(
        default_factory=list, description="Embedded process results."
    )
    start_time: Timestamp = Field(description="Earliest start.")
    end_time: Timestamp = Field(description="Latest end.")
    effective_config: dict[str, Any] = Field(default_factory=dict, description="Config.")
    cli_overrides: dict[str, Any] = Field(default_factory=dict, description="CLI overrides.")
    config_warnings: list[str] = Field(default_factory=list, description="Warnings.")
    parameter_provenance: dict[str, Any] = Field(default_factory=dict, description="Provenance.")
    preset_chain: list[str] = Field(default_factory=list, description="Presets.")
    latency_stats: V2LatencyStatistics | None = Field(default=None, description="Latency.")
    energy_tracking_failed: bool = Field(default=False, description="Any rank failed.")
    extended_metrics: V2ExtendedEfficiencyMetrics = Field(
        default_factory=V2ExtendedEfficiencyMetrics, description="Extended metrics."
    )


class V2CycleStatistics(_V2):
    """v2 statistics across cycles."""

    num_cycles: int = Field(description="Cycles.")
    energy_mean_j: float = Field(description="Mean energy, J.")
    energy_std_j: float = Field(default=0.0, description="Std of energy, J.")
    energy_ci_95_lower: float = Field(default=0.0, description="95% CI lower, J.")
    energy_ci_95_upper: float = Field(default=0.0, description="95% CI upper, J.")
    throughput_mean_tps: float = Field(description="Mean throughput, tok/s.")
    throughput_std_tps: float = Field(default=0.0, description="Std of throughput.")
    throughput_ci_95_lower: float = Field(default=0.0, description="95% CI lower.")
    throughput_ci_95_upper: float = Field(default=0.0, description="95% CI upper.")
    efficiency_mean_tpj: float = Field(default=0.0, description="Mean tokens per J.")
    efficiency_std_tpj: float = Field(default=0.0, description="Std of tokens per J.")
    latency_mean_ms: float = Field(default=0.0, description="Mean latency, ms.")
    latency_std_ms: float = Field(default=0.0, description="Std of latency, ms.")
    energy_cv: float = Field(default=0.0, description="CV of energy.")
    throughput_cv: float = Field(default=0.0, description="CV of throughput.")


class V2CycleMetadata(_V2):
    """v2 per-cycle metadata."""

    cycle_id: int = Field(description="Cycle index.")
    timestamp: Timestamp = Field(description="When the cycle ran.")
    gpu_temperature_c: float | None = Field(default=None, description="GPU temperature.")
    system_load: float | None = Field(default=None, description="System load.")


class V2MultiCycleResult(_V2):
    """v2 multi-cycle result (``<base_id>_multi_cycle.json``)."""

    schema_version: str = Field(default="2.0.0", description="Schema version.")
    experiment_id: str = Field(description="Base experiment id.")
    backend: str = Field(default="pytorch", description="Backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    num_cycles: int = Field(description="Cycles.")
    statistics: V2CycleStatistics = Field(description="Statistics.")
    cycle_results: list[V2AggregatedResult] = Field(description="Per-cycle results.")
    cycle_metadata: list[V2CycleMetadata] = Field(default_factory=list, description="Metadata.")
    start_time: Timestamp = Field(description="Start.")
    end_time: Timestamp = Field(description="End.")
    total_duration_sec: float = Field(description="Duration, s.")
    effective_config: dict[str, Any] = Field(default_factory=dict, description="Config.")
    config_warnings: list[str] = Field(default_factory=list, description="Warnings.")


class LaterLineResult(_V2):
    """The earlier tool's later line ("2.0"/"3.0", 2026-03 on), one file per experiment.

    Recognised by ``measurement_config_hash``. Top-level totals mean what they mean in the v2
    AggregatedResult; everything else is optional and kept in the original document.
    """

    schema_version: str = Field(description='"2.0" or "3.0".')
    experiment_id: str = Field(description="name_timestamp id.")
    measurement_config_hash: str = Field(description="16-hex config hash.")
    backend: str | None = Field(default=None, description='Backend ("2.0").')
    backend_version: str | None = Field(default=None, description="Backend version.")
    engine: str | None = Field(default=None, description='Engine ("3.0").')
    engine_version: str | None = Field(default=None, description="Engine version.")
    model_name: str | None = Field(default=None, description='Model ("3.0").')
    total_tokens: int = Field(description="Sum of tokens.")
    total_energy_j: float | None = Field(description="Total energy, J.")
    total_inference_time_sec: float = Field(description="Inference time, s.")
    avg_tokens_per_second: float = Field(description="Tokens per second.")
    avg_energy_per_token_j: float | None = Field(description="Energy per token, J.")
    total_flops: float = Field(description="FLOPs.")
    start_time: Timestamp = Field(description="Start.")
    end_time: Timestamp = Field(description="End.")
    aggregation: V2AggregationMetadata | None = Field(default=None, description="Aggregation.")
    process_results: list[dict[str, Any]] = Field(
        default_factory=list, description="Process results (opaque)."
    )
    baseline_power_w: float | None = Field(default=None, description="Baseline power, W.")
    energy_adjusted_j: float | None = Field(default=None, description="Adjusted energy, J.")
    energy_breakdown: dict[str, Any] | None = Field(default=None, description="v3 breakdown.")
    thermal_throttle: dict[str, Any] | None = Field(default=None, description="v3 throttle.")
    warmup_result: dict[str, Any] | None = Field(default=None, description="v3 warmup.")
    latency_stats: dict[str, Any] | None = Field(default=None, description="Latency stats.")
    extended_metrics: dict[str, Any] | None = Field(default=None, description="Extended.")
    environment_snapshot: dict[str, Any] | None = Field(default=None, description="Env.")
    measurement_warnings: list[str] | None = Field(default=None, description="Warnings.")
    timeseries: str | None = Field(default=None, description="Time-series file name.")
    effective_config: dict[str, Any] = Field(default_factory=dict, description="Config.")
