"""Loading every result format users hold; one-line errors for everything else."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

import llem
from llem.domain.experiment import AggregatedResult, MultiCycleResult, RawProcessResult
from llem.errors import ResultLoadError
from llem.results.loader import read_result

from tests import documents as docs


@pytest.mark.parametrize(
    ("builder", "fmt", "model"),
    [
        (docs.v2_raw_dec2025, "v2_raw", RawProcessResult),
        (docs.v2_raw_jan2026, "v2_raw", RawProcessResult),
        (docs.v2_aggregated_dec2025, "v2_aggregated", AggregatedResult),
        (docs.v2_aggregated_jan2026, "v2_aggregated", AggregatedResult),
        (docs.v2_multi_cycle, "v2_multi_cycle", MultiCycleResult),
        (docs.v3_raw, "v3_raw", RawProcessResult),
        (docs.v3_aggregated, "v3_aggregated", AggregatedResult),
        (docs.v3_multi_cycle, "v3_multi_cycle", MultiCycleResult),
    ],
)
def test_each_format_loads_by_shape(tmp_path: Path, builder, fmt: str, model: type) -> None:
    document = builder()
    path = docs.write(tmp_path, "r.json", document)
    loaded = read_result(path)
    assert loaded.format == fmt
    assert isinstance(loaded.model, model)
    assert loaded.schema_version == document["schema_version"]
    assert loaded.document == document
    assert isinstance(llem.load_result(path), model)


def test_dec2025_file_gets_later_fields_defaulted(tmp_path: Path) -> None:
    model = llem.load_result(docs.write(tmp_path, "r.json", docs.v2_aggregated_dec2025()))
    assert model.backend == "pytorch"
    assert model.latency_stats is None and model.effective_config == {}
    assert model.process_results[0].config_name == ""
    assert model.total_energy_j == 250.0
    assert model.output_tokens == 400  # summed from the embedded process results
    assert model.energy_source == "unrecorded"


def test_naive_datetimes_are_kept_as_given(tmp_path: Path) -> None:
    model = llem.load_result(docs.write(tmp_path, "r.json", docs.v2_aggregated_jan2026()))
    assert model.start_time == datetime(2026, 1, 25, 9, 0, 0, 123456)
    assert model.start_time.tzinfo is None
    aware = llem.load_result(docs.write(tmp_path, "a.json", docs.v3_aggregated()))
    assert aware.start_time.tzinfo is not None


def test_failed_v2_energy_becomes_null_with_reason(tmp_path: Path) -> None:
    doc = docs.v2_aggregated_jan2026((0.0, 0.0))
    doc["energy_tracking_failed"] = True
    model = llem.load_result(docs.write(tmp_path, "r.json", doc))
    assert model.total_energy_j is None
    assert "failed" in model.energy_unavailable_reason


@pytest.mark.parametrize("name", ["gpt2_pytorch_v2.0.json", "gpt2_transformers_v2.0.json"])
def test_real_upstream_later_line_files_load(name: str) -> None:
    loaded = read_result(docs.UPSTREAM_DIR / name)
    assert loaded.format == "later_line"
    model = loaded.model
    assert isinstance(model, AggregatedResult)
    assert model.model_name == "gpt2"
    assert model.total_energy_j == pytest.approx(228.03882500813023)
    assert model.energy_breakdown.adjusted_j == pytest.approx(68.95598090375523)
    assert model.config_hash == "9944baab4dabe390"
    assert loaded.schema_version in ("2.0", "3.0")


def test_later_line_zero_energy_means_unmeasured(tmp_path: Path) -> None:
    """The later line inherited the 0 J convention; its zeros load as null with the reason."""
    doc = docs.upstream("gpt2_pytorch_v2.0.json")
    doc["total_energy_j"] = 0.0
    model = llem.load_result(docs.write(tmp_path, "r.json", doc))
    assert model.total_energy_j is None and model.avg_energy_per_token_j is None
    assert "recorded 0 J" in model.energy_unavailable_reason
    measured = llem.load_result(docs.UPSTREAM_DIR / "gpt2_pytorch_v2.0.json")
    assert measured.energy_unavailable_reason is None


def test_later_line_environment_is_upgraded() -> None:
    model = llem.load_result(docs.UPSTREAM_DIR / "gpt2_pytorch_v2.0.json")
    assert model.environment.summary_line == (
        "A100 40GB | CUDA 12.2 | Driver 535.261 | 23C | container"
    )


def _raise_for(tmp_path: Path, content: str | bytes) -> str:
    path = tmp_path / "bad.json"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(ResultLoadError) as err:
        read_result(path)
    message = str(err.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_truncated_json(tmp_path: Path) -> None:
    text = json.dumps(docs.v3_aggregated())
    cut = text.rindex(", ", 0, len(text) // 2) + 1  # cut between two members, mid-document
    assert "truncated JSON" in _raise_for(tmp_path, text[:cut])


def test_missing_required_field(tmp_path: Path) -> None:
    doc = docs.v3_aggregated()
    del doc["total_tokens"]
    assert "total_tokens" in _raise_for(tmp_path, json.dumps(doc))


def test_wrong_type(tmp_path: Path) -> None:
    doc = docs.v2_raw_jan2026()
    doc["energy_metrics"]["total_energy_j"] = "lots"
    message = _raise_for(tmp_path, json.dumps(doc))
    assert "$.energy_metrics.total_energy_j" in message and "v2 raw result" in message


def test_unknown_schema_version(tmp_path: Path) -> None:
    doc = docs.v3_aggregated()
    doc["schema_version"] = "9.1.0"
    assert "unknown schema version '9.1.0'" in _raise_for(tmp_path, json.dumps(doc))
    later = docs.upstream("gpt2_pytorch_v2.0.json")
    later["schema_version"] = "4.0"
    assert "unknown schema version '4.0'" in _raise_for(tmp_path, json.dumps(later))


@pytest.mark.parametrize("content", ['{"name": "a config"}', "[1, 2, 3]", '"text"'])
def test_document_that_is_no_result(tmp_path: Path, content: str) -> None:
    assert "not a result document" in _raise_for(tmp_path, content)


def test_binary_garbage(tmp_path: Path) -> None:
    assert "not UTF-8" in _raise_for(tmp_path, b"\xff\xfe\x00garbage")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llem", *args], capture_output=True, text=True)


def test_validate_command_reports_file_path_and_reason(tmp_path: Path) -> None:
    good = docs.write(tmp_path, "good.json", docs.v3_aggregated())
    bad_doc = docs.v3_aggregated()
    bad_doc["process_results"][1]["inference_metrics"]["output_tokens"] = "many"
    bad = docs.write(tmp_path, "bad.json", bad_doc)
    ok = _cli("validate", str(good))
    assert ok.returncode == 0 and "valid v3 aggregated result" in ok.stdout
    out = _cli("validate", str(good), str(bad))
    assert out.returncode == 1
    assert f"{bad}: $.process_results[1].inference_metrics.output_tokens:" in out.stderr
    assert "Traceback" not in out.stderr


def test_validate_command_on_non_result_has_no_traceback(tmp_path: Path) -> None:
    path = docs.write(tmp_path, "x.json", {"hello": 1})
    out = _cli("validate", str(path))
    assert out.returncode == 1 and "not a result document" in out.stderr
    assert "Traceback" not in out.stderr


def test_v2_zero_energy_means_unmeasured(tmp_path: Path) -> None:
    doc = docs.v2_aggregated_dec2025((0.0, 0.0))
    doc["total_energy_j"] = 0.0
    doc["avg_energy_per_token_j"] = 0.0
    model = llem.load_result(docs.write(tmp_path, "r.json", doc))
    assert model.total_energy_j is None and model.avg_energy_per_token_j is None
    assert "recorded 0 J" in model.energy_unavailable_reason
    process = model.process_results[0]
    assert process.energy_metrics.total_energy_j is None
    assert process.energy_metrics.gpu_power_w is None  # v2 default 0.0: not measured
    measured = llem.load_result(docs.write(tmp_path, "m.json", docs.v2_raw_jan2026()))
    assert measured.energy_metrics.gpu_energy_j == 150.0
    assert measured.energy_metrics.cpu_energy_j is None


def test_non_finite_numbers_are_refused(tmp_path: Path) -> None:
    text = json.dumps(docs.v3_aggregated()).replace('"total_energy_j": 310.0',
                                                    '"total_energy_j": NaN')
    assert "NaN is not valid JSON" in _raise_for(tmp_path, text)


def test_upstream_v3_files_get_the_repairs_of_the_earlier_tool(tmp_path: Path) -> None:
    """A "3.0.0" file the earlier tool wrote is not taken as llem's: its known defects are
    repaired as in its v2 and later-line files."""
    loaded = read_result(docs.write(tmp_path, "r.json", docs.upstream_v3_aggregated()))
    assert loaded.format == "upstream_v3_aggregated"
    agg = loaded.model
    assert isinstance(agg, AggregatedResult)
    failed = agg.process_results[1]
    assert failed.energy_metrics.total_energy_j is None and failed.energy_unavailable_reason
    assert failed.energy_metrics.gpu_energy_j is None and failed.energy_metrics.gpu_power_w is None
    # the aggregate's energy includes a failed rank: not a measurement
    assert agg.total_energy_j is None and agg.energy_breakdown is None
    assert "failed" in (agg.energy_unavailable_reason or "")
    for throttle in (agg.thermal_throttle, failed.thermal_throttle):
        assert throttle is not None and throttle.thermal and throttle.detected
        assert throttle.throttle_timestamps == []  # raw perf_counter values
    assert any("perf_counter" in w for w in agg.measurement_warnings or [])
    assert agg.energy_source == "unrecorded" and failed.energy_source == "unrecorded"


def test_llem_files_are_marked_and_loaded_unchanged(tmp_path: Path) -> None:
    doc = docs.v3_aggregated()
    doc["thermal_throttle"] = {"detected": True, "thermal": True, "hw_thermal": True,
                               "throttle_timestamps": [0.5, 1.0]}
    loaded = read_result(docs.write(tmp_path, "r.json", doc))
    assert loaded.format == "v3_aggregated" and loaded.model.written_by == "llem"
    assert loaded.model.thermal_throttle.throttle_timestamps == [0.5, 1.0]
    # llem files written before the mark carry llem_version, which the earlier tool never did
    del doc["written_by"]
    doc["llem_version"] = "0.3.0"
    assert read_result(docs.write(tmp_path, "old.json", doc)).format == "v3_aggregated"
