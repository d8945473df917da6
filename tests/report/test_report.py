"""The report: table values copied from results (null stays empty), plots and time series."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llem.cli import main
from llem.energy.base import DeviceSample
from llem.measure.throttle import HW_SLOWDOWN, throttle_info
from llem.report import ReportOutputs, build_report
from llem.report.rows import load_rows
from tests import documents


def _result(
    tmp_path: Path, name: str, batch_size: int, energy_j: float | None, with_series: bool
) -> Path:
    exp_dir = tmp_path / name
    exp_dir.mkdir()
    doc = documents.v3_aggregated((energy_j or 0.0,))
    doc["effective_config"] = {
        "config_name": name,
        "model_name": "tiny",
        "precision": "float32",
        "batching": {"batch_size": batch_size},
    }
    doc["model_name"] = "tiny"
    doc["output_tokens_per_second"] = 40.0 * batch_size
    doc["measured_window"] = {
        "start_time": "2026-11-01T12:00:00+00:00",
        "end_time": "2026-11-01T12:00:04+00:00",
        "duration_sec": 4.0,
    }
    if energy_j is None:
        doc["total_energy_j"] = None
        doc["avg_energy_per_token_j"] = None
        doc["energy_source"] = "none"
        doc["energy_unavailable_reason"] = "no readable energy counter"
        doc["energy_per_output_token_j"] = None
        doc["energy_breakdown"] = None
        for process in doc["process_results"]:
            process["energy_metrics"]["total_energy_j"] = None
            process["energy_breakdown"] = None
    else:
        doc["energy_per_output_token_j"] = energy_j / 100.0
        doc["energy_breakdown"] = {"raw_j": energy_j, "adjusted_j": energy_j - 8.0,
                                   "baseline_power_w": 2.0, "baseline_method": "fresh"}
    if with_series:
        series = exp_dir / "cycle_0" / "timeseries" / "process_0.parquet"
        series.parent.mkdir(parents=True)
        table = pa.table(
            {
                "rank": [0] * 6,
                "device_id": ["rapl:package-0"] * 6,
                "t_sec": [-1.0, 0.0, 1.0, 2.0, 3.0, 4.5],
                "in_window": [False, True, True, True, True, False],
                "power_w": [5.0, 9.0, 9.5, 9.7, 9.6, 6.0],
                "temperature_c": [40.0, 41.0, 42.0, 43.0, 43.5, 43.0],
            }
        )
        pq.write_table(table, series)
        doc["timeseries_paths"] = ["cycle_0/timeseries/process_0.parquet"]
    path = exp_dir / "result.json"
    path.write_text(json.dumps(doc))
    return path


def test_rows_copy_measured_values_and_keep_unmeasured_empty(tmp_path: Path) -> None:
    measured = _result(tmp_path, "bs1", 1, 120.0, with_series=True)
    unmeasured = _result(tmp_path, "bs4", 4, None, with_series=False)
    rows = load_rows([measured, unmeasured])
    assert [r.experiment for r in rows] == ["bs1", "bs4"]
    assert rows[0].energy_raw_j == 120.0
    assert rows[0].energy_adjusted_j == 112.0
    assert rows[0].energy_per_output_token_j == pytest.approx(1.2)
    assert rows[0].timeseries_files == [
        measured.parent / "cycle_0" / "timeseries" / "process_0.parquet"
    ]
    assert rows[1].energy_raw_j is None
    assert rows[1].energy_per_output_token_j is None
    assert rows[1].batch_size == 4
    assert any("no readable energy counter" in note for note in rows[1].notes)

    out = tmp_path / "report"
    written = build_report(
        [measured, unmeasured],
        ReportOutputs(
            table_html=out / "t.html",
            table_csv=out / "t.csv",
            energy_per_token_plot=out / "e.png",
            tradeoff_plot=out / "x.png",
            timeseries_dir=out / "ts",
        ),
    )
    assert (out / "ts" / "bs1.png") in written
    assert not (out / "ts" / "bs4.png").exists()
    for png in (out / "e.png", out / "x.png", out / "ts" / "bs1.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "t.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["energy_raw_j"] == "120.0"
    # An unmeasured energy is an empty cell, never zero.
    assert table[1]["energy_raw_j"] == ""
    assert table[1]["energy_per_output_token_j"] == ""
    page = (out / "t.html").read_text()
    assert "bs4" in page and "no readable energy counter" in page


def test_report_command_writes_table_and_refuses_no_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _result(tmp_path, "only", 2, 50.0, with_series=False)
    table = tmp_path / "table.html"
    assert main(["report", "--table", str(table), str(result)]) == 0
    assert "only" in table.read_text()
    assert main(["report", str(result)]) == 2
    assert "nothing to write" in capsys.readouterr().err


def test_plots_say_why_when_no_energy_was_measured(tmp_path: Path) -> None:
    from llem.report.plots import energy_per_token_vs_batch_size

    rows = load_rows([_result(tmp_path, "none", 1, None, with_series=False)])
    fig = energy_per_token_vs_batch_size(rows)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("No experiment has a measured J per output token" in t for t in texts)


def test_the_report_names_a_hardware_slowdown(tmp_path: Path) -> None:
    path = _result(tmp_path, "bs1", 1, 120.0, with_series=False)
    tick = [DeviceSample(device_id="GPU-0", timestamp_sec=1.0, clock_event_reasons=HW_SLOWDOWN)]
    info = throttle_info([tick], 0.0, 4.0, 0.1)
    assert info is not None and info.detected
    doc = json.loads(path.read_text())
    doc["thermal_throttle"] = info.model_dump(mode="json")
    path.write_text(json.dumps(doc))
    assert load_rows([path])[0].throttled == "hardware slowdown"  # throttled, not "none"


def test_report_and_store_show_the_same_figures_of_an_imported_result(tmp_path: Path) -> None:
    """One flattening serves both: the report's J per output token and throughput of the
    earlier tool's result are the store's."""
    from llem.store.ingest import ingest_paths
    from tests.store_documents import fetch_all

    path = documents.write(tmp_path, "r.json", documents.upstream("gpt2_pytorch_v2.0.json"))
    store = tmp_path / "s.duckdb"
    assert ingest_paths([path], store).ok
    stored = fetch_all(store, "SELECT energy_per_output_token_j, throughput_tokens_per_sec, "
                              "output_tokens, precision, model_name FROM results")[0]
    row = load_rows([path])[0]
    assert stored[0] is not None and stored[1] is not None
    assert (row.energy_per_output_token_j, row.output_tokens_per_second, row.output_tokens,
            row.precision, row.model) == stored


def test_multi_cycle_rows_show_positive_intervals_with_their_n(tmp_path: Path) -> None:
    from llem.aggregate import aggregate_cycles
    from llem.config.campaign import make_spec, parse_experiment
    from llem.domain.experiment import AggregatedResult

    spec = make_spec(parse_experiment({"config_name": "mc", "model_name": "tiny",
                                       "num_cycles": 2}), "c", "r")
    cycles = []
    for k, (energy, tokens) in enumerate([(40.0, 100), (90.0, 100)]):
        doc = documents.v3_aggregated((energy,))
        doc.update(cycle_id=k, output_tokens=tokens, energy_per_output_token_j=energy / tokens,
                   output_tokens_per_second=tokens / (4.0 + 6 * k),
                   model_source={"name": "tiny", "obtained": "random weights (x)"})
        doc["effective_config"] = {"config_name": "mc"}
        cycles.append(AggregatedResult.model_validate(doc))
    multi = aggregate_cycles(cycles, spec)
    path = tmp_path / "result.json"
    path.write_text(multi.model_dump_json())
    rows = load_rows([path])
    assert [r.cycle for r in rows] == [0, 1]
    assert rows[0].model_provenance == "random weights"
    per_token = rows[0].energy_per_output_token_interval_j
    assert per_token is not None and per_token.n == 2 and 0 < per_token.lower < 0.4
    out = tmp_path / "t.csv"
    build_report([path], ReportOutputs(table_csv=out, table_html=tmp_path / "t.html"))
    with out.open() as handle:
        table = list(csv.DictReader(handle))
    assert table[0]["energy_interval_j_n"] == "2"
    assert float(table[0]["energy_interval_j_lower"]) > 0
    assert float(table[0]["output_tokens_per_second_interval_lower"]) > 0
    assert "(n = 2)" in (tmp_path / "t.html").read_text()


_LATENCY = {
    "ttft_mean_ms": 21.0, "ttft_median_ms": 20.0, "ttft_p95_ms": 30.0, "ttft_p99_ms": 31.0,
    "ttft_min_ms": 10.0, "ttft_max_ms": 32.0, "ttft_samples": 8,
    "itl_mean_ms": 5.0, "itl_median_ms": 4.5, "itl_p95_ms": 9.0, "itl_samples": 50,
}

#: What a host without GPU and without readable RAPL records as its reason.
NO_ENERGY_REASON = "no GPU (NVML not available) and RAPL not readable (permission denied)"


def host_result(tmp_path: Path, name: str, batch_size: int, energy_j: float | None,
                source: str = "rapl") -> Path:
    """A result as llem writes it on a laptop-class host: throughput and latency always;
    energy from ``source``, or none with the reason such a host gives; time series off."""
    path = _result(tmp_path, name, batch_size, energy_j, with_series=False)
    doc = json.loads(path.read_text())
    doc["latency_stats"] = {**_LATENCY, "ttft_median_ms": 20.0 + batch_size,
                            "itl_median_ms": 4.0 + batch_size / 4}
    doc["effective_config"]["timeseries"] = {"enabled": False, "save": False}
    doc["model_source"] = {"name": "tiny", "obtained": "random weights (seed 0)"}
    if energy_j is None:
        doc["energy_unavailable_reason"] = NO_ENERGY_REASON
    else:
        doc["energy_source"] = source
        for process in doc["process_results"]:
            process["energy_source"] = source
    path.write_text(json.dumps(doc))
    return path


def _texts(fig: object) -> str:
    """Every text a figure shows: titles, labels, legends, annotations."""
    parts = []
    for ax in fig.axes:  # type: ignore[attr-defined]
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        parts += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            parts += [t.get_text() for t in legend.get_texts()]
    return "\n".join(parts)


def _all_outputs(out: Path) -> ReportOutputs:
    return ReportOutputs(
        table_html=out / "experiments.html", table_csv=out / "experiments.csv",
        energy_per_token_plot=out / "energy_per_token_vs_batch_size.png",
        tradeoff_plot=out / "energy_vs_throughput.png", timeseries_dir=out / "timeseries",
        performance_plot=out / "throughput_latency_vs_batch_size.png")


def test_a_gpu_less_host_gets_throughput_and_latency_plots_and_the_reason_for_no_energy(
    tmp_path: Path,
) -> None:
    from llem.report.plots import performance_vs_batch_size

    paths = [host_result(tmp_path, f"bs{b}", b, None) for b in (1, 4)]
    rows = load_rows(paths)
    fig = performance_vs_batch_size(rows)
    throughput, ttft, itl = fig.axes
    assert [list(line.get_ydata()) for line in throughput.get_lines()] == [[40.0, 160.0]]
    assert [list(line.get_ydata()) for line in ttft.get_lines()] == [[21.0, 24.0], [30.0, 30.0]]
    assert len(itl.get_lines()) == 2

    out = tmp_path / "report"
    written = build_report(paths, _all_outputs(out))
    assert out / "throughput_latency_vs_batch_size.png" in written
    page = (out / "experiments.html").read_text()
    # the plot is on the page; the reason energy is missing and why there is no time
    # series are each one sentence
    assert page.count("data:image/png;base64,") == 1
    assert (f"No experiment has a measured J per output token: {NO_ENERGY_REASON}."
            in page)
    assert ("No power or temperature time series: time series disabled "
            "(timeseries.enabled: false).") in page
    assert "random weights" in page


def test_every_energy_plot_of_an_estimate_says_estimate(tmp_path: Path) -> None:
    from llem.report.plots import energy_per_token_vs_batch_size, energy_vs_throughput

    rows = load_rows([host_result(tmp_path, f"bs{b}", b, 10.0 * b, source="estimate")
                      for b in (1, 4)])
    for draw in (energy_per_token_vs_batch_size, energy_vs_throughput):
        fig = draw(rows)
        assert "ESTIMATE" in _texts(fig) and "estimate (CPU time x TDP" in _texts(fig)
    line = energy_per_token_vs_batch_size(rows).axes[0].get_lines()[0]
    assert line.get_linestyle() == "--" and line.get_markerfacecolor() == "none"


def test_measured_and_estimated_points_never_share_a_line(tmp_path: Path) -> None:
    from llem.report.plots import energy_per_token_vs_batch_size

    rows = load_rows([host_result(tmp_path, "m1", 1, 10.0, source="rapl"),
                      host_result(tmp_path, "m4", 4, 40.0, source="rapl"),
                      host_result(tmp_path, "e1", 1, 12.0, source="estimate"),
                      host_result(tmp_path, "e4", 4, 44.0, source="estimate")])
    ax = energy_per_token_vs_batch_size(rows).axes[0]
    lines = ax.get_lines()
    labels = sorted(t.get_text() for t in ax.get_legend().get_texts())
    assert labels == ["tiny: estimate (CPU time x TDP, not measured)", "tiny: measured (rapl)"]
    assert len(lines) == 2
    measured = next(line for line in lines if line.get_linestyle() == "-")
    estimated = next(line for line in lines if line.get_linestyle() == "--")
    assert list(measured.get_ydata()) == [0.1, 0.4]
    assert list(estimated.get_ydata()) == [0.12, 0.44]
    assert measured.get_markerfacecolor() != "none" == estimated.get_markerfacecolor()


def test_plotted_intervals_show_their_n(tmp_path: Path) -> None:
    from llem.aggregate import aggregate_cycles
    from llem.config.campaign import make_spec, parse_experiment
    from llem.domain.experiment import AggregatedResult
    from llem.report.plots import energy_per_token_vs_batch_size, performance_vs_batch_size

    spec = make_spec(parse_experiment({"config_name": "mc", "model_name": "tiny",
                                       "num_cycles": 3}), "c", "r")
    cycles = []
    for k, energy in enumerate((40.0, 90.0, 60.0)):
        doc = documents.v3_aggregated((energy,))
        doc.update(cycle_id=k, output_tokens=100, energy_per_output_token_j=energy / 100,
                   output_tokens_per_second=100 / (4.0 + 2 * k), model_name="tiny")
        doc["effective_config"] = {"config_name": "mc", "batching": {"batch_size": 2}}
        cycles.append(AggregatedResult.model_validate(doc))
    path = tmp_path / "result.json"
    path.write_text(aggregate_cycles(cycles, spec).model_dump_json())
    rows = load_rows([path])
    assert "n = 3" in _texts(energy_per_token_vs_batch_size(rows))
    assert "n = 3" in _texts(performance_vs_batch_size(rows))
