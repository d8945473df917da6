"""Ingesting every result format into the store: rows, sums, idempotency, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.cli import main
from llem.store.ingest import ALREADY_PRESENT, NEW, REFUSED, ingest_paths
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_documents import fetch_all
from tests.store_kinds import StoreUnderTest


def _one(store: str, sql: str):
    return fetch_all(store, sql)[0][0]


@pytest.fixture
def store(empty_store: StoreUnderTest) -> str:
    """A new store of each kind (a DuckDB file, a DuckLake): ingest behaves the same."""
    return empty_store.store


def test_every_format_lands_with_its_rows(tmp_path: Path, store: str) -> None:
    documents = sdocs.every_format()
    files = sdocs.write_all(tmp_path / "in", documents)
    report = ingest_paths(files, store)

    assert [f.status for f in report.files] == [NEW] * len(files)
    assert report.ok
    # aggregated: 1 row each; multi-cycle: one per cycle; lone per-process files: none
    rows = dict(fetch_all(store, "SELECT source_format, count(*) FROM results GROUP BY ALL"))
    assert rows == {"v2_aggregated": 2, "v2_multi_cycle": 3, "v3_aggregated": 1,
                    "v3_multi_cycle": 2, "later_line": 1}
    assert report.results_added == 9
    ids = {r[0] for r in fetch_all(store, "SELECT result_id FROM results")}
    assert ids == {"v2-dec", "v2-jan", "v2-mc/cycle-0", "v2-mc/cycle-1", "v2-mc/cycle-2",
                   # llem's own results carry their config hash in the id
                   "v3-agg@0123456789abcdef", "v3-mc@0123456789abcdef/cycle-0",
                   "v3-mc@0123456789abcdef/cycle-1", "gpt2_20260313_142111"}

    # energy per result equals the documents' totals, and so does the sum over all
    energy = dict(fetch_all(store, "SELECT result_id, total_energy_j FROM results"))
    assert energy["v2-dec"] == 250.0 and energy["v2-jan"] == 310.0
    assert [energy[f"v2-mc/cycle-{i}"] for i in range(3)] == [310.0, 312.0, 314.0]
    assert energy["gpt2_20260313_142111"] == pytest.approx(228.03882500813023)
    expected = sum(
        c["total_energy_j"]
        for doc in documents.values()
        for c in (doc.get("cycle_results") or ([doc] if "total_energy_j" in doc else []))
    )
    assert _one(store, "SELECT sum(total_energy_j) FROM results") == pytest.approx(expected)

    # every row keeps its source's schema version
    versions = dict(fetch_all(store, "SELECT result_id, source_schema_version FROM results"))
    assert versions["v2-dec"] == "2.0.0" and versions["v3-agg@0123456789abcdef"] == "3.0.0"
    assert versions["gpt2_20260313_142111"] == "3.0"

    # process results: 2 + 2 + 1 lone + 3x2 + 1 lone + 2 + 2x2
    assert _one(store, "SELECT count(*) FROM process_results") == 18
    assert _one(store, "SELECT sum(total_energy_j) FROM process_results WHERE result_id = "
                       "'v2-mc/cycle-2'") == 152.0 + 162.0
    lone = fetch_all(store, "SELECT p.embedded, r.result_id FROM process_results p "
                       "LEFT JOIN results r USING (result_id) WHERE p.experiment_id = 'v2-lone'")
    assert lone == [(False, None)]  # linked by id; its aggregate is not stored

    stats = dict(fetch_all(store, "SELECT experiment_id, num_cycles FROM cycle_statistics"))
    assert stats == {"v2-mc": 3, "v3-mc": 2}

    # the original documents are kept verbatim
    assert _one(store, "SELECT count(*) FROM documents") == len(files)
    kept = _one(store, "SELECT document FROM documents WHERE experiment_id = 'v2-dec'")
    assert json.loads(kept) == documents["v2_dec_aggregated"]


def test_derived_columns_follow_the_definitions(tmp_path: Path, store: str) -> None:
    files = sdocs.write_all(tmp_path, sdocs.every_format())
    ingest_paths(files, store)
    row = fetch_all(store, "SELECT model_name, output_tokens, energy_per_output_token_j, "
                      "throughput_tokens_per_sec, throughput_source, times_assumed_utc "
                      "FROM results WHERE result_id = 'v2-jan'")[0]
    # output tokens summed over both processes (256 each); wall window 30 s; naive times
    assert row == ("meta-llama/Llama-3.2-1B", 512, pytest.approx(310.0 / 512),
                   pytest.approx(512 / 30.0), "derived_wall_window", True)
    assert _one(store, "SELECT model_name FROM results WHERE result_id = 'v2-dec'") is None
    # one time type: TIMESTAMPTZ in UTC, for offsets and naive times alike
    utc = fetch_all(store, "SELECT epoch(start_time), times_assumed_utc, "
                      "typeof(start_time) FROM results WHERE result_id IN "
                      "('v3-agg@0123456789abcdef', 'v2-jan') ORDER BY result_id")
    assert utc == [(1769331600.123456, True, "TIMESTAMP WITH TIME ZONE"),
                   (1793534400.0, False, "TIMESTAMP WITH TIME ZONE")]
    later = fetch_all(store, "SELECT model_name, config_hash, adjusted_energy_j, baseline_power_w, "
                        "energy_source, output_tokens, input_tokens, throughput_tokens_per_sec, "
                        "energy_per_output_token_j, energy_per_token_j FROM results "
                        "WHERE source_format = 'later_line'")[0]
    # output tokens from what the file holds: total_flops / flops_per_output_token = 640
    # (and / flops_per_input_token = 1280, which adds up to total_tokens 1920)
    assert later == ("gpt2", "9944baab4dabe390", pytest.approx(68.95598090375523),
                     pytest.approx(35.94775694444444), "unrecorded", 640, 1280,
                     pytest.approx(640 / 4.42539), pytest.approx(228.03882500813023 / 640),
                     pytest.approx(228.03882500813023 / 1920))


def test_later_line_2_0_takes_model_from_effective_config(tmp_path: Path, store: str) -> None:
    path = docs.write(tmp_path, "r.json", docs.upstream("gpt2_pytorch_v2.0.json"))
    ingest_paths([path], store)
    assert fetch_all(store, "SELECT model_name, source_schema_version, precision FROM results") == [
        ("gpt2", "2.0", "bf16")
    ]
    # nested data is kept as JSON and can be reached with DuckDB's JSON operators
    env = _one(store, "SELECT environment->>'$.gpu.name' FROM results")
    assert env == "NVIDIA A100-PCIE-40GB"
    assert _one(store, "SELECT gpu_name FROM results") == "NVIDIA A100-PCIE-40GB"


def test_unmeasured_energy_of_v2_is_null_with_reason(tmp_path: Path, store: str) -> None:
    doc = sdocs.renamed(docs.v2_aggregated_jan2026(), "failed")
    doc["energy_tracking_failed"] = True
    doc["total_energy_j"] = 0.0
    doc["avg_energy_per_token_j"] = 0.0
    for process in doc["process_results"]:
        process["energy_tracking_failed"] = True
        process["energy_metrics"] = {"total_energy_j": 0.0, "duration_sec": 0.0}
    zero = sdocs.renamed(docs.v2_aggregated_dec2025(), "zero")
    zero["total_energy_j"] = 0.0
    ingest_paths([docs.write(tmp_path, "f.json", doc), docs.write(tmp_path, "z.json", zero)],
                 store)
    rows = fetch_all(store, "SELECT result_id, total_energy_j, energy_per_output_token_j, "
                       "energy_per_token_j, energy_unavailable_reason FROM results ORDER BY 1")
    for result_id, energy, per_output, per_token, reason in rows:
        assert (energy, per_output, per_token) == (None, None, None), result_id
        assert reason
    procs = fetch_all(store, "SELECT total_energy_j, gpu_energy_j, gpu_power_w, "
                        "energy_unavailable_reason FROM process_results WHERE experiment_id = "
                        "'failed'")
    assert all(p[:3] == (None, None, None) and p[3] for p in procs)
    # an unmeasured v2 component (0.0 default) is null too, a measured one is kept
    dec = fetch_all(store, "SELECT total_energy_j, gpu_energy_j FROM process_results "
                      "WHERE experiment_id = 'zero' ORDER BY process_index")
    assert dec == [(120.0, None), (130.0, None)]


def test_unmeasured_energy_of_the_later_line_is_null_with_reason(tmp_path: Path,
                                                               store: str) -> None:
    doc = docs.upstream("gpt2_pytorch_v2.0.json")
    doc["total_energy_j"] = 0.0
    ingest_paths([docs.write(tmp_path, "r.json", doc)], store)
    row = fetch_all(store, "SELECT total_energy_j, adjusted_energy_j, energy_per_token_j, "
                      "energy_unavailable_reason FROM results")[0]
    assert row[:3] == (None, None, None)
    assert "recorded 0 J" in row[3]


def test_reingesting_is_a_no_op(tmp_path: Path, store: str) -> None:
    files = sdocs.write_all(tmp_path, sdocs.every_format())
    ingest_paths(files, store)
    before = fetch_all(store, "SELECT count(*), sum(total_energy_j) FROM results")
    again = ingest_paths(files, store)
    assert [f.status for f in again.files] == [ALREADY_PRESENT] * len(files)
    assert again.ok and again.batch_id is None and again.results_added == 0
    assert fetch_all(store, "SELECT count(*), sum(total_energy_j) FROM results") == before
    assert _one(store, "SELECT count(*) FROM ingest_batches") == 1
    # the same bytes under another name are the same document
    copy = tmp_path / "copy.json"
    copy.write_bytes(files[0].read_bytes())
    assert ingest_paths([copy], store).files[0].status == ALREADY_PRESENT


def _truncated(tmp_path: Path) -> Path:
    text = json.dumps(docs.v3_aggregated())
    return _text(tmp_path, text[: len(text) // 2])


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


def _wrong_type(tmp_path: Path) -> Path:
    doc = docs.v3_aggregated()
    doc["total_tokens"] = "many"
    return docs.write(tmp_path, "bad.json", doc)


def _missing_field(tmp_path: Path) -> Path:
    doc = docs.v2_aggregated_dec2025()
    del doc["total_flops"]
    return docs.write(tmp_path, "bad.json", doc)


def _unknown_version(tmp_path: Path) -> Path:
    doc = docs.v3_aggregated()
    doc["schema_version"] = "9.1.0"
    return docs.write(tmp_path, "bad.json", doc)


def _not_finite(tmp_path: Path) -> Path:
    text = json.dumps(docs.v3_aggregated())
    return _text(tmp_path, text.replace('"total_energy_j": 310.0', '"total_energy_j": NaN'))


def _no_result(tmp_path: Path) -> Path:
    return docs.write(tmp_path, "bad.json", {"gpu": {"name": "A100"}, "collected_at": "x"})


@pytest.mark.parametrize(
    ("make_bad", "words"),
    [
        (_truncated, "JSON"),
        (_wrong_type, "total_tokens"),
        (_missing_field, "total_flops"),
        (_unknown_version, "9.1.0"),
        (_no_result, "not a result"),
        (_not_finite, "NaN"),
    ],
)
def test_bad_files_are_refused_whole_and_good_ones_land(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str], make_bad, words: str
) -> None:
    bad = make_bad(tmp_path)
    good = docs.write(tmp_path, "good.json", docs.v3_aggregated())
    status = main(["ingest", "--store", store, str(bad), str(good)])
    captured = capsys.readouterr()
    assert status == 1
    refusals = [line for line in captured.err.splitlines() if "refused" in line]
    assert len(refusals) == 1 and str(bad) in refusals[0] and words in refusals[0]
    assert "1 new, 0 already present, 1 refused" in captured.out
    assert _one(store, "SELECT count(*) FROM documents") == 1
    assert _one(store, "SELECT source_path FROM documents") == str(good.resolve())
    assert _one(store, "SELECT files_refused FROM ingest_batches") == 1


def test_only_bad_files_store_nothing(tmp_path: Path, store: str) -> None:
    report = ingest_paths([_wrong_type(tmp_path)], store)
    assert not report.ok and report.batch_id is None
    for table in ("documents", "results", "process_results", "ingest_batches"):
        assert _one(store, f"SELECT count(*) FROM {table}") == 0


def test_strict_refuses_the_whole_call(tmp_path: Path, store: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    good = docs.write(tmp_path, "good.json", docs.v3_aggregated())
    bad = _missing_field(tmp_path)
    receipt = tmp_path / "receipt.json"
    status = main(["ingest", "--strict", "--store", store, "--receipt", str(receipt),
                   str(good), str(bad)])
    assert status == 1
    assert "0 new, 0 already present, 2 refused" in capsys.readouterr().out
    assert _one(store, "SELECT count(*) FROM documents") == 0
    assert not receipt.exists()
    assert main(["ingest", "--strict", "--store", store, str(good)]) == 0


def test_one_measurement_in_two_formats_is_stored_once(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The earlier tool wrote the same run in its "2.0" and "3.0" shapes: one measurement."""
    first = docs.write(tmp_path, "a.json", docs.upstream("gpt2_pytorch_v2.0.json"))
    second = docs.write(tmp_path, "b.json", docs.upstream("gpt2_transformers_v2.0.json"))
    assert ingest_paths([first], store).ok
    report = ingest_paths([second], store)
    assert report.ok and report.files[0].status == ALREADY_PRESENT
    assert "same measurement, other format" in report.files[0].reason
    assert "later_line" in report.files[0].reason
    assert fetch_all(store, "SELECT source_schema_version FROM results") == [("2.0",)]
    assert _one(store, "SELECT count(*) FROM documents") == 1
    # both in one call, through the command: one row, exit 0
    other = tmp_path / "fresh.duckdb"
    assert main(["ingest", "--store", str(other), str(docs.UPSTREAM_DIR)]) == 0
    out = capsys.readouterr()
    assert "1 new, 1 already present, 0 refused (1 results" in out.out
    assert "same measurement, other format" in out.err
    assert fetch_all(other, "SELECT count(*) FROM results") == [(1,)]


