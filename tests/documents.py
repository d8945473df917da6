"""Builders of result documents in every format llem loads, following the v2 reference.

Each builder returns a fresh JSON-ready dict, so tests can break one field at a time.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

UPSTREAM_DIR = Path(__file__).resolve().parent / "fixtures" / "upstream-results"


def v2_raw_dec2025(rank: int = 0, energy_j: float = 120.0, output_tokens: int = 200) -> dict:
    """A per-process result with only the December-2025 core fields."""
    return {
        "schema_version": "2.0.0",
        "experiment_id": "exp_20251220",
        "process_index": rank,
        "gpu_id": rank,
        "timestamps": {
            "start": "2025-12-20T10:00:00",
            "end": "2025-12-20T10:00:30",
            "duration_sec": 30.0,
        },
        "inference_metrics": {
            "total_tokens": 400 + output_tokens,
            "input_tokens": 400,
            "output_tokens": output_tokens,
            "inference_time_sec": 30.0,
            "tokens_per_second": (400 + output_tokens) / 30.0,
            "latency_per_token_ms": 30_000.0 / (400 + output_tokens),
        },
        "energy_metrics": {"total_energy_j": energy_j, "duration_sec": 30.0},
        "compute_metrics": {"flops_total": 1.0e12},
    }


def v2_raw_jan2026(rank: int = 0, energy_j: float = 150.0, output_tokens: int = 256) -> dict:
    """A per-process result with every field v2 had by late January 2026."""
    doc = v2_raw_dec2025(rank, energy_j, output_tokens)
    doc["experiment_id"] = "exp_20260125"
    doc.update(
        {
            "backend": "pytorch",
            "backend_version": "2.5.1",
            "gpu_name": "NVIDIA A100-SXM4-80GB",
            "gpu_is_mig": False,
            "gpu_mig_profile": None,
            "energy_measurement_warning": None,
            "energy_tracking_failed": False,
            "config_name": "llama-bs8",
            "model_name": "meta-llama/Llama-3.2-1B",
            "effective_config": {"model_name": "meta-llama/Llama-3.2-1B", "batch_size": 8},
            "cli_overrides": {},
            "config_warnings": [],
            "parameter_provenance": {
                "batching.batch_size": {"value": 8, "source": "config_file", "source_detail": None}
            },
            "preset_chain": [],
            "cycle_run_info": {"cycle_id": 0, "cycle_count": 1, "total_cycles": 1},
            "extended_metrics": {
                "tpot_ms": 12.5,
                "token_efficiency_index": None,
                "memory": {"total_vram_mb": 81920.0, "model_memory_mb": 2400.0},
                "gpu_utilisation": {"sm_utilisation_mean": 71.0, "sm_utilisation_samples": 30},
                "batch": {"effective_batch_size": 8.0},
                "kv_cache": {},
                "request_latency": {"e2e_latency_mean_ms": 900.0, "e2e_latency_samples": 32},
            },
            "per_request_latencies_ms": [880.0, 910.0, 905.0],
            "gpu_utilisation_samples": [70.0, 72.0],
        }
    )
    doc["timestamps"] = {
        "start": "2026-01-25T09:00:00.123456",
        "end": "2026-01-25T09:00:30.123456",
        "duration_sec": 30.0,
    }
    doc["inference_metrics"]["time_to_first_token_ms"] = 45.0
    doc["inference_metrics"]["latency_measurements"] = {
        "ttft_ms": [44.0, 46.0],
        "itl_full_ms": [12.0, 13.0],
        "itl_trimmed_ms": [12.5],
        "request_count": 2,
        "total_output_tokens": output_tokens,
        "excluded_tokens": 0,
        "warmup_requests_excluded": 0,
        "streaming_mode": True,
        "measurement_mode": "true_streaming",
    }
    doc["energy_metrics"].update({"gpu_energy_j": energy_j, "gpu_power_w": energy_j / 30.0})
    return doc


def v2_aggregated_dec2025(energy_j: tuple[float, ...] = (120.0, 130.0)) -> dict:
    """A December-2025 aggregated result (core fields only) with embedded process results."""
    processes = [v2_raw_dec2025(rank, e) for rank, e in enumerate(energy_j)]
    total_tokens = sum(p["inference_metrics"]["total_tokens"] for p in processes)
    total_energy = sum(energy_j)
    return {
        "schema_version": "2.0.0",
        "experiment_id": "exp_20251220",
        "aggregation": {"method": "sum_energy_avg_throughput", "num_processes": len(processes)},
        "total_tokens": total_tokens,
        "total_energy_j": total_energy,
        "total_inference_time_sec": 30.0 * len(processes),
        "avg_tokens_per_second": sum(
            p["inference_metrics"]["tokens_per_second"] for p in processes
        ) / len(processes),
        "avg_energy_per_token_j": total_energy / total_tokens,
        "total_flops": 1.0e12 * len(processes),
        "process_results": processes,
        "start_time": "2025-12-20T10:00:00",
        "end_time": "2025-12-20T10:00:30",
    }


def v2_aggregated_jan2026(energy_j: tuple[float, ...] = (150.0, 160.0)) -> dict:
    """A late-January-2026 aggregated result with every optional v2 field."""
    processes = [v2_raw_jan2026(rank, e) for rank, e in enumerate(energy_j)]
    doc = v2_aggregated_dec2025()
    total_tokens = sum(p["inference_metrics"]["total_tokens"] for p in processes)
    doc.update(
        {
            "experiment_id": "exp_20260125",
            "backend": "pytorch",
            "backend_version": "2.5.1",
            "process_results": processes,
            "total_tokens": total_tokens,
            "total_energy_j": sum(energy_j),
            "avg_energy_per_token_j": sum(energy_j) / total_tokens,
            "start_time": "2026-01-25T09:00:00.123456",
            "end_time": "2026-01-25T09:00:30.123456",
            "effective_config": {"model_name": "meta-llama/Llama-3.2-1B"},
            "cli_overrides": {},
            "config_warnings": ["batch_size large for model"],
            "parameter_provenance": {},
            "preset_chain": [],
            "latency_stats": {
                "ttft_mean_ms": 45.0,
                "ttft_median_ms": 45.0,
                "ttft_p95_ms": 46.0,
                "ttft_p99_ms": 46.0,
                "ttft_min_ms": 44.0,
                "ttft_max_ms": 46.0,
                "ttft_samples": 4,
                "itl_mean_ms": 12.5,
                "itl_samples": 4,
            },
            "energy_tracking_failed": False,
            "extended_metrics": {"tpot_ms": 12.5},
        }
    )
    return doc


def v2_multi_cycle(num_cycles: int = 3) -> dict:
    """A v2 multi-cycle result of ``num_cycles`` aggregated cycles."""
    cycles = []
    for i in range(num_cycles):
        cycle = v2_aggregated_jan2026((150.0 + i, 160.0 + i))
        cycle["experiment_id"] = f"exp_20260125_c{i}"
        cycles.append(cycle)
    energies = [c["total_energy_j"] for c in cycles]
    mean = sum(energies) / len(energies)
    return {
        "schema_version": "2.0.0",
        "experiment_id": "exp_20260125",
        "backend": "pytorch",
        "num_cycles": num_cycles,
        "statistics": {
            "num_cycles": num_cycles,
            "energy_mean_j": mean,
            "energy_std_j": 1.0,
            "energy_ci_95_lower": mean - 2.5,
            "energy_ci_95_upper": mean + 2.5,
            "throughput_mean_tps": 21.9,
            "throughput_std_tps": 0.1,
            "throughput_ci_95_lower": 21.7,
            "throughput_ci_95_upper": 22.1,
            "efficiency_mean_tpj": 3.5,
            "efficiency_std_tpj": 0.01,
            "latency_mean_ms": 45.0,
            "latency_std_ms": 0.5,
            "energy_cv": 0.003,
            "throughput_cv": 0.005,
        },
        "cycle_results": cycles,
        "cycle_metadata": [
            {"cycle_id": i, "timestamp": f"2026-01-25T09:0{i}:00", "gpu_temperature_c": 40.0}
            for i in range(num_cycles)
        ],
        "start_time": "2026-01-25T09:00:00",
        "end_time": "2026-01-25T09:03:00",
        "total_duration_sec": 180.0,
        "effective_config": {},
        "config_warnings": [],
    }


def v3_raw(rank: int = 0, energy_j: float | None = 150.0) -> dict:
    """A v3 per-process result as llem writes it (UTC-aware datetimes)."""
    doc = v2_raw_jan2026(rank, energy_j if energy_j is not None else 0.0)
    doc["schema_version"] = "3.0.0"
    doc["timestamps"] = {
        "start": "2026-11-01T12:00:00+00:00",
        "end": "2026-11-01T12:00:30+00:00",
        "duration_sec": 30.0,
    }
    doc["energy_metrics"]["total_energy_j"] = energy_j
    doc["energy_breakdown"] = (
        None
        if energy_j is None
        else {
            "raw_j": energy_j,
            "adjusted_j": energy_j - 60.0 * 30.0 / 30.0,
            "baseline_power_w": 2.0,
            "baseline_method": "fresh",
            "baseline_timestamp": "2026-11-01T11:59:00+00:00",
            "baseline_cache_age_sec": 0.0,
        }
    )
    doc["thermal_throttle"] = {"detected": False, "max_temperature_c": 61.0}
    doc["warmup_result"] = {
        "converged": True,
        "final_cv": 0.02,
        "iterations_completed": 7,
        "target_cv": 0.05,
        "max_prompts": 50,
        "latencies_ms": [110.0, 101.0, 100.0, 100.5, 99.8, 100.1, 100.0],
    }
    doc["config_hash"] = "0123456789abcdef"
    doc["energy_source"] = "nvml_counter" if energy_j is not None else "none"
    doc["written_by"] = "llem"
    return doc


def v3_aggregated(energy_j: tuple[float, ...] = (150.0, 160.0)) -> dict:
    """A v3 aggregated result with embedded v3 process results."""
    processes = [v3_raw(rank, e) for rank, e in enumerate(energy_j)]
    doc = v2_aggregated_jan2026(energy_j)
    doc.update(
        {
            "schema_version": "3.0.0",
            "process_results": processes,
            "start_time": "2026-11-01T12:00:00+00:00",
            "end_time": "2026-11-01T12:00:30+00:00",
            "model_name": "meta-llama/Llama-3.2-1B",
            "config_hash": "0123456789abcdef",
            "energy_source": "nvml_counter",
            "output_tokens": sum(p["inference_metrics"]["output_tokens"] for p in processes),
            "written_by": "llem",
        }
    )
    return doc


def v3_multi_cycle(num_cycles: int = 2) -> dict:
    """A v3 multi-cycle result."""
    doc = v2_multi_cycle(num_cycles)
    doc["schema_version"] = "3.0.0"
    doc["cycle_results"] = [v3_aggregated((150.0 + i, 160.0 + i)) for i in range(num_cycles)]
    doc["written_by"] = "llem"
    return doc


def upstream_v3_aggregated() -> dict:
    """A "3.0.0" aggregated result as the earlier tool wrote it, with its known defects: a
    failed rank recorded as 0 J, thermal false while hw_thermal is true, raw perf_counter
    throttle timestamps, no energy_source, and no llem mark."""
    doc = v3_aggregated((150.0, 160.0))
    for key in ("written_by", "energy_source", "config_hash", "output_tokens", "model_name"):
        doc.pop(key)
    doc["start_time"] = "2026-02-10T08:00:00.250000"
    doc["end_time"] = "2026-02-10T08:00:30.250000"
    throttle = {"detected": True, "thermal": False, "power": False, "sw_thermal": False,
                "hw_thermal": True, "hw_power": False, "throttle_duration_sec": 1.5,
                "max_temperature_c": 88.0,
                "throttle_timestamps": [81234.52, 81234.62, 81234.72]}
    doc["thermal_throttle"] = throttle
    doc["effective_config"] = {"model_name": "meta-llama/Llama-3.2-1B",
                               "fp_precision": "float16", "batching": {"batch_size": 4}}
    for process in doc["process_results"]:
        for key in ("written_by", "energy_source", "config_hash"):
            process.pop(key)
        process["thermal_throttle"] = dict(throttle)
        process["effective_config"] = doc["effective_config"]
        process["parameter_provenance"] = {}
        process["timestamps"] = {"start": "2026-02-10T08:00:00.250000",
                                 "end": "2026-02-10T08:00:30.250000", "duration_sec": 30.0}
        process["energy_breakdown"] = None
    failed = doc["process_results"][1]
    failed["energy_tracking_failed"] = True
    failed["energy_metrics"].update({"total_energy_j": 0.0, "gpu_energy_j": 0.0,
                                     "gpu_power_w": 0.0})
    doc["energy_tracking_failed"] = True
    doc["total_energy_j"] = 150.0
    doc["energy_breakdown"] = {"raw_j": 150.0, "adjusted_j": 90.0, "baseline_power_w": 2.0,
                               "baseline_method": "fresh"}
    return doc


def upstream(name: str) -> dict:
    """One of the real result files of the earlier tool's later line."""
    return json.loads((UPSTREAM_DIR / name).read_text())


def write(tmp_path: Path, name: str, document: Any) -> Path:
    """Write a document as JSON into ``tmp_path``."""
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def clone(document: dict) -> dict:
    return copy.deepcopy(document)
