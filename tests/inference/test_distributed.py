"""Data-parallel measurement: two CPU ranks under torchrun count exactly what one process does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.inference.tiny import build_tiny_model


def _run(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "llem", *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_ranks_give_the_same_token_totals_as_one(tmp_path: Path) -> None:
    tiny = build_tiny_model(tmp_path / "tiny")
    totals = {}
    for n in (1, 2):
        exp = parse_experiment({
            "config_name": f"dp{n}", "model_name": str(tiny), "device": "cpu",
            "num_processes": n, "prompts": {"num_prompts": 7}, "batching": {"batch_size": 1},
            "decoder": {"max_output_tokens": 12}, "energy": {"min_window_sec": 0.0},
            "warmup": {"enabled": False},
        })
        spec = tmp_path / f"dp{n}.json"
        write_experiment_spec(make_spec(exp, "c", "r"), spec)
        exp_dir = tmp_path / f"dp{n}"
        _run("measure", "--spec", str(spec), "--models-dir", str(tmp_path / "models"),
             "--out-dir", str(exp_dir / "cycle_0"))
        for rank in range(n):
            assert (exp_dir / "cycle_0" / "raw" / f"process_{rank}.done").is_file()
        _run("aggregate", "--spec", str(spec), "--exp-dir", str(exp_dir),
             "--out", str(exp_dir / "result.json"))
        doc = json.loads((exp_dir / "result.json").read_text())
        assert doc["aggregation"]["num_processes"] == n
        assert doc["aggregation"]["temporal_overlap_verified"]
        totals[n] = (doc["input_tokens"], doc["output_tokens"], doc["total_tokens"])
    assert totals[1] == totals[2]
    ranks = [json.loads((tmp_path / "dp2" / "cycle_0" / "raw" / f"process_{r}.json").read_text())
             for r in range(2)]
    # 7 prompts dealt round-robin: 4 and 3
    assert [r["extended_metrics"]["batch"]["num_batches"] for r in ranks] == [4, 3]