def test_a_different_measurement_under_a_stored_id_is_refused(
    tmp_path: Path, store: str
) -> None:
    first = docs.write(tmp_path, "a.json", docs.upstream("gpt2_pytorch_v2.0.json"))
    changed = docs.upstream("gpt2_transformers_v2.0.json")
    changed["total_energy_j"] = 231.5
    second = docs.write(tmp_path, "b.json", changed)
    assert ingest_paths([first], store).ok
    report = ingest_paths([second], store)
    assert report.files[0].status == REFUSED
    assert "gpt2_20260313_142111" in report.files[0].reason
    assert "never replaced" in report.files[0].reason
    assert fetch_all(store, "SELECT source_schema_version FROM results") == [("2.0",)]
    # within one call the later file is the one refused
    other = tmp_path / "fresh.duckdb"
    both = ingest_paths([first, second], other)
    assert [f.status for f in both.files] == [NEW, REFUSED]
    assert "earlier file of this call" in both.files[1].reason


def test_the_same_result_met_in_two_files_is_stored_once(tmp_path: Path, store: str) -> None:
    folder = tmp_path / "exp"
    result = sdocs.v3_result_with_timeseries(folder, "c/r/e1")
    raws = sorted((folder / "raw").glob("*.json"))
    # lone process files first: they point at the result id their aggregate will have
    first = ingest_paths(raws, store)
    assert first.process_results_added == 2 and first.results_added == 0
    second = ingest_paths([result], store)
    assert second.files[0].status == NEW
    assert second.results_added == 1 and second.process_results_added == 0
    linked = fetch_all(store, "SELECT p.process_index, r.model_name FROM process_results p "
                         "JOIN results r USING (result_id) ORDER BY 1")
    assert linked == [(0, "meta-llama/Llama-3.2-1B"), (1, "meta-llama/Llama-3.2-1B")]
    # time series came with the lone files and are not added again
    assert second.timeseries_rows_added == 0
    assert _one(store, "SELECT count(*) FROM timeseries") == 10


