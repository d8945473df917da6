"""Bad input never takes good input down and never crashes: real files, stores and CLI.

Each case is met the way a user meets it, through ``llem.cli.main``: a one-line reason naming
the file (and the field), a non-zero exit, the good files of the same call stored, the store
untouched where nothing may land, and ``llem validate`` agreeing with ``llem ingest``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from llem.cli import main
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_documents import fetch_all

INT64_PAST = 2**63


def _count(store: Path, table: str = "results") -> int:
    return fetch_all(store, f"SELECT count(*) FROM {table}")[0][0]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _good(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        docs.write(folder, f"good-{i}.json", sdocs.renamed(docs.v3_aggregated(), f"good-{i}"))
        for i in (1, 2)
    ]


# --------------------------------------------------------------------------------------
# bad files, each in a batch with good ones
# --------------------------------------------------------------------------------------


def _bad_v3(change: Callable[[dict], None]) -> str:
    doc = sdocs.renamed(docs.v3_aggregated(), "bad")
    change(doc)
    return json.dumps(doc)


def _bad_v2(change: Callable[[dict], None]) -> str:
    doc = sdocs.renamed(docs.v2_raw_jan2026(rank=0), "bad-v2")
    change(doc)
    return json.dumps(doc)


def _deep() -> str:
    return "[" * 100_000 + "]" * 100_000


def _deep_inside_a_result() -> str:
    return _bad_v3(lambda d: d["effective_config"].update(x=json.loads("[" * 150 + "]" * 150)))


def _set(doc: dict, value: object, *keys: str) -> None:
    for key in keys[:-1]:
        doc = doc[key]
    doc[keys[-1]] = value


def _overflowing_sum(doc: dict) -> None:
    """Each process count fits 64 bits; their sum, which the store derives, does not."""
    doc.pop("output_tokens")
    for process in doc["process_results"]:
        process["inference_metrics"]["output_tokens"] = 2**63 - 1


def _huge_batch_size(doc: dict) -> None:
    doc["effective_config"]["batch_size"] = 2**64
    if isinstance(doc["effective_config"].get("batching"), dict):
        doc["effective_config"]["batching"]["batch_size"] = 2**64


BAD_FILES: dict[str, tuple[Callable[[], str], str]] = {
    "nested_100000_levels": (_deep, "nested deeper than 100 levels"),
    "nested_150_levels_in_a_result": (_deep_inside_a_result, "nested deeper than 100 levels"),
    "total_tokens_past_int64": (
        lambda: _bad_v3(lambda d: _set(d, INT64_PAST, "total_tokens")), "$.total_tokens"),
    "v2_tokens_past_int64": (
        lambda: _bad_v2(lambda d: _set(d, INT64_PAST, "inference_metrics", "total_tokens")),
        "inference_metrics.total_tokens"),
    "negative_tokens": (
        lambda: _bad_v3(lambda d: _set(d, -5, "total_tokens")), "$.total_tokens"),
    "negative_energy": (
        lambda: _bad_v3(lambda d: _set(d, -100.0, "total_energy_j")), "$.total_energy_j"),
    "negative_process_energy": (
        lambda: _bad_v3(lambda d: _set(d["process_results"][1], -100.0,
                                       "energy_metrics", "total_energy_j")),
        "$.process_results[1].energy_metrics.total_energy_j"),
    "v2_negative_energy": (
        lambda: _bad_v2(lambda d: _set(d, -100.0, "energy_metrics", "total_energy_j")),
        "energy_metrics.total_energy_j"),
    "v2_negative_tokens": (
        lambda: _bad_v2(lambda d: _set(d, -5, "inference_metrics", "output_tokens")),
        "inference_metrics.output_tokens"),
    "sum_past_int64": (lambda: _bad_v3(_overflowing_sum), "results.output_tokens"),
    "config_batch_size_past_int64": (lambda: _bad_v3(_huge_batch_size), "results.batch_size"),
    "unpaired_surrogate": (
        lambda: _bad_v3(lambda d: _set(d, "SURROGATE", "model_name")).replace(
            '"SURROGATE"', '"\\udcff"'),
        "$.model_name"),
    "energy_past_float": (  # Python reads 1e400 as infinity
        lambda: _bad_v3(lambda d: _set(d, 123.5, "total_energy_j")).replace(
            '"total_energy_j": 123.5', '"total_energy_j": 1e400'),
        "too large for a float"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_alone_and_validate_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, words = BAD_FILES[case]
    folder = tmp_path / "batch"
    first, last = _good(folder)
    bad = folder / "bad.json"
    bad.write_text(make())

    for where, paths in (("named", [first, bad, last]), ("folder", [folder])):
        store = tmp_path / f"{where}.duckdb"
        status, out, err = _run(capsys, "ingest", "--store", str(store), *map(str, paths))
        assert status == 1, where
        assert "Traceback" not in err
        assert err.splitlines() == [err.splitlines()[0]], err  # one line
        assert err.startswith(f"llem: refused: {bad}: ") and words in err
        assert "2 new, 0 already present, 1 refused" in out
        assert _count(store) == 2 and _count(store, "documents") == 2

    status, out, err = _run(capsys, "validate", str(first), str(bad), str(last))
    assert status == 1
    assert out.splitlines() == [
        f"{first}: valid v3 aggregated result",
        f"{last}: valid v3 aggregated result",
        "2 valid, 1 invalid",
    ]
    lines = err.splitlines()
    assert lines and all(line.startswith(f"{bad}: ") for line in lines)
    assert any(words in line for line in lines)


def test_negative_adjusted_energy_is_still_a_valid_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only measured energy and counts are bounded below; a baseline-adjusted figure below
    zero is a finding about the baseline, handled downstream, not a broken file."""
    doc = sdocs.renamed(docs.v3_aggregated(), "adjusted")
    doc["process_results"][0]["energy_breakdown"]["adjusted_j"] = -50.0
    path = docs.write(tmp_path, "adjusted.json", doc)
    negative = docs.write(tmp_path, "negative.json",
                          sdocs.renamed(docs.v3_aggregated(), "negative"))
    negative_doc = json.loads(negative.read_text())
    negative_doc["total_energy_j"] = -100.0
    negative.write_text(json.dumps(negative_doc))
    status, out, _ = _run(capsys, "validate", str(path), str(negative))
    assert status == 1
    assert f"{path}: valid v3 aggregated result" in out.splitlines()
    assert "1 valid, 1 invalid" in out


