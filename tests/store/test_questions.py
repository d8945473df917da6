"""The five questions of docs/store.md run as written against a store holding llem's results
and the earlier tool's files."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import llem
from llem.cli import main
from llem.store.ingest import ingest_paths
from tests import documents as docs
from tests import store_documents as sdocs
from tests.store_kinds import KINDS, make_store

STORE_DOC = Path(__file__).resolve().parents[2] / "docs" / "store.md"


def questions() -> list[str]:
    """The SQL blocks of the "Five questions" section of docs/store.md, in order."""
    text = STORE_DOC.read_text()
    section = text.split("### Five questions", 1)[1].split("\n#", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


def _llem_result(run: str, batch_size: int, energy_j: float) -> dict[str, Any]:
    doc = sdocs.renamed(docs.v3_aggregated((energy_j,)), f"default/{run}/bs{batch_size}")
    doc.update(campaign="default", run_id=run, model_name="tiny",
               output_tokens_per_second=40.0 * batch_size,
               energy_per_output_token_j=energy_j / 256)
    doc["effective_config"] = {"config_name": f"bs{batch_size}", "model_name": "tiny",
                               "precision": "float32", "batching": {"batch_size": batch_size}}
    doc["energy_breakdown"] = {"raw_j": energy_j, "adjusted_j": energy_j - 20.0,
                               "baseline_power_w": 2.0, "baseline_method": "fresh"}
    return doc


@pytest.fixture(scope="module", params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The same results in a store of each kind: the docs' questions answer on both."""
    folder = tmp_path_factory.mktemp("questions")
    paths = [docs.write(folder, f"{run}-{bs}.json", _llem_result(run, bs, energy))
             for run, bs, energy in (("run1", 1, 120.0), ("run1", 4, 200.0),
                                     ("run2", 1, 110.0), ("run2", 4, 190.0))]
    paths.append(sdocs.aggregated_multi_cycle(folder / "mc.json", "sweep", batch_size=2,
                                              model_name="tiny"))
    # the earlier tool: its later line's real files, its "3.0.0" files, its v2 files
    paths.extend(sorted(docs.UPSTREAM_DIR.glob("*.json")))
    paths.append(docs.write(folder, "upstream-v3.json",
                            sdocs.renamed(docs.upstream_v3_aggregated(), "up-v3")))
    earlier = {k: v for k, v in sdocs.every_format().items() if k.startswith("v2")}
    paths.extend(sdocs.write_all(folder / "v2", earlier))
    (folder / "store").mkdir()
    path = make_store(request.param, folder / "store", request).store
    assert ingest_paths(paths, path).ok
    return path


def _run(store: str, sql: str, capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The rows of ``sql`` through ``llem query``, checked against the Python API's."""
    assert main(["query", "--store", store, "--format", "json", sql]) == 0
    rows = json.loads(capsys.readouterr().out)
    with llem.open_store(store) as handle:
        relation = handle.sql(sql)
        assert relation.columns == list(rows[0]) if rows else True
        assert len(relation.fetchall()) == len(rows)
    return rows


def test_docs_show_five_questions() -> None:
    assert len(questions()) == 5


def test_j_per_output_token_by_model_and_batch_size_with_intervals(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _run(store, questions()[0], capsys)
    multi = [r for r in rows if r["n"] == 2]
    assert multi and 0 < multi[0]["ci95_lower"] < multi[0]["ci95_upper"]
    single = [r for r in rows if r["model_name"] == "tiny" and r["batch_size"] == 4]
    assert single[0]["no_interval_because"].startswith("one cycle")
    assert {r["energy_source"] for r in rows} >= {"nvml_counter", "unrecorded"}


def test_adjusted_against_raw_energy(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _run(store, questions()[1], capsys)
    ours = [r for r in rows if r["result_id"].startswith("default/run1/bs1")]
    assert ours[0]["raw_j"] == 120.0 and ours[0]["adjusted_j"] == 100.0
    assert ours[0]["adjusted_share"] == pytest.approx(100 / 120)


def test_throughput_over_time(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    rows = _run(store, questions()[2], capsys)
    days = {r["day"][:10] for r in rows}
    assert len(days) >= 3  # llem's results and the earlier tool's, measured on other days
    assert all(r["output_tokens_per_sec"] > 0 for r in rows)


def test_throttled_results_and_for_how_long(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _run(store, questions()[3], capsys)
    assert [(r["result_id"], r["throttled_sec"]) for r in rows] == [("up-v3", 1.5)]
    assert r"hw_thermal" in rows[0]["thermal_throttle"]


def test_two_runs_of_one_campaign_side_by_side(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = _run(store, questions()[4], capsys)
    assert [(r["experiment_name"], r["batch_size"]) for r in rows] == [("bs1", 1), ("bs4", 4)]
    assert rows[0]["run1_j_per_output_token"] == pytest.approx(120.0 / 256)
    assert rows[0]["run2_j_per_output_token"] == pytest.approx(110.0 / 256)
    assert rows[1]["run2_output_tokens_per_sec"] == 160.0