def test_timeseries_named_by_a_result_are_ingested(tmp_path: Path, store: str) -> None:
    result = sdocs.v3_result_with_timeseries(tmp_path / "exp", "c/r/ts", samples=7)
    report = ingest_paths([result], store)
    assert report.timeseries_rows_added == 14
    rows = fetch_all(store, "SELECT t.rank, count(*), sum(t.power_w), any_value(p.process_index) "
                       "FROM timeseries t JOIN process_results p USING (process_result_id) "
                       "GROUP BY ALL ORDER BY 1")
    expected_power = sum(200.0 + i for i in range(7))
    assert rows == [(0, 7, expected_power, 0), (1, 7, expected_power, 1)]
    assert _one(store, "SELECT count(DISTINCT result_id) FROM timeseries") == 1


def test_a_missing_timeseries_file_is_a_warning_and_is_recorded(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = sdocs.v3_result_with_timeseries(tmp_path / "exp", "c/r/gone")
    gone = tmp_path / "exp" / "timeseries" / "process_1.parquet"
    gone.unlink()
    # validate and ingest give the same verdict: valid, with the same warning
    assert main(["validate", str(result)]) == 0
    assert "process_1.parquet is missing" in capsys.readouterr().err
    assert main(["ingest", "--store", store, str(result)]) == 0
    assert "warning" in capsys.readouterr().err
    assert _one(store, "SELECT count(*) FROM results") == 1
    missing = _one(store, "SELECT timeseries_missing FROM results")
    assert json.loads(missing) == [str(gone)]
    assert _one(store, "SELECT count(DISTINCT process_result_id) FROM timeseries") == 1
    batch_files = json.loads(_one(store, "SELECT files FROM ingest_batches"))
    assert "process_1.parquet is missing" in batch_files[0]["warnings"][0]


def test_validate_refuses_what_ingest_refuses(
    tmp_path: Path, store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A schema-valid file that cannot be stored (a broken time-series file it names) is
    invalid for validate too."""
    result = sdocs.v3_result_with_timeseries(tmp_path / "exp", "c/r/broken")
    (tmp_path / "exp" / "timeseries" / "process_0.parquet").write_bytes(b"not parquet")
    assert main(["validate", str(result)]) == 1
    assert "not valid Parquet" in capsys.readouterr().err
    assert main(["ingest", "--store", store, str(result)]) == 1
    assert "not valid Parquet" in capsys.readouterr().err


def test_folders_are_walked_and_non_results_skipped(tmp_path: Path, store: str) -> None:
    exp = tmp_path / "results" / "camp"
    sdocs.v3_result_with_timeseries(exp / "e1", "camp/run1/e1")
    docs.write(exp / "e1", "environment.json", {"cpu": {"platform": "Linux"}})
    docs.write(exp / "e1", "spec.json", {"experiment_id": "camp/run1/e1", "config": {}})
    docs.write(exp, "ingest.json", {"batch_id": None, "files": []})
    (exp / "e1" / ".result.json.tmp.json").write_text("{")  # hidden: an atomic write's temp
    broken = exp / "e2" / "result.json"
    broken.parent.mkdir()
    broken.write_text('{"experiment_id": "camp/run1/e2", "aggregation": ')
    report = ingest_paths([tmp_path / "results"], store)
    assert report.count(NEW) == 3  # result.json and two raw/process_<rank>.json
    assert len(report.skipped) == 3
    # a broken file in a folder is still refused: it may be a truncated result
    assert [(f.path, f.status) for f in report.files if f.status == REFUSED] == [
        (str(broken), REFUSED)
    ]
    assert _one(store, "SELECT count(*) FROM results") == 1
    assert _one(store, "SELECT count(*) FROM process_results") == 2


def test_receipt_is_written_after_the_commit(tmp_path: Path, store: str) -> None:
    files = sdocs.write_all(tmp_path / "in", sdocs.every_format())
    receipt = tmp_path / "results" / "camp" / "run1" / "ingest.json"
    status = main(["ingest", "--store", store, "--receipt", str(receipt),
                   *map(str, files)])
    assert status == 0
    data = json.loads(receipt.read_text())
    assert data["counts"]["new"] == len(files) and data["counts"]["refused"] == 0
    assert data["counts"]["results_added"] == 9
    assert [f["path"] for f in data["files"]] == [str(f) for f in files]
    assert fetch_all(store, "SELECT batch_id, files_new FROM ingest_batches") == [
        (data["batch_id"], len(files))
    ]
    # an ingest with nothing new still succeeds and says so
    assert main(["ingest", "--store", store, "--receipt", str(receipt), str(files[0])]) == 0
    again = json.loads(receipt.read_text())
    assert again["batch_id"] is None and again["counts"]["already_present"] == 1


def test_missing_path_is_refused(tmp_path: Path, store: str) -> None:
    report = ingest_paths([tmp_path / "nope.json"], store)
    assert report.files[0].status == REFUSED and "no such file" in report.files[0].reason


def test_imported_rows_have_precision_batch_size_and_provenance(
    tmp_path: Path, store: str
) -> None:
    upstream_v3 = sdocs.renamed(docs.upstream_v3_aggregated(), "up-v3")
    v2 = sdocs.renamed(docs.v2_aggregated_jan2026(), "v2-precision")
    for process in v2["process_results"]:
        process["compute_metrics"]["compute_precision"] = "fp16"  # what the file states
    mine = sdocs.renamed(docs.v3_aggregated(), "mine")
    mine["effective_config"] = {"precision": "bfloat16", "batching": {"batch_size": 2}}
    for process in mine["process_results"]:
        process["effective_config"] = mine["effective_config"]
        process["parameter_provenance"] = {}
    mine["model_source"] = {"name": "org/m", "obtained": "dequantized from GGUF Q4_1"}
    files = [docs.write(tmp_path, f"{i}.json", d) for i, d in enumerate([upstream_v3, v2, mine])]
    assert ingest_paths(files, store).ok
    rows = fetch_all(store, "SELECT result_id, source_format, precision, batch_size, "
                       "model_provenance, times_assumed_utc FROM results ORDER BY 1")
    assert rows == [
        ("mine@0123456789abcdef", "v3_aggregated", "bf16", 2, "dequantized from GGUF", False),
        ("up-v3", "upstream_v3_aggregated", "fp16", 4, None, True),
        ("v2-precision", "v2_aggregated", "fp16", 8, None, True),
    ]
    # a v2 file that states no precision has none (its model default 'fp16' is no record)
    dec = docs.write(tmp_path, "dec.json", sdocs.renamed(docs.v2_aggregated_dec2025(), "dec"))
    assert ingest_paths([dec], store).ok
    assert _one(store, "SELECT precision FROM results WHERE result_id = 'dec'") is None
    flat = fetch_all(store, "SELECT model_provenance FROM results_flat WHERE result_id LIKE "
                       "'mine%'")
    assert flat == [("dequantized from GGUF",)]