# --------------------------------------------------------------------------------------
# folders without results, unwritable outputs
# --------------------------------------------------------------------------------------


def test_an_empty_folder_says_no_result_files_were_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    specs = tmp_path / "specs"
    specs.mkdir()
    docs.write(specs, "spec.json", {"experiment_id": "x", "config": {}})
    (good,) = _good(tmp_path / "in")[:1]
    store = tmp_path / "llem.duckdb"

    status, out, err = _run(capsys, "ingest", "--store", str(store), str(empty))
    assert status == 1
    assert err == f"llem: refused: {empty}: no result files found (no *.json under this folder)\n"

    status, out, err = _run(capsys, "ingest", "--store", str(store), str(specs), str(good))
    assert status == 1
    assert err.startswith(f"llem: refused: {specs}: no result files found")
    assert len(err.splitlines()) == 1 and _count(store) == 1

    status, out, err = _run(capsys, "validate", str(empty), str(specs))
    assert status == 1
    assert [line.split(": ", 1) for line in err.splitlines()] == [
        [str(empty), "no result files found (no *.json under this folder)"],
        [str(specs), "no result files found (every *.json under this folder is another kind "
                     "of file, e.g. a spec or a receipt)"],
    ]
    assert out.splitlines()[-1] == "0 valid, 2 invalid, 1 non-result JSON skipped"


def _ingested_store(tmp_path: Path) -> tuple[Path, list[Path]]:
    store = tmp_path / "llem.duckdb"
    first, last = _good(tmp_path / "in")
    assert main(["ingest", "--store", str(store), str(first)]) == 0
    return store, [first, last]


@pytest.mark.parametrize("place", ["under_a_file", "a_folder"])
def test_an_unwritable_receipt_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], place: str
) -> None:
    store, (_, new) = _ingested_store(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    receipt = blocker / "ingest.json" if place == "under_a_file" else tmp_path
    before = store.read_bytes()
    capsys.readouterr()

    status, out, err = _run(capsys, "ingest", "--store", str(store), "--receipt", str(receipt),
                            str(new))
    assert status == 2 and out == ""
    assert err.startswith(f"llem: error: {receipt}: cannot write the receipt there")
    assert len(err.splitlines()) == 1 and "nothing ingested" in err
    assert store.read_bytes() == before and _count(store) == 1


def test_a_receipt_for_a_store_not_yet_made_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    store = tmp_path / "new.duckdb"
    status, _, err = _run(capsys, "ingest", "--store", str(store), "--receipt",
                          str(blocker / "r.json"), *map(str, _good(tmp_path / "in")))
    assert status == 2 and "cannot write the receipt there" in err
    assert not store.exists()


def test_export_to_an_unwritable_place_is_refused_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = _ingested_store(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    out_dir = blocker / "export"
    capsys.readouterr()
    status, out, err = _run(capsys, "export", "--store", str(store), "--out", str(out_dir))
    assert status == 2 and out == ""
    assert err.startswith(f"llem: error: {out_dir}: cannot write the export there")
    assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "in", "llem.duckdb"]


# --------------------------------------------------------------------------------------
# names that could break or fake output lines
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("trick", ["\n", "\r", "\x1b[2K"])
def test_a_file_name_cannot_forge_an_output_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], trick: str
) -> None:
    (good,) = _good(tmp_path)[:1]
    evil = tmp_path / f"x.json{trick}llem: refused: forged.json: planted"
    evil.write_text("{")
    store = tmp_path / "llem.duckdb"

    status, out, err = _run(capsys, "ingest", "--store", str(store), str(good), str(evil))
    assert status == 1
    assert err == f"llem: refused: {str(evil)!r}: truncated JSON at line 1 column 2: " \
                  "Expecting property name enclosed in double quotes\n"
    assert _count(store) == 1

    status, out, err = _run(capsys, "validate", str(good), str(evil))
    assert status == 1
    assert [line for line in err.split("\n") if line] == [
        f"{str(evil)!r}: truncated JSON at line 1 column 2: "
        "Expecting property name enclosed in double quotes"
    ]
    assert str(evil) not in out + err


