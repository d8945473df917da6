"""Tables and views of the result store, declared column by column (never inferred).

Each column is declared once, here, with its DuckDB type and a description. The same
declaration yields the ``CREATE TABLE`` statement, the column comments users see in
``duckdb_columns()``, and the Arrow schema that bulk inserts are built with, so the three can
never drift apart.

Store schema versions (``store_meta.store_schema_version``):

* 0 - the archive layout: ``store_meta``, ``ingest_batches`` and ``documents`` (every
  ingested file, verbatim) only.
* 1 - adds the derived tables ``results``, ``process_results``, ``cycle_statistics`` and
  ``timeseries``, and the views ``latest_results`` and ``results_flat``.
* 2 - times are ``TIMESTAMPTZ`` (UTC; ``times_assumed_utc`` replaces ``timestamps_utc``);
  ``results`` gains ``model_provenance``, ``measurement_fingerprint`` and
  ``timeseries_missing``; ``cycle_statistics`` gains the latency interval;
  ``latest_results`` keeps every cycle of the newest run; ``results`` and
  ``process_results`` gain what measuring cost (``sampler_*`` columns and
  ``instrumentation``). The migration rebuilds the three
  document-derived tables from ``documents`` (``timeseries`` is kept as it is).
* 3 - ``results`` gains the columns researchers filter and compare on: devices
  (``num_devices``, ``gpu_names``, ``gpu_uuids``), ``host``, ``slurm_job_id``,
  ``avg_power_w``, ``adjusted_energy_per_output_token_j``, TTFT and ITL p50/p95 with
  ``latency_unavailable_reason``, ``thermal_throttle_duration_sec``, ``num_cycles`` and the
  95 % intervals of the headline figures (``*_ci_95_lower/upper``, ``ci_n``,
  ``interval_unavailable_reason``). The migration rebuilds the document-derived tables as the
  one to 2 does.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from llem.columns import table_from_rows

#: Store schema version this llem writes and reads. Older stores are migrated forward.
STORE_SCHEMA_VERSION = 3


@dataclass(frozen=True)
class Column:
    """One declared column."""

    name: str
    type: str
    description: str
    not_null: bool = False


@dataclass(frozen=True)
class Table:
    """One declared table."""

    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


_ARROW_TYPES: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "UBIGINT": pa.uint64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}


def _c(name: str, type_: str, description: str, not_null: bool = False) -> Column:
    return Column(name, type_, description, not_null)


#: What measuring cost (llem.domain.instrumentation.InstrumentationCost), as columns.
_INSTRUMENTATION = (
    _c("sampler_cpu_sec", "DOUBLE",
       "CPU seconds of llem's sampler thread over the measured window (thread CPU clock; "
       "0 when no sampler ran); null when unmeasured or not recorded."),
    _c("sampler_cpu_fraction", "DOUBLE",
       "sampler_cpu_sec over the process CPU seconds of the window."),
    _c("sampler_reads", "BIGINT", "Reads of the energy source by the sampler."),
    _c("sampler_mean_read_ms", "DOUBLE", "Mean wall time of one sampler read, ms."),
    _c("instrumentation", "JSON",
       "InstrumentationCost: what the sampler served and what measuring cost."),
)


_PROVENANCE = (
    _c("content_sha256", "VARCHAR", "SHA-256 of the ingested file (documents.content_sha256).",
       True),
    _c("source_path", "VARCHAR", "Absolute path of the file at ingest time.", True),
    _c("ingest_batch_id", "VARCHAR", "Ingest batch that added the row.", True),
    _c("ingested_at", "TIMESTAMPTZ", "When the ingest call that added the row started.", True),
)

STORE_META = Table(
    "store_meta",
    "Store metadata as key/value pairs (stable across store versions, so any llem can read "
    "the version of any store).",
    (
        _c("key", "VARCHAR", "Name, e.g. store_schema_version, llem_version, duckdb_version.",
           True),
        _c("value", "VARCHAR", "Value as text.", True),
    ),
    primary_key=("key",),
)

INGEST_BATCHES = Table(
    "ingest_batches",
    "One row per ingest call that added something: who, when, which files, counts.",
    (
        _c("batch_id", "VARCHAR", "Batch id (UTC time + random suffix).", True),
        _c("started_at", "TIMESTAMPTZ", "When the ingest call started.", True),
        _c("committed_at", "TIMESTAMPTZ", "When its transaction committed.", True),
        _c("user_name", "VARCHAR", "User who ran the ingest."),
        _c("host", "VARCHAR", "Host it ran on."),
        _c("llem_version", "VARCHAR", "llem version that ingested.", True),
        _c("duckdb_version", "VARCHAR", "DuckDB version that wrote.", True),
        _c("files_new", "INTEGER", "Files added by this batch.", True),
        _c("files_already_present", "INTEGER", "Files that were already in the store.", True),
        _c("files_refused", "INTEGER", "Files refused (not stored).", True),
        _c("results_added", "INTEGER", "Rows added to results.", True),
        _c("process_results_added", "INTEGER", "Rows added to process_results.", True),
        _c("timeseries_rows_added", "BIGINT", "Rows added to timeseries.", True),
        _c("files", "JSON", "Every file of the call: path, status, content_sha256, reason.",
           True),
    ),
    primary_key=("batch_id",),
)

DOCUMENTS = Table(
    "documents",
    "Every ingested file, verbatim; results are derived from these and never change.",
    (
        _c("content_sha256", "VARCHAR", "SHA-256 of the file bytes.", True),
        _c("source_path", "VARCHAR", "Absolute path of the file at ingest time.", True),
        _c("source_format", "VARCHAR",
           "v2_raw, v2_aggregated, v2_multi_cycle, v3_raw, v3_aggregated, v3_multi_cycle or "
           "later_line.", True),
        _c("source_schema_version", "VARCHAR", "schema_version as written in the file.", True),
        _c("experiment_id", "VARCHAR", "experiment_id as written in the file.", True),
        _c("ingest_batch_id", "VARCHAR", "Ingest batch that added the file.", True),
        _c("ingested_at", "TIMESTAMPTZ", "When the ingest call that added it started.", True),
        _c("document", "JSON", "The original document.", True),
    ),
    primary_key=("content_sha256",),
)

RESULTS = Table(
    "results",
    "One row per experiment result: an aggregated file gives one row, a multi-cycle file one "
    "row per cycle. Times are UTC; naive times of the earlier tool are read as UTC "
    "(times_assumed_utc).",
    (
        _c("result_id", "VARCHAR",
           "experiment_id, or '<experiment_id>/cycle-<n>' for a cycle of a multi-cycle file.",
           True),
        _c("experiment_id", "VARCHAR", "experiment_id of the file.", True),
        _c("experiment_name", "VARCHAR", "Experiment (config) name, where recorded."),
        _c("cycle_id", "BIGINT", "Cycle index for rows from a multi-cycle file."),
        _c("campaign", "VARCHAR", "Campaign name (llem results)."),
        _c("run_id", "VARCHAR", "Run id within the campaign (llem results)."),
        _c("source_format", "VARCHAR", "Format of the source file.", True),
        _c("source_schema_version", "VARCHAR", "schema_version of the source file.", True),
        _c("model_name", "VARCHAR",
           "Model, from the result, its process results or its effective config."),
        _c("backend", "VARCHAR", "Inference backend."),
        _c("backend_version", "VARCHAR", "Backend version."),
        _c("precision", "VARCHAR",
           "Precision as the file records it (config, else the compute precision its "
           "process results state), in one vocabulary: fp32, fp16, bf16, fp8, int8, int4."),
        _c("batch_size", "BIGINT",
           "Configured batch size as the file records it (config, the backend section of a "
           "later-line config, or the v2 parameter provenance)."),
        _c("config_hash", "VARCHAR", "Hash of the resolved config (later line: "
           "measurement_config_hash)."),
        _c("llem_version", "VARCHAR", "llem version that measured."),
        _c("num_processes", "BIGINT", "Processes aggregated."),
        _c("gpu_name", "VARCHAR", "GPU name, from the environment or the process results."),
        _c("num_devices", "BIGINT",
           "GPUs the result ran on (distinct UUIDs, else distinct GPU indices of its process "
           "results); 0 when every process ran on the CPU; null when not recorded."),
        _c("gpu_names", "JSON",
           "Names of the GPUs it ran on, as a JSON list (one entry per distinct GPU)."),
        _c("gpu_uuids", "JSON", "NVML UUIDs of the GPUs it ran on, as a JSON list."),
        _c("host", "VARCHAR", "Host name it ran on, where recorded."),
        _c("slurm_job_id", "VARCHAR", "SLURM_JOB_ID it ran under; null outside SLURM."),
        _c("total_tokens", "BIGINT", "Input plus output tokens over processes."),
        _c("input_tokens", "BIGINT",
           "Input tokens, where recorded or summable (later line: derived, see "
           "output_tokens)."),
        _c("output_tokens", "BIGINT",
           "Output tokens, where recorded or summable over processes; later line: derived "
           "as total_flops / flops_per_output_token, kept only when it and the input-token "
           "quotient are whole and add up to total_tokens."),
        _c("total_energy_j", "DOUBLE", "Energy of record, J; null when unmeasured."),
        _c("adjusted_energy_j", "DOUBLE", "Baseline-adjusted energy, J."),
        _c("baseline_power_w", "DOUBLE", "Idle baseline power, W."),
        _c("baseline_method", "VARCHAR", "fresh, cached or unavailable."),
        _c("energy_source", "VARCHAR",
           "Source of the energy of record (imports of the earlier tool: 'unrecorded')."),
        _c("energy_unavailable_reason", "VARCHAR", "Why total_energy_j is null, when it is."),
        _c("energy_tracking_failed", "BOOLEAN", "The source says energy tracking failed."),
        _c("energy_per_output_token_j", "DOUBLE",
           "Energy of record per output token, J (reported, or total/output tokens)."),
        _c("energy_per_token_j", "DOUBLE",
           "Energy of record per total (input + output) token, J."),
        _c("adjusted_energy_per_output_token_j", "DOUBLE",
           "Baseline-adjusted energy per output token, J; null when either is unknown."),
        _c("avg_power_w", "DOUBLE",
           "Mean power of the energy of record over the measured window (total_energy_j / "
           "measured_window_sec), W; null when either is unknown."),
        _c("throughput_tokens_per_sec", "DOUBLE",
           "Output tokens per second over the wall window: as reported, else derived "
           "(throughput_source = 'derived_wall_window') as output_tokens / the measured "
           "window, or / (end_time - start_time) where no window is recorded."),
        _c("throughput_source", "VARCHAR", "reported or derived_wall_window."),
        _c("avg_tokens_per_second", "DOUBLE",
           "v2 compatibility: mean of per-process total-token rates."),
        _c("total_inference_time_sec", "DOUBLE",
           "v2 compatibility: sum of per-process inference times, s."),
        _c("measured_window_sec", "DOUBLE", "Wall time of the measured window, s."),
        _c("total_flops", "DOUBLE", "Estimated FLOPs over processes."),
        _c("start_time", "TIMESTAMPTZ", "Earliest process start (UTC)."),
        _c("end_time", "TIMESTAMPTZ", "Latest process end (UTC)."),
        _c("times_assumed_utc", "BOOLEAN",
           "True when the source wrote naive times (the earlier tool), read as UTC."),
        _c("thermal_throttle_detected", "BOOLEAN", "Throttling detected in the window."),
        _c("max_temperature_c", "DOUBLE", "Peak temperature in the window, C."),
        _c("ttft_mean_ms", "DOUBLE", "Mean time to first token, ms."),
        _c("itl_mean_ms", "DOUBLE", "Mean inter-token latency, ms."),
        _c("ttft_p50_ms", "DOUBLE", "Median time to first token, ms."),
        _c("ttft_p95_ms", "DOUBLE", "95th percentile time to first token, ms."),
        _c("itl_p50_ms", "DOUBLE", "Median inter-token latency, ms."),
        _c("itl_p95_ms", "DOUBLE", "95th percentile inter-token latency, ms."),
        _c("latency_unavailable_reason", "VARCHAR",
           "Why the TTFT or ITL percentiles are null, when they are."),
        _c("thermal_throttle_duration_sec", "DOUBLE",
           "Seconds of the measured window spent throttled; null when throttling was not "
           "monitored."),
        _c("num_cycles", "BIGINT",
           "Cycles of the experiment this row is one of (1 for an aggregated file)."),
        _c("energy_per_output_token_ci_95_lower", "DOUBLE",
           "95 % interval of the mean J per output token across the experiment's cycles, "
           "lower (n = ci_n; llem: on the log scale, so > 0); null for a single cycle."),
        _c("energy_per_output_token_ci_95_upper", "DOUBLE",
           "Its upper bound, J."),
        _c("throughput_ci_95_lower", "DOUBLE",
           "95 % interval of the mean output tokens per second across cycles, lower."),
        _c("throughput_ci_95_upper", "DOUBLE", "Its upper bound."),
        _c("ci_n", "BIGINT", "Cycles the intervals rest on."),
        _c("interval_unavailable_reason", "VARCHAR",
           "Why the interval columns are null, when they are."),
        *_INSTRUMENTATION,
        _c("timeseries_path", "VARCHAR", "Time-series file named by the result, as written."),
        _c("timeseries_missing", "JSON",
           "Time-series files the result names that were missing at ingest (their samples "
           "are not in timeseries); null when none was."),
        _c("model_provenance", "VARCHAR",
           "How the model's weights were obtained: hub, local folder, dequantized from GGUF "
           "or random weights (model_source has the details); null when not recorded."),
        _c("environment", "JSON", "EnvironmentMetadata."),
        _c("latency_stats", "JSON", "LatencyStatistics."),
        _c("thermal_throttle", "JSON", "ThermalThrottleInfo."),
        _c("energy_breakdown", "JSON", "EnergyBreakdown (raw, baseline, adjusted)."),
        _c("device_energy", "JSON", "Energy per physical device with its source."),
        _c("measured_window", "JSON", "MeasuredWindow."),
        _c("phase_energy", "JSON", "Prefill/decode split."),
        _c("model_source", "JSON", "Where the model's weights came from."),
        _c("extended_metrics", "JSON", "ExtendedEfficiencyMetrics."),
        _c("effective_config", "JSON", "Resolved config as recorded by the source."),
        _c("warnings", "JSON", "Measurement, config and aggregation warnings."),
        _c("fingerprint", "VARCHAR",
           "SHA-256 of the result's v3 form: the same result met in another file is not "
           "added twice; a different one under the same result_id is refused.", True),
        _c("measurement_fingerprint", "VARCHAR",
           "SHA-256 of what was measured (id, cycle, config hash, times, tokens, energy, "
           "FLOPs), whatever the format: the same measurement in another format of the "
           "earlier tool is already present, not a conflict.", True),
        *_PROVENANCE,
    ),
    primary_key=("result_id",),
)

PROCESS_RESULTS = Table(
    "process_results",
    "One row per process result, embedded in an aggregated file or from a lone file.",
    (
        _c("process_result_id", "VARCHAR", "'<result_id>/process-<process_index>'.", True),
        _c("result_id", "VARCHAR",
           "The experiment result it belongs to (join results; absent for a lone file whose "
           "aggregate is not stored).", True),
        _c("experiment_id", "VARCHAR", "experiment_id of the process result.", True),
        _c("cycle_id", "BIGINT", "Cycle index, where known."),
        _c("process_index", "BIGINT", "Rank.", True),
        _c("embedded", "BOOLEAN", "True when it came embedded in an aggregated file.", True),
        _c("source_format", "VARCHAR", "Format of the source file.", True),
        _c("source_schema_version", "VARCHAR", "schema_version of the source file.", True),
        _c("config_name", "VARCHAR", "Experiment (config) name."),
        _c("model_name", "VARCHAR", "Model name."),
        _c("backend", "VARCHAR", "Inference backend."),
        _c("gpu_id", "BIGINT", "Device index used (-1 for CPU)."),
        _c("gpu_name", "VARCHAR", "Device name."),
        _c("gpu_is_mig", "BOOLEAN", "Whether the GPU is a MIG slice."),
        _c("total_tokens", "BIGINT", "Input plus output tokens."),
        _c("input_tokens", "BIGINT", "Input tokens."),
        _c("output_tokens", "BIGINT", "Output tokens."),
        _c("inference_time_sec", "DOUBLE", "Inference wall time, s."),
        _c("tokens_per_second", "DOUBLE", "v2 compatibility: total tokens per second."),
        _c("output_tokens_per_second", "DOUBLE", "Output tokens per second, where recorded."),
        _c("total_energy_j", "DOUBLE", "Energy of record, J; null when unmeasured."),
        _c("gpu_energy_j", "DOUBLE", "GPU energy, J."),
        _c("cpu_energy_j", "DOUBLE", "CPU package energy, J."),
        _c("ram_energy_j", "DOUBLE", "DRAM energy, J."),
        _c("gpu_power_w", "DOUBLE", "Mean GPU power, W."),
        _c("cpu_power_w", "DOUBLE", "Mean CPU power, W."),
        _c("adjusted_energy_j", "DOUBLE", "Baseline-adjusted energy, J."),
        _c("baseline_power_w", "DOUBLE", "Idle baseline power, W."),
        _c("energy_source", "VARCHAR", "Source of the energy of record."),
        _c("energy_unavailable_reason", "VARCHAR", "Why total_energy_j is null, when it is."),
        _c("energy_tracking_failed", "BOOLEAN", "The source says energy tracking failed."),
        _c("flops_total", "DOUBLE", "Estimated FLOPs."),
        _c("peak_memory_mb", "DOUBLE", "Peak accelerator memory, MB."),
        _c("start_time", "TIMESTAMPTZ", "Start of the process's measured work (UTC)."),
        _c("end_time", "TIMESTAMPTZ", "End of the process's measured work (UTC)."),
        _c("duration_sec", "DOUBLE", "end - start, s."),
        _c("times_assumed_utc", "BOOLEAN",
           "True when the source wrote naive times (the earlier tool), read as UTC."),
        *_INSTRUMENTATION,
        _c("timeseries_path", "VARCHAR", "Time-series file named by the process, as written."),
        _c("environment", "JSON", "EnvironmentMetadata."),
        _c("energy_breakdown", "JSON", "EnergyBreakdown."),
        _c("thermal_throttle", "JSON", "ThermalThrottleInfo."),
        _c("warmup_result", "JSON", "WarmupResult."),
        _c("latency_stats", "JSON", "LatencyStatistics."),
        _c("device_energy", "JSON", "Energy per physical device."),
        _c("inference_metrics", "JSON", "InferenceMetrics (incl. latency samples)."),
        _c("compute_metrics", "JSON", "ComputeMetrics."),
        _c("energy_metrics", "JSON", "EnergyMetrics."),
        _c("fingerprint", "VARCHAR", "SHA-256 of the process result's v3 form.", True),
        *_PROVENANCE,
    ),
    primary_key=("process_result_id",),
)

CYCLE_STATISTICS = Table(
    "cycle_statistics",
    "One row per multi-cycle file: statistics across its cycles (rows of results with the "
    "same experiment_id and a cycle_id).",
    (
        _c("experiment_id", "VARCHAR", "Base experiment id of the multi-cycle file.", True),
        _c("source_format", "VARCHAR", "Format of the source file.", True),
        _c("source_schema_version", "VARCHAR", "schema_version of the source file.", True),
        _c("model_name", "VARCHAR", "Model name (from the cycles)."),
        _c("config_hash", "VARCHAR", "Hash of the resolved config."),
        _c("num_cycles", "BIGINT", "Cycles the statistics cover.", True),
        _c("energy_mean_j", "DOUBLE", "Mean energy, J; null unless every cycle was measured."),
        _c("energy_std_j", "DOUBLE", "Sample std of energy, J."),
        _c("energy_ci_95_lower", "DOUBLE",
           "95% interval of the mean, lower, J (llem: on the log scale, so > 0; n = "
           "num_cycles; imports: as the file recorded it)."),
        _c("energy_ci_95_upper", "DOUBLE", "95% interval of the mean, upper, J."),
        _c("energy_cv", "DOUBLE", "CV of energy."),
        _c("throughput_mean_tps", "DOUBLE", "v2 compatibility: mean total-token rate."),
        _c("throughput_std_tps", "DOUBLE", "Its std."),
        _c("throughput_ci_95_lower", "DOUBLE", "95% CI lower."),
        _c("throughput_ci_95_upper", "DOUBLE", "95% CI upper."),
        _c("throughput_cv", "DOUBLE", "CV of throughput."),
        _c("efficiency_mean_tpj", "DOUBLE", "Mean tokens per J."),
        _c("efficiency_std_tpj", "DOUBLE", "Std of tokens per J."),
        _c("latency_mean_ms", "DOUBLE", "Mean latency, ms."),
        _c("latency_std_ms", "DOUBLE", "Std of latency, ms."),
        _c("latency_ci_95_lower", "DOUBLE", "95% interval of the mean latency, lower, ms."),
        _c("latency_ci_95_upper", "DOUBLE", "95% interval of the mean latency, upper, ms."),
        _c("output_throughput_mean_tps", "DOUBLE", "Mean output-token throughput."),
        _c("output_throughput_std_tps", "DOUBLE", "Its std."),
        _c("output_throughput_ci_95_lower", "DOUBLE", "95% CI lower."),
        _c("output_throughput_ci_95_upper", "DOUBLE", "95% CI upper."),
        _c("output_throughput_cv", "DOUBLE", "Its CV."),
        _c("energy_per_output_token_mean_j", "DOUBLE", "Mean J per output token."),
        _c("energy_per_output_token_std_j", "DOUBLE", "Its std."),
        _c("energy_per_output_token_ci_95_lower", "DOUBLE", "95% CI lower."),
        _c("energy_per_output_token_ci_95_upper", "DOUBLE", "95% CI upper."),
        _c("energy_per_output_token_cv", "DOUBLE", "Its CV."),
        _c("start_time", "TIMESTAMPTZ", "Start of the first cycle (UTC)."),
        _c("end_time", "TIMESTAMPTZ", "End of the last cycle (UTC)."),
        _c("total_duration_sec", "DOUBLE", "end - start, s."),
        _c("cycle_metadata", "JSON", "Per-cycle metadata (temperature, load)."),
        _c("fingerprint", "VARCHAR", "SHA-256 of the statistics' v3 form.", True),
        *_PROVENANCE,
    ),
    primary_key=("experiment_id",),
)

TIMESERIES = Table(
    "timeseries",
    "One row per sampler observation from the time-series Parquet files of llem results.",
    (
        _c("result_id", "VARCHAR", "Result the samples belong to.", True),
        _c("process_result_id", "VARCHAR", "'<result_id>/process-<rank>'.", True),
        _c("rank", "BIGINT", "Process rank that sampled.", True),
        _c("device_id", "VARCHAR", "Device identity (GPU UUID, or e.g. 'rapl:package-0').",
           True),
        _c("device_index", "BIGINT", "Physical device index."),
        _c("t_sec", "DOUBLE", "Seconds since the measured window started (may be < 0).",
           True),
        _c("in_window", "BOOLEAN", "Whether the sample lies inside the measured window.", True),
        _c("power_w", "DOUBLE", "Instantaneous power, W."),
        _c("energy_j", "DOUBLE", "Cumulative energy since the window started, J."),
        _c("temperature_c", "DOUBLE", "Temperature, C."),
        _c("sm_clock_mhz", "DOUBLE", "SM clock, MHz."),
        _c("mem_clock_mhz", "DOUBLE", "Memory clock, MHz."),
        _c("gpu_utilization_pct", "DOUBLE", "GPU utilisation, %."),
        _c("mem_utilization_pct", "DOUBLE", "Memory bandwidth utilisation, %."),
        _c("memory_used_mb", "DOUBLE", "Device memory used, MB."),
        _c("clock_event_reasons", "UBIGINT", "NVML clocks-event (throttle) reason bitmask."),
        _c("timeseries_sha256", "VARCHAR", "SHA-256 of the Parquet file.", True),
        _c("timeseries_file", "VARCHAR", "Absolute path of the Parquet file at ingest.", True),
        _c("content_sha256", "VARCHAR", "Result file that referenced it.", True),
        _c("ingest_batch_id", "VARCHAR", "Ingest batch that added the rows.", True),
    ),
)

#: Tables of store schema version 0 (the archive layout).
ARCHIVE_TABLES = (STORE_META, INGEST_BATCHES, DOCUMENTS)
#: Tables derived from the archived documents, added in store schema version 1.
DERIVED_TABLES = (RESULTS, PROCESS_RESULTS, CYCLE_STATISTICS, TIMESERIES)
#: Every table of the current store schema.
TABLES = ARCHIVE_TABLES + DERIVED_TABLES

_FLAT_COLUMNS = (
    "result_id", "experiment_id", "experiment_name", "cycle_id", "campaign", "run_id",
    "model_name", "model_provenance", "backend", "precision", "batch_size", "gpu_name",
    "num_processes", "num_devices", "gpu_names", "gpu_uuids", "host", "slurm_job_id",
    "source_format", "source_schema_version", "config_hash", "energy_source",
    "total_energy_j", "adjusted_energy_j", "baseline_power_w", "total_tokens", "output_tokens",
    "energy_per_output_token_j", "adjusted_energy_per_output_token_j", "avg_power_w",
    "throughput_tokens_per_sec", "measured_window_sec", "ttft_mean_ms", "itl_mean_ms",
    "ttft_p50_ms", "ttft_p95_ms", "itl_p50_ms", "itl_p95_ms", "num_cycles",
    "energy_per_output_token_ci_95_lower", "energy_per_output_token_ci_95_upper",
    "throughput_ci_95_lower", "throughput_ci_95_upper", "ci_n",
    "thermal_throttle_detected", "thermal_throttle_duration_sec", "start_time", "end_time",
    "times_assumed_utc", "ingest_batch_id", "ingested_at",
)

VIEWS: dict[str, str] = {
    # Every cycle of the newest run of each experiment (name, or id where no name was
    # recorded) and config hash: a run is one experiment_id, its cycles its rows.
    "latest_results": (
        "CREATE VIEW latest_results AS "
        "SELECT * EXCLUDE (_run_end, _run_ingested) FROM ("
        "SELECT *, "
        "max(end_time) OVER _run AS _run_end, max(ingested_at) OVER _run AS _run_ingested "
        "FROM results "
        "WINDOW _run AS (PARTITION BY coalesce(experiment_name, experiment_id), config_hash, "
        "experiment_id)) "
        "QUALIFY dense_rank() OVER ("
        "PARTITION BY coalesce(experiment_name, experiment_id), config_hash "
        "ORDER BY _run_end DESC NULLS LAST, _run_ingested DESC, experiment_id DESC) = 1"
    ),
    # The columns people filter and compare on, without the nested JSON.
    "results_flat": (
        f"CREATE VIEW results_flat AS SELECT {', '.join(_FLAT_COLUMNS)} FROM results"
    ),
}


def batch_column(table: Table) -> str:
    """The column naming the ingest batch that added each row of ``table``."""
    return "batch_id" if table is INGEST_BATCHES else "ingest_batch_id"


def create_table_sql(table: Table, *, primary_key: bool = True) -> list[str]:
    """``CREATE TABLE`` plus one ``COMMENT ON`` per column and one for the table; without
    the primary key for a DuckLake, which has none."""
    lines = [
        f"    {c.name} {c.type}{' NOT NULL' if c.not_null else ''}" for c in table.columns
    ]
    if table.primary_key and primary_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    statements = [f"CREATE TABLE {table.name} (\n" + ",\n".join(lines) + "\n)"]
    statements.append(f"COMMENT ON TABLE {table.name} IS {sql_string(table.description)}")
    statements.extend(
        f"COMMENT ON COLUMN {table.name}.{c.name} IS {sql_string(c.description)}"
        for c in table.columns
    )
    return statements


def arrow_schema(table: Table) -> pa.Schema:
    """Arrow schema matching the table, for bulk inserts."""
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.type], nullable=not c.not_null) for c in table.columns]
    )


def arrow_table(table: Table, rows: list[dict]) -> pa.Table:
    """Rows (dicts keyed by column name) as an Arrow table with the declared types.

    Keys that are not columns are ignored and missing columns are null. Built from Arrow
    buffers (:mod:`llem.columns`): pyarrow's own row conversion imports pandas.
    """
    return table_from_rows(rows, arrow_schema(table))


def sql_string(text: str) -> str:
    """``text`` as an SQL string literal, for statements that take no bound parameters
    (COMMENT ON, CREATE VIEW)."""
    return "'" + text.replace("'", "''") + "'"
