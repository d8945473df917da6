"""Aggregation: ranks into one result (sums, union window, distinct devices, refusals) and
cycles into statistics (mean, sample std, Student-t 95 % interval, CV)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from llem.aggregate import (
    aggregate_cycles,
    aggregate_experiment,
    aggregate_processes,
    summarize,
    t_quantile_975,
    write_result,
)
from llem.cli import main
from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.domain.experiment import MultiCycleResult, RawProcessResult, Timestamps
from llem.domain.instrumentation import InstrumentationCost
from llem.domain.metrics import (
    ComputeMetrics,
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMetrics,
    InferenceMetrics,
    LatencyMeasurements,
    PhaseEnergy,
    ThermalThrottleInfo,
)
from llem.errors import AggregationError

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def spec_for(**overrides: Any):
    return make_spec(parse_experiment({"config_name": "e", "model_name": "org/m", **overrides}),
                     "c", "r")


def raw(
    rank: int,
    start: float = 0.0,
    end: float = 10.0,
    output: int = 100,
    devices: list[tuple[str, float | None]] | None = None,
    model: str = "org/m",
    spec: Any = None,
    counters: dict[str, tuple[float, float]] | None = None,
    **extra: Any,
) -> RawProcessResult:
    spec = spec or spec_for()
    devices = [(f"GPU-{rank}", 50.0)] if devices is None else devices
    energy = (None if any(e is None for _, e in devices) or not devices
              else sum(e for _, e in devices if e is not None))
    duration = end - start
    latencies = LatencyMeasurements(ttft_ms=[10.0 + rank] * 2, itl_full_ms=[5.0] * 4,
                                    itl_trimmed_ms=[5.0] * 2, e2e_ms=[100.0 + rank] * 2,
                                    request_count=2, total_output_tokens=output)
    fields: dict[str, Any] = dict(
        experiment_id=spec.experiment_id, process_index=rank, gpu_id=rank,
        config_name="e", model_name=model,
        timestamps=Timestamps(start=T0 + timedelta(seconds=start),
                              end=T0 + timedelta(seconds=end), duration_sec=duration),
        inference_metrics=InferenceMetrics(
            total_tokens=output + 50, input_tokens=50, output_tokens=output,
            inference_time_sec=duration, tokens_per_second=(output + 50) / duration,
            latency_per_token_ms=1.0, latency_measurements=latencies.model_dump(),
        ),
        energy_metrics=EnergyMetrics(total_energy_j=energy, duration_sec=duration),
        compute_metrics=ComputeMetrics(flops_total=1e9),
        device_energy=[DeviceEnergy(device_id=d, kind="gpu", energy_j=e, source="nvml_counter",
                                    unavailable_reason=None if e is not None else "broken",
                                    counter_start_j=(counters or {}).get(d, (None, None))[0],
                                    counter_end_j=(counters or {}).get(d, (None, None))[1])
                       for d, e in devices],
        energy_source="nvml_counter" if devices else "none",
        energy_tracking_failed=energy is None and bool(extra.pop("fails", True)),
        output_tokens=output, config_hash=spec.config_hash, cycle_id=0,
    )
    fields.update(extra)
    return RawProcessResult(**fields)


def test_sums_tokens_and_energy_and_uses_the_union_window() -> None:
    result = aggregate_processes([raw(0, 0, 10, 100), raw(1, 2, 12, 140)], spec_for())
    assert result.output_tokens == 240 and result.total_tokens == 340
    assert result.total_energy_j == 100.0
    assert result.output_tokens_per_second == pytest.approx(240 / 12)  # not a mean of rates
    assert result.total_inference_time_sec == 20.0  # v2: sum of per-process times
    assert result.avg_tokens_per_second == pytest.approx((150 / 10 + 190 / 10) / 2)
    assert result.energy_per_output_token_j == pytest.approx(100 / 240)
    assert result.measured_window is not None and result.measured_window.duration_sec == 12.0
    assert result.latency_stats is not None and result.latency_stats.ttft_samples == 4
    assert result.latency_stats.ttft_max_ms == 11.0 and result.total_flops == 2e9
    assert result.aggregation.temporal_overlap_verified
    assert result.aggregation.gpu_attribution_verified


def test_a_device_two_ranks_report_is_counted_once() -> None:
    shared = [("GPU-shared", 80.0)]
    counters = {"GPU-shared": (5000.0, 5080.0)}
    result = aggregate_processes([raw(0, devices=shared, counters=counters),
                                  raw(1, devices=shared, counters=counters)], spec_for())
    assert result.total_energy_j == 80.0
    assert not result.aggregation.gpu_attribution_verified
    assert "metered once" in result.aggregation.warnings[0]


def test_a_shared_gpu_is_metered_over_the_union_window() -> None:
    # one 100 W GPU: rank 0 measures 0-10 s, rank 1 2-12 s; the counter is the driver's
    first = raw(0, 0, 10, devices=[("GPU-s", 1000.0)], counters={"GPU-s": (5000.0, 6000.0)})
    second = raw(1, 2, 12, devices=[("GPU-s", 1000.0)], counters={"GPU-s": (5200.0, 6200.0)})
    result = aggregate_processes([first, second], spec_for())
    assert result.total_energy_j == pytest.approx(1200.0)  # 12 s union, not rank 0's 1000 J
    assert result.device_energy is not None and len(result.device_energy) == 1
    assert result.device_energy[0].energy_j == pytest.approx(1200.0)
    assert result.energy_per_output_token_j == pytest.approx(1200.0 / 200)
    breakdown = result.energy_breakdown
    assert breakdown is not None and breakdown.adjusted_j is None
    assert "shared" in (breakdown.adjusted_unavailable_reason or "")


def _phases(prefill_j: float, decode_j: float) -> PhaseEnergy:
    return PhaseEnergy(prefill_energy_j=prefill_j, decode_energy_j=decode_j,
                       prefill_time_sec=1.0, decode_time_sec=9.0, method="sampled")


def test_a_shared_gpu_is_not_counted_twice_in_the_phase_split() -> None:
    counters = {"GPU-s": (5000.0, 6000.0)}
    first = raw(0, 0, 10, devices=[("GPU-s", 1000.0)], counters=counters,
                phase_energy=_phases(100.0, 900.0))
    second = raw(1, 0, 10, devices=[("GPU-s", 1000.0)], counters=counters,
                 phase_energy=_phases(100.0, 900.0))
    phases = aggregate_processes([first, second], spec_for()).phase_energy
    assert phases is not None
    assert phases.prefill_energy_j is None and phases.decode_energy_j is None
    assert "GPU-s" in (phases.unavailable_reason or "")
    assert phases.prefill_time_sec == pytest.approx(2.0)  # times stay: each rank's own
    # ranks on their own GPUs: the split is the sum of the ranks' splits
    own = [raw(rank, 0, 10, phase_energy=_phases(10.0, 40.0)) for rank in (0, 1)]
    split = aggregate_processes(own, spec_for()).phase_energy
    assert split is not None and split.prefill_energy_j == pytest.approx(20.0)
    assert split.decode_energy_j == pytest.approx(80.0)


def test_a_shared_gpu_without_a_common_counter_is_null_with_the_reason() -> None:
    first = raw(0, 0, 10, devices=[("GPU-s", 1000.0)])
    second = raw(1, 2, 12, devices=[("GPU-s", 1000.0)])
    result = aggregate_processes([first, second], spec_for())
    assert result.total_energy_j is None and result.energy_per_output_token_j is None
    assert "no common counter" in (result.energy_unavailable_reason or "")


def _breakdown(adjusted_j: float | None, reason: str | None = None) -> EnergyBreakdown:
    return EnergyBreakdown(raw_j=50.0, adjusted_j=adjusted_j, baseline_power_w=4.0,
                           baseline_method="fresh", adjusted_unavailable_reason=reason)


def test_one_rank_without_adjusted_energy_nulls_the_aggregate_with_its_reason() -> None:
    ok = raw(0, energy_breakdown=_breakdown(10.0))
    invalid = raw(1, energy_breakdown=_breakdown(None, "the baseline is not valid"))
    result = aggregate_processes([ok, invalid], spec_for())
    breakdown = result.energy_breakdown
    assert breakdown is not None and breakdown.raw_j == 100.0
    assert breakdown.adjusted_j is None  # not rank 0's 10 J alone
    assert breakdown.adjusted_unavailable_reason == "rank 1: the baseline is not valid"
    both = aggregate_processes([ok, raw(1, energy_breakdown=_breakdown(12.0))], spec_for())
    assert both.energy_breakdown is not None and both.energy_breakdown.adjusted_j == 22.0


def test_an_unmeasured_rank_makes_the_total_null_with_its_reason() -> None:
    result = aggregate_processes([raw(0), raw(1, devices=[("GPU-1", None)])], spec_for())
    assert result.total_energy_j is None and result.energy_per_output_token_j is None
    assert "rank 1" in (result.energy_unavailable_reason or "")
    assert result.energy_tracking_failed


def test_a_rank_covered_by_the_host_meter_is_not_a_failure() -> None:
    rapl = [("rapl:package-0", 30.0)]
    covered = raw(1, devices=[], fails=False, energy_unavailable_reason="metered by rank 0")
    result = aggregate_processes([raw(0, devices=rapl), covered], spec_for())
    assert result.total_energy_j == 30.0 and not result.energy_tracking_failed


def test_missing_ranks_are_refused() -> None:
    with pytest.raises(AggregationError, match="missing or duplicated"):
        aggregate_processes([raw(0), raw(2)], spec_for())


def test_non_overlapping_windows_are_refused() -> None:
    with pytest.raises(AggregationError, match="do not overlap"):
        aggregate_processes([raw(0, 0, 10), raw(1, 10, 20)], spec_for())


def test_mixed_models_are_refused() -> None:
    with pytest.raises(AggregationError, match="model"):
        aggregate_processes([raw(0), raw(1, model="org/other")], spec_for())


def test_results_of_another_config_are_refused() -> None:
    other = spec_for(precision="bfloat16")
    with pytest.raises(AggregationError, match="config hash"):
        aggregate_processes([raw(0, spec=other)], spec_for())


def test_throttle_flags_are_ored_and_durations_maxed() -> None:
    hot = ThermalThrottleInfo(detected=True, thermal=True, hw_thermal=True,
                              throttle_duration_sec=1.5, max_temperature_c=85.0)
    calm = ThermalThrottleInfo(throttle_duration_sec=0.0, max_temperature_c=60.0)
    result = aggregate_processes([raw(0, thermal_throttle=calm), raw(1, thermal_throttle=hot)],
                                 spec_for())
    info = result.thermal_throttle
    assert info is not None and info.detected and info.thermal and not info.power
    assert info.throttle_duration_sec == 1.5 and info.max_temperature_c == 85.0


def _write_cycle(
    exp_dir: Path, cycle: int, raws: list[RawProcessResult], done: bool = True
) -> None:
    folder = exp_dir / f"cycle_{cycle}" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    for r in raws:
        (folder / f"process_{r.process_index}.json").write_text(r.model_dump_json())
        if done:
            (folder / f"process_{r.process_index}.done").write_text("done\n")


def test_cli_writes_a_schema_valid_result(tmp_path: Path) -> None:
    spec = spec_for(num_processes=2)
    spec_path = tmp_path / "spec.json"
    write_experiment_spec(spec, spec_path)
    _write_cycle(tmp_path / "exp", 0, [raw(0, spec=spec), raw(1, 1, 11, spec=spec)])
    out = tmp_path / "exp" / "result.json"
    assert main(["aggregate", "--spec", str(spec_path), "--exp-dir", str(tmp_path / "exp"),
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema_version"] == "3.0.0" and doc["output_tokens"] == 200
    assert doc["config_hash"] == spec.config_hash and doc["campaign"] == "c"


def test_cli_reads_the_cycles_beside_its_output_by_default(tmp_path: Path) -> None:
    """Without --exp-dir the experiment folder is the one result.json goes into."""
    spec = spec_for(num_processes=1)
    spec_path = tmp_path / "spec.json"
    write_experiment_spec(spec, spec_path)
    _write_cycle(tmp_path / "exp", 0, [raw(0, spec=spec)])
    out = tmp_path / "exp" / "result.json"
    assert main(["aggregate", "--spec", str(spec_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["output_tokens"] == raw(0, spec=spec).output_tokens
    elsewhere = tmp_path / "empty" / "result.json"
    elsewhere.parent.mkdir()
    assert main(["aggregate", "--spec", str(spec_path), "--out", str(elsewhere)]) != 0
    assert not elsewhere.exists()


def test_a_rank_without_its_completion_marker_is_missing(tmp_path: Path) -> None:
    spec = spec_for(num_processes=2)
    _write_cycle(tmp_path, 0, [raw(0, spec=spec)])
    _write_cycle(tmp_path, 0, [raw(1, spec=spec)], done=False)
    with pytest.raises(AggregationError, match="completion marker"):
        aggregate_experiment(spec, tmp_path)
    (tmp_path / "cycle_0" / "raw" / "process_1.json").unlink()
    with pytest.raises(AggregationError, match=r"missing result of rank\(s\) \[1\]"):
        aggregate_experiment(spec, tmp_path)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_an_invalid_document_is_not_written(tmp_path: Path) -> None:
    result = aggregate_processes([raw(0)], spec_for())
    result.total_tokens = "many"  # type: ignore[assignment]  # breaks the schema
    out = tmp_path / "result.json"
    with pytest.raises(Exception, match="schema"):
        write_result(result, out)
    assert not out.exists()


# -- cycles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423), (120, 1.9799)],
)
def test_t_quantile_matches_tables(df: int, expected: float) -> None:
    assert t_quantile_975(df) == pytest.approx(expected, abs=1e-4)


def test_summary_of_a_known_sample() -> None:
    s = summarize([10.0, 12.0, 14.0])
    assert s.mean == 12.0 and s.std == 2.0 and s.n == 3  # sample std (n - 1)
    # modified Cox interval on ln x: mean 2.4744, variance 0.028298 (n - 1), t(2) = 4.3027
    logs = [math.log(v) for v in (10.0, 12.0, 14.0)]
    m = sum(logs) / 3
    s2 = sum((y - m) ** 2 for y in logs) / 2
    half = 4.3027 * math.sqrt(s2 / 3 + s2 * s2 / 4)
    assert s.ci_lower == pytest.approx(math.exp(m + s2 / 2 - half), rel=1e-4)
    assert s.ci_upper == pytest.approx(math.exp(m + s2 / 2 + half), rel=1e-4)
    assert s.ci_lower == pytest.approx(7.900, abs=1e-3)
    assert s.ci_upper == pytest.approx(18.403, abs=1e-3)
    assert s.cv == pytest.approx(2.0 / 12.0)


@pytest.mark.parametrize("values", [[0.2, 1.1], [30.0, 2.0], [100.0, 101.0], [5.0, 5.0 + 1e-9]])
def test_two_cycle_intervals_stay_on_the_positive_axis(values: list[float]) -> None:
    """With 2 cycles the Student-t interval of the raw values goes below zero (t(1) = 12.7)."""
    s = summarize(values)
    assert s.ci_lower is not None and s.ci_upper is not None
    assert 0 < s.ci_lower <= min(values) and max(values) <= s.ci_upper


def test_a_sample_with_a_non_positive_value_has_no_interval() -> None:
    s = summarize([0.0, 2.0])
    assert (s.ci_lower, s.ci_upper) == (None, None) and s.mean == 1.0


def _cycle(k: int, energy: float | None, output: int):
    spec = spec_for(num_cycles=3)
    result = aggregate_processes(
        [raw(0, 0, 10, output, devices=[("GPU-0", energy)], spec=spec, cycle_id=k)], spec
    )
    return result


def test_cycles_give_statistics_of_energy_throughput_and_j_per_token(tmp_path: Path) -> None:
    spec = spec_for(num_cycles=3)
    cycles = [_cycle(0, 100.0, 100), _cycle(1, 110.0, 110), _cycle(2, 120.0, 120)]
    multi = aggregate_cycles(cycles, spec)
    st = multi.statistics
    assert st.num_cycles == 3 and st.energy_mean_j == 110.0 and st.energy_std_j == 10.0
    assert st.output_throughput_mean_tps == pytest.approx(11.0)
    assert st.energy_per_output_token_mean_j == pytest.approx(1.0)
    assert st.energy_per_output_token_std_j == pytest.approx(0.0, abs=1e-12)
    assert 0 < st.energy_ci_95_lower < 110.0 < st.energy_ci_95_upper
    assert 0 < st.throughput_ci_95_lower < st.throughput_mean_tps < st.throughput_ci_95_upper
    assert 0 < st.output_throughput_ci_95_lower < 11.0 < st.output_throughput_ci_95_upper
    assert st.throughput_cv == pytest.approx(st.throughput_std_tps / st.throughput_mean_tps)
    assert multi.config_hash == spec.config_hash and len(multi.cycle_results) == 3
    out = tmp_path / "result.json"
    write_result(multi, out)  # validated against the multi-cycle schema
    assert MultiCycleResult.model_validate(json.loads(out.read_text())).num_cycles == 3


def test_one_unmeasured_cycle_nulls_the_energy_statistics() -> None:
    multi = aggregate_cycles([_cycle(0, 100.0, 100), _cycle(1, None, 100)],
                             spec_for(num_cycles=3))
    st = multi.statistics
    assert st.energy_mean_j is None and st.energy_per_output_token_mean_j is None
    assert st.output_throughput_mean_tps == pytest.approx(10.0)


def test_experiment_folder_with_cycles_becomes_a_multi_cycle_result(tmp_path: Path) -> None:
    spec = spec_for(num_cycles=2)
    for k in range(2):
        _write_cycle(tmp_path, k, [raw(0, 0, 10 + k, spec=spec, cycle_id=k)])
    result = aggregate_experiment(spec, tmp_path)
    assert isinstance(result, MultiCycleResult) and result.num_cycles == 2
    (tmp_path / "cycle_1" / "raw" / "process_0.json").unlink()
    with pytest.raises(AggregationError, match="missing result"):
        aggregate_experiment(spec, tmp_path)


def test_missing_cycle_folders_are_named(tmp_path: Path) -> None:
    spec = spec_for(num_cycles=3)
    _write_cycle(tmp_path, 0, [raw(0, spec=spec)])
    with pytest.raises(AggregationError, match="cycle_1"):
        aggregate_experiment(spec, tmp_path)


def test_an_undefined_throughput_cv_is_null_not_zero() -> None:
    cycles = [_cycle(k, 100.0, 100).model_copy(update={"total_tokens": 0}) for k in range(2)]
    st = aggregate_cycles(cycles, spec_for(num_cycles=3)).statistics
    assert st.throughput_mean_tps == 0.0 and st.throughput_cv is None


def test_instrumentation_cost_is_summed_over_ranks() -> None:
    def cost(served: list[str], cpu: float, reads: int, read_ms: float | None,
             process: float) -> InstrumentationCost:
        return InstrumentationCost(
            sampler_served=served, sample_interval_ms=100.0, sampler_cpu_sec=cpu, reads=reads,
            mean_read_ms=read_ms, process_cpu_sec=process, cpu_fraction=cpu / process,
        )

    result = aggregate_processes([
        raw(0, instrumentation=cost(["throttle_reasons", "phase_split"], 0.02, 100, 0.1, 9.0)),
        raw(1, instrumentation=cost(["timeseries"], 0.01, 50, 0.4, 1.0)),
    ], spec_for())
    total = result.instrumentation
    assert total is not None
    assert total.sampler_served == ["timeseries", "throttle_reasons", "phase_split"]
    assert total.sampler_cpu_sec == pytest.approx(0.03) and total.reads == 150
    assert total.mean_read_ms == pytest.approx((100 * 0.1 + 50 * 0.4) / 150)
    assert total.process_cpu_sec == pytest.approx(10.0)
    assert total.cpu_fraction == pytest.approx(0.003)
    # a rank without a recorded cost (an older result) leaves the sum unknown, not partial
    older = aggregate_processes([raw(0, instrumentation=cost([], 0.0, 0, None, 1.0)), raw(1)],
                                spec_for())
    assert older.instrumentation is None