def test_a_file_name_that_is_not_utf8_is_refused_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    _, last = _good(folder)
    odd = os.fsdecode(bytes(folder) + b"/odd-\xff.json")
    shutil.copy(last, odd)
    last.unlink()
    store = tmp_path / "llem.duckdb"

    status, out, err = _run(capsys, "ingest", "--store", str(store), str(folder))
    assert status == 1
    assert err == (f"llem: refused: {folder}/odd-\\xff.json: file name is not UTF-8 text; "
                   "rename the file to ingest it\n")
    assert _count(store) == 1

    status, out, err = _run(capsys, "validate", str(folder))
    assert status == 1 and "not UTF-8 text" in err and "1 valid, 1 invalid" in out


# --------------------------------------------------------------------------------------
# damaged stores
# --------------------------------------------------------------------------------------

_HEADER_BYTES = 3 * 4096  # DuckDB's file header and two database headers
_BLOCK_BYTES = 256 * 1024


def _overwrite(path: Path, offset: int, size: int = 512) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(random.Random(offset).randbytes(size))


def _opens_and_reads_meta(path: Path) -> bool:
    try:
        conn = duckdb.connect(str(path), read_only=True)
    except duckdb.Error:
        return False
    try:
        conn.execute("SELECT * FROM store_meta").fetchall()
        return True
    except duckdb.Error:
        return False
    finally:
        conn.close()


def _damaged_mid_file(store: Path, copy: Path, met_by: str) -> Path:
    """A copy of ``store`` with random bytes in the first data block that ``met_by`` reads
    while the file still opens and its metadata reads fine."""
    for block in range(store.stat().st_size // _BLOCK_BYTES):
        shutil.copy(store, copy)
        _overwrite(copy, _HEADER_BYTES + block * _BLOCK_BYTES + 1024)
        if not _opens_and_reads_meta(copy):
            continue
        conn = duckdb.connect(str(copy), read_only=True)
        try:
            conn.execute(met_by).fetchall()
        except duckdb.Error:
            return copy
        finally:
            conn.close()
    pytest.fail(f"no block of {store} is read by {met_by!r} alone")


def _assert_damaged(status: int, out: str, err: str, store: Path) -> None:
    assert status == 2 and out == ""
    assert err.startswith(f"llem: error: {store}: store file is damaged"), err
    assert len(err.splitlines()) == 1


def test_a_store_damaged_in_its_headers_is_named_damaged_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, (_, new) = _ingested_store(tmp_path)
    _overwrite(store, 4096 + 100)
    before = store.read_bytes()
    capsys.readouterr()
    export_dir = tmp_path / "export"
    for argv in (
        ["ingest", "--store", str(store)],
        ["ingest", "--store", str(store), str(new)],
        ["query", "--store", str(store), "SELECT count(*) FROM results"],
        ["results", "list", "--store", str(store)],
        ["export", "--store", str(store), "--out", str(export_dir)],
    ):
        _assert_damaged(*_run(capsys, *argv), store)
        assert store.read_bytes() == before, argv
    assert not export_dir.exists()


def test_damage_mid_file_is_found_before_a_store_is_called_ready_or_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, (_, new) = _ingested_store(tmp_path)
    damaged = _damaged_mid_file(store, tmp_path / "damaged.duckdb",
                                "SELECT * FROM documents, results, process_results")
    before = damaged.read_bytes()
    capsys.readouterr()
    export_dir = tmp_path / "export"
    for argv in (
        ["ingest", "--store", str(damaged)],
        ["ingest", "--store", str(damaged), str(new)],
        ["export", "--store", str(damaged), "--out", str(export_dir)],
    ):
        _assert_damaged(*_run(capsys, *argv), damaged)
        assert damaged.read_bytes() == before, argv
    assert not export_dir.exists()


def test_results_met_in_a_damaged_block_are_named_damaged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, _ = _ingested_store(tmp_path)
    damaged = _damaged_mid_file(store, tmp_path / "damaged.duckdb", "SELECT * FROM results")
    capsys.readouterr()
    _assert_damaged(*_run(capsys, "results", "list", "--store", str(damaged)), damaged)
