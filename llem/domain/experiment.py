"""Experiment result models of schema v3: per-process, aggregated and multi-cycle.

Every v2 field is kept with its v2 meaning (see the v2 reference), so v2 documents parse into
these models unchanged. Fields new in v3 (environment, energy breakdown, throttling, warmup,
timestamps of the measured window, instrumentation cost) are optional and
default to null. Datetimes without an offset (v2 wrote naive local time) are kept as given.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from llem.constants import SCHEMA_VERSION
from llem.domain.environment import EnvironmentMetadata
from llem.domain.instrumentation import InstrumentationCost
from llem.domain.metrics import (
    ComputeMetrics,
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMetrics,
    ExtendedEfficiencyMetrics,
    InferenceMetrics,
    LatencyStatistics,
    MeasuredWindow,
    ModelSource,
    PhaseEnergy,
    ThermalThrottleInfo,
    WarmupResult,
)
from llem.domain.types import Count, EnergyJ, Int64, Timestamp


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Timestamps(_Result):
    """Start, end and duration of a process's measured work."""

    start: Timestamp = Field(description="Start of the measured window.")
    end: Timestamp = Field(description="End of the measured window.")
    duration_sec: float = Field(description="end - start in seconds.")


class AggregationMetadata(_Result):
    """How process results were combined."""

    method: str = Field(
        default="sum_energy_avg_throughput", description="Aggregation method name."
    )
    num_processes: Count = Field(description="Process results combined.")
    temporal_overlap_verified: bool = Field(
        default=False, description="Whether the processes' windows were checked to overlap."
    )
    gpu_attribution_verified: bool = Field(
        default=False, description="Whether every device was attributed to exactly one sum."
    )
    warnings: list[str] = Field(default_factory=list, description="Aggregation warnings.")


class _V3Provenance(_Result):
    """Optional fields llem adds to both result levels."""

    config_hash: str | None = Field(
        default=None, description="Hash of the resolved experiment config."
    )
    llem_version: str | None = Field(default=None, description="llem version that measured.")
    written_by: str | None = Field(
        default=None,
        description="Program that wrote the file: 'llem' for llem's own results; absent in "
        "files of the earlier tool, whose \"3.0.0\" files are repaired when loaded.",
    )
    run_id: str | None = Field(default=None, description="Run id within a campaign.")
    campaign: str | None = Field(default=None, description="Campaign name.")
    energy_source: str | None = Field(
        default=None,
        description="Source of the energy of record: nvml_counter, nvml_power_integration, "
        "rapl, estimate, mixed or none.",
    )
    energy_unavailable_reason: str | None = Field(
        default=None, description="Why the energy of record is null, when it is."
    )
    device_energy: list[DeviceEnergy] | None = Field(
        default=None, description="Energy per physical device, each with its source."
    )
    measured_window: MeasuredWindow | None = Field(
        default=None, description="The interval energy and throughput refer to."
    )
    output_tokens: Count | None = Field(default=None, description="Output tokens generated.")
    output_tokens_per_second: float | None = Field(
        default=None, description="Output tokens over the measured wall window."
    )
    energy_per_output_token_j: EnergyJ | None = Field(
        default=None, description="Energy of record per output token, J; null if unmeasured."
    )
    phase_energy: PhaseEnergy | None = Field(
        default=None, description="Prefill/decode split of time and energy."
    )
    instrumentation: InstrumentationCost | None = Field(
        default=None,
        description="What measuring cost over the measured window (summed over processes).",
    )
    model_source: ModelSource | None = Field(
        default=None, description="Where the model's weights came from."
    )
    measurement_warnings: list[str] | None = Field(
        default=None, description="Warnings about the validity of this measurement."
    )
    cycle_id: Int64 | None = Field(default=None, description="Cycle index, from 0.")


