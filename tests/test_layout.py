"""The path grammar: the names a run writes, as rules and Python code both see them."""

from __future__ import annotations

import ast
from pathlib import Path

from llem import layout


def test_patterns_filled_in_are_the_paths_the_functions_name() -> None:
    wildcards = {"campaign": "c", "run_id": "r", "exp": "e", "cycle": 1, "model_key": "m"}
    assert layout.CYCLE.format(**wildcards) == layout.cycle_dir("c", "r", "e", 1) == (
        "results/c/r/e/cycle_1"
    )
    assert layout.SPEC.format(**wildcards) == layout.spec_path("c", "r", "e")
    assert layout.RESULT.format(**wildcards) == layout.result_path("c", "r", "e")
    assert layout.RECEIPT.format(**wildcards) == layout.receipt_path("c", "r")
    assert layout.MODEL_MARKER.format(**wildcards) == layout.model_marker_path("m") == (
        "resources/models/m/llem-model.json"
    )
    assert layout.log("measure", layout.CYCLE_SUBJECT).format(**wildcards) == (
        "logs/measure/c/r/e/cycle_1.log"
    )
    assert layout.benchmark("ingest", layout.RUN_SUBJECT).format(**wildcards) == (
        "benchmarks/ingest/c/r.tsv"
    )
    cycle = Path(layout.cycle_dir("c", "r", "e", 1))
    assert cycle.name == layout.cycle_folder_name(1)


def test_a_raw_result_names_its_time_series_where_it_lies(tmp_path: Path) -> None:
    cycle = tmp_path / "cycle_0"
    named = layout.raw_result_path(cycle, 3).parent / layout.timeseries_ref(3)
    assert named.resolve() == layout.timeseries_file_path(cycle, 3).resolve()


def test_cycle_folders_and_raw_results_list_only_what_the_grammar_names(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    for name in ("cycle_0", "cycle_2", "cycle_x", "other"):
        (exp / name).mkdir(parents=True)
    (exp / "cycle_5").write_text("a file, not a cycle folder")
    assert layout.cycle_folders(exp) == {0: exp / "cycle_0", 2: exp / "cycle_2"}
    assert layout.cycle_folders(tmp_path / "missing") == {}

    cycle = exp / "cycle_0"
    layout.raw_dir(cycle).mkdir()
    for rank in (0, 1):
        layout.raw_result_path(cycle, rank).write_text("{}")
    layout.done_marker_path(cycle, 1).write_text("done\n")
    (layout.raw_dir(cycle) / "process_1.json.tmp").write_text("")
    found = layout.raw_results(cycle)
    assert found == {0: layout.raw_result_path(cycle, 0), 1: layout.raw_result_path(cycle, 1)}
    assert layout.done_marker_of(found[1]) == layout.done_marker_path(cycle, 1)
    assert layout.done_marker_of(found[1]).is_file()
    assert not layout.done_marker_of(found[0]).exists()


def test_layout_is_bottom_layer() -> None:
    """It imports nothing of llem but the constants, so any layer may use it."""
    tree = ast.parse(Path(layout.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for a in node.names}
    assert {m for m in imported if m and m.split(".")[0] == "llem"} == {"llem.constants"}
