"""The workflow's non-inference steps start without the heavy libraries they do not use.

Each step is its own Python process, once per experiment: torch, transformers and pandas
cost up to a second or more each time. Every step runs for real on a tiny model's measured
experiment, under ``python -X importtime``, which lists every module the process imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec
from llem.inference.tiny import build_tiny_model
from llem.measure.run import MeasureInputs, measure

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "transformers", "pandas", "matplotlib"}


def _imported(*args: str) -> set[str]:
    """Top-level packages a ``python -X importtime`` run of ``args`` imported."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            names.add(name.split(".")[0])
    assert "llem" in names  # the listing is there
    return names


@pytest.fixture(scope="module")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A measured one-cycle experiment of a tiny model, with its time series saved."""
    work = tmp_path_factory.mktemp("steps")
    tiny = build_tiny_model(work / "tiny")
    spec = make_spec(parse_experiment({
        "config_name": "tiny", "model_name": str(tiny), "device": "cpu",
        "prompts": {"num_prompts": 2}, "batching": {"batch_size": 2},
        "decoder": {"max_output_tokens": 3, "min_output_tokens": 3},
        "energy": {"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 0.0},
        "warmup": {"enabled": False},
        "timeseries": {"enabled": True, "save": True, "sample_interval_ms": 50},
    }), "camp", "run1")
    write_experiment_spec(spec, work / "spec.json")
    measure(MeasureInputs(spec=spec, models_dir=work / "models",
                          out_dir=work / "exp" / "cycle_0"), log=lambda _m: None)
    return work


def test_non_inference_steps_import_no_heavy_library_they_do_not_use(experiment: Path) -> None:
    spec, exp = str(experiment / "spec.json"), experiment / "exp"
    steps = {
        "env": ["env", "--out", str(exp / "environment.json"), "--spec", spec],
        "baseline": ["baseline", "--spec", spec, "--out", str(exp / "baseline.json"),
                     "--no-cache"],
        "aggregate": ["aggregate", "--spec", spec, "--exp-dir", str(exp),
                      "--out", str(exp / "result.json")],
        "ingest": ["ingest", "--store", str(experiment / "llem.duckdb"),
                   str(exp / "result.json")],
        "report": ["report", str(exp / "result.json"), "--table", str(experiment / "t.html"),
                   "--energy-per-token-plot", str(experiment / "e.png"),
                   "--timeseries-dir", str(experiment / "ts")],
    }
    imported = {name: _imported("-m", "llem", *args) for name, args in steps.items()}
    for name in ("env", "baseline", "aggregate"):
        assert not imported[name] & HEAVY, (name, sorted(imported[name] & HEAVY))
    # The ingest step (once per campaign run) uses DuckDB, which brings pandas (below).
    assert not imported["ingest"] & (HEAVY - {"pandas"}), sorted(imported["ingest"] & HEAVY)
    assert imported["report"] & HEAVY == {"matplotlib"}  # it draws the plots
    assert (experiment / "ts").is_dir() and any((experiment / "ts").iterdir())


@pytest.mark.xfail(
    duckdb.__version__.startswith("1."), strict=True,
    reason="DuckDB 1.5 imports pandas whenever a statement binds a parameter (about 0.3 s "
    "per ingest call); DuckDB 2.0 does not, but DuckLake's extensions exist only for 1.5")
def test_duckdb_binding_a_parameter_does_not_import_pandas(tmp_path: Path) -> None:
    code = f"""
import sys
import duckdb
conn = duckdb.connect({str(tmp_path / "s.duckdb")!r})
conn.execute("SELECT ?", [1]).fetchall()
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_writing_a_time_series_does_not_import_pandas(tmp_path: Path) -> None:
    path = tmp_path / "process_0.parquet"
    code = f"""
import json, sys
from llem.config.models import EnergyConfig
from llem.energy.select import open_energy_source
from llem.measure.timeseries import write_timeseries
from llem.measure.window import MeasurementWindow

sel = open_energy_source(EnergyConfig(backend="estimate", cpu_tdp_w=40.0), [])
window = MeasurementWindow(sel, keep_samples=True, min_window_sec=0.0, background=False)
window.begin()
for _ in range(3):
    window.tick()
write_timeseries(window.end(), {str(path)!r}, rank=3)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "pandas")))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    table = pq.ParquetFile(path).read()
    assert table.num_rows == 4  # the tick at begin and three more, one device
    assert set(table.column("rank").to_pylist()) == {3}
    assert table.column("device_id").to_pylist() == ["estimate:cpu"] * 4