class RawProcessResult(_V3Provenance):
    """Result of one process (rank) of an experiment."""

    schema_version: str = Field(default=SCHEMA_VERSION, description="Result schema version.")
    experiment_id: str = Field(description="Experiment identifier.")
    backend: str = Field(default="pytorch", description="Inference backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    process_index: Int64 = Field(description="Rank of this process.")
    gpu_id: Int64 = Field(description="Device index used by this process (-1 for CPU).")
    gpu_name: str = Field(default="", description="Device name.")
    gpu_is_mig: bool = Field(default=False, description="Whether the GPU is a MIG slice.")
    gpu_mig_profile: str | None = Field(default=None, description="MIG profile, if any.")
    energy_measurement_warning: str | None = Field(
        default=None, description="Warning about energy measurement."
    )
    energy_tracking_failed: bool = Field(
        default=False, description="True when energy could not be measured."
    )
    config_name: str = Field(description="Experiment (config) name.")
    model_name: str = Field(description="Model name.")
    timestamps: Timestamps = Field(description="Measured window times.")
    inference_metrics: InferenceMetrics = Field(description="Token counts and timing.")
    energy_metrics: EnergyMetrics = Field(description="Energy of the measured window.")
    compute_metrics: ComputeMetrics = Field(description="FLOPs and memory.")
    effective_config: dict[str, Any] = Field(
        default_factory=dict, description="Resolved experiment config."
    )
    cli_overrides: dict[str, Any] = Field(default_factory=dict, description="CLI overrides.")
    config_warnings: list[str] = Field(default_factory=list, description="Config warnings.")
    parameter_provenance: dict[str, Any] = Field(
        default_factory=dict, description="Where each parameter value came from."
    )
    preset_chain: list[str] = Field(default_factory=list, description="Presets applied.")
    cycle_run_info: dict[str, Any] = Field(
        default_factory=dict, description="cycle_id, cycle_count, total_cycles."
    )
    extended_metrics: ExtendedEfficiencyMetrics = Field(
        default_factory=ExtendedEfficiencyMetrics, description="Extended efficiency metrics."
    )
    per_request_latencies_ms: list[float] = Field(
        default_factory=list, description="Per-request end-to-end latencies, ms."
    )
    gpu_utilisation_samples: list[float] = Field(
        default_factory=list, description="GPU utilisation samples, percent."
    )
    # Fields new in schema v3; absent from v2 files, so optional.
    environment: EnvironmentMetadata | None = Field(
        default=None, description="Environment metadata of this process."
    )
    energy_breakdown: EnergyBreakdown | None = Field(
        default=None, description="Raw, baseline and adjusted energy."
    )
    thermal_throttle: ThermalThrottleInfo | None = Field(
        default=None, description="Throttling during the measured window."
    )
    warmup_result: WarmupResult | None = Field(default=None, description="Warmup outcome.")
    timeseries_path: str | None = Field(
        default=None, description="Path to time-series data file if saved"
    )
    # llem
    latency_stats: LatencyStatistics | None = Field(
        default=None, description="Latency statistics of this process."
    )


class AggregatedResult(_V3Provenance):
    """One experiment's result, combined over its processes."""

    schema_version: str = Field(default=SCHEMA_VERSION, description="Result schema version.")
    experiment_id: str = Field(description="Experiment identifier.")
    backend: str = Field(default="pytorch", description="Inference backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    aggregation: AggregationMetadata = Field(description="How processes were combined.")
    total_tokens: Count = Field(description="Sum of tokens over processes.")
    total_energy_j: EnergyJ | None = Field(
        description="Sum of energy over distinct devices, J; null if unmeasured."
    )
    total_inference_time_sec: float = Field(
        description="v2 compatibility: sum of per-process inference times."
    )
    avg_tokens_per_second: float = Field(
        description="v2 compatibility: mean of per-process total-token rates."
    )
    avg_energy_per_token_j: EnergyJ | None = Field(
        description="Total energy over total tokens, J; null if unmeasured."
    )
    total_flops: float = Field(description="Sum of FLOPs over processes.")
    process_results: list[RawProcessResult] = Field(
        default_factory=list, description="Embedded process results."
    )
    start_time: Timestamp = Field(description="Earliest process start.")
    end_time: Timestamp = Field(description="Latest process end.")
    effective_config: dict[str, Any] = Field(
        default_factory=dict, description="Resolved experiment config."
    )
    cli_overrides: dict[str, Any] = Field(default_factory=dict, description="CLI overrides.")
    config_warnings: list[str] = Field(default_factory=list, description="Config warnings.")
    parameter_provenance: dict[str, Any] = Field(
        default_factory=dict, description="Parameter provenance."
    )
    preset_chain: list[str] = Field(default_factory=list, description="Presets applied.")
    latency_stats: LatencyStatistics | None = Field(
        default=None, description="Latency statistics over all samples."
    )
    energy_tracking_failed: bool = Field(
        default=False, description="True when any process failed to measure energy."
    )
    extended_metrics: ExtendedEfficiencyMetrics = Field(
        default_factory=ExtendedEfficiencyMetrics, description="Extended efficiency metrics."
    )
    # Fields new in schema v3; absent from v2 files, so optional.
    environment: EnvironmentMetadata | None = Field(
        default=None, description="Environment metadata (from the first process)."
    )
    energy_breakdown: EnergyBreakdown | None = Field(
        default=None, description="Raw, baseline and adjusted energy."
    )
    thermal_throttle: ThermalThrottleInfo | None = Field(
        default=None, description="Throttling during the measured windows."
    )
    timeseries_path: str | None = Field(
        default=None, description="Path to time-series data file if saved"
    )
    # llem
    model_name: str | None = Field(default=None, description="Model name.")
    input_tokens: Count | None = Field(default=None, description="Input tokens, no padding.")
    timeseries_paths: list[str] | None = Field(
        default=None, description="Every process's time-series file, relative to this file."
    )


class CycleStatistics(_Result):
    """Statistics over repeated cycles of one experiment.

    Means are arithmetic; llem's 95 % intervals of the mean of these positive quantities are
    computed on the log scale (see ``llem.stats.summarize``), so they never leave the
    positive axis. ``num_cycles`` is the n of every interval.
    """

    num_cycles: Count = Field(description="Cycles the statistics cover.")
    energy_mean_j: float | None = Field(default=None, description="Mean energy, J.")
    energy_std_j: float | None = Field(default=None, description="Sample std of energy, J.")
    energy_ci_95_lower: float | None = Field(default=None, description="95% CI lower, J.")
    energy_ci_95_upper: float | None = Field(default=None, description="95% CI upper, J.")
    throughput_mean_tps: float = Field(description="Mean throughput, tokens/s.")
    throughput_std_tps: float = Field(description="Sample std of throughput.")
    throughput_ci_95_lower: float | None = Field(
        default=None, description="95% CI lower, tokens/s; null when not computable."
    )
    throughput_ci_95_upper: float | None = Field(
        default=None, description="95% CI upper, tokens/s; null when not computable."
    )
    efficiency_mean_tpj: float | None = Field(default=None, description="Mean tokens per J.")
    efficiency_std_tpj: float | None = Field(default=None, description="Std of tokens per J.")
    latency_mean_ms: float | None = Field(default=None, description="Mean latency, ms.")
    latency_std_ms: float | None = Field(default=None, description="Std of latency, ms.")
    latency_ci_95_lower: float | None = Field(default=None, description="95% CI lower, ms.")
    latency_ci_95_upper: float | None = Field(default=None, description="95% CI upper, ms.")
    energy_cv: float | None = Field(default=None, description="CV of energy.")
    throughput_cv: float | None = Field(
        default=None, description="CV of throughput; null when the mean is 0 (undefined)."
    )
    # llem: output-token throughput and J per output token
    output_throughput_mean_tps: float | None = Field(
        default=None, description="Mean output-token throughput, tokens/s."
    )
    output_throughput_std_tps: float | None = Field(default=None, description="Its std.")
    output_throughput_ci_95_lower: float | None = Field(default=None, description="95% CI.")
    output_throughput_ci_95_upper: float | None = Field(default=None, description="95% CI.")
    output_throughput_cv: float | None = Field(default=None, description="Its CV.")
    energy_per_output_token_mean_j: float | None = Field(
        default=None, description="Mean J per output token."
    )
    energy_per_output_token_std_j: float | None = Field(default=None, description="Its std.")
    energy_per_output_token_ci_95_lower: float | None = Field(
        default=None, description="95% CI lower."
    )
    energy_per_output_token_ci_95_upper: float | None = Field(
        default=None, description="95% CI upper."
    )
    energy_per_output_token_cv: float | None = Field(default=None, description="Its CV.")


class CycleMetadata(_Result):
    """One cycle of a multi-cycle run."""

    cycle_id: Int64 = Field(description="Cycle index.")
    timestamp: Timestamp = Field(description="When the cycle ran.")
    gpu_temperature_c: float | None = Field(default=None, description="GPU temperature, C.")
    system_load: float | None = Field(default=None, description="System load average.")


class MultiCycleResult(_Result):
    """An experiment repeated several times, with statistics across cycles."""

    schema_version: str = Field(default=SCHEMA_VERSION, description="Result schema version.")
    experiment_id: str = Field(description="Base experiment identifier.")
    backend: str = Field(default="pytorch", description="Inference backend.")
    backend_version: str | None = Field(default=None, description="Backend version.")
    num_cycles: Count = Field(description="Number of cycles.")
    statistics: CycleStatistics = Field(description="Statistics across cycles.")
    cycle_results: list[AggregatedResult] = Field(description="One result per cycle.")
    cycle_metadata: list[CycleMetadata] = Field(
        default_factory=list, description="Per-cycle metadata."
    )
    start_time: Timestamp = Field(description="Start of the first cycle.")
    end_time: Timestamp = Field(description="End of the last cycle.")
    total_duration_sec: float = Field(description="end - start, seconds.")
    effective_config: dict[str, Any] = Field(
        default_factory=dict, description="Resolved experiment config."
    )
    config_warnings: list[str] = Field(default_factory=list, description="Config warnings.")
    config_hash: str | None = Field(default=None, description="Resolved config hash.")
    llem_version: str | None = Field(default=None, description="llem version.")
    written_by: str | None = Field(
        default=None, description="Program that wrote the file: 'llem' for llem's own."
    )


#: The v3 model of any result document (per-process, aggregated or multi-cycle).
ResultModel = RawProcessResult | AggregatedResult | MultiCycleResult
