"""What starting a non-inference workflow step costs, against a bare ``python -c pass``.

The workflow runs each step (environment, baseline, aggregate, ingest, report) as its own
``python -m llem`` process, once per experiment, so a second of start-up is over an hour in a
1,000-experiment sweep. For each step this prints the median wall time of ``--help`` (the
interpreter, the command line and the step's imports) and of a real run on a tiny model's
one-cycle experiment, each also as a ratio to ``python -c pass``, and which of torch,
transformers, pandas and matplotlib the real run imported (from ``python -X importtime``).

    python benchmarks/bench_step_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llem.config.campaign import make_spec, parse_experiment, write_experiment_spec  # noqa: E402

HEAVY = ("torch", "transformers", "pandas", "matplotlib")


def wall_sec(args: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"failed: {' '.join(args)}")
    return elapsed


def heavy_imports(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT,
                          capture_output=True, text=True)
    names = {line.rsplit("|", 1)[1].strip().split(".")[0]
             for line in done.stderr.splitlines()
             if line.startswith("import time:") and line.count("|") == 2}
    return [h for h in HEAVY if h in names]


def prepare(work: Path) -> dict[str, list[str]]:
    """A measured tiny-model experiment; returns each step's command line."""
    from llem.inference.tiny import build_tiny_model
    from llem.measure.run import MeasureInputs, measure

    tiny = build_tiny_model(work / "tiny")
    spec = make_spec(parse_experiment({
        "config_name": "tiny", "model_name": str(tiny), "device": "cpu",
        "prompts": {"num_prompts": 2}, "batching": {"batch_size": 2},
        "decoder": {"max_output_tokens": 4, "min_output_tokens": 4},
        "energy": {"backend": "estimate", "cpu_tdp_w": 50.0, "min_window_sec": 0.0},
        "warmup": {"enabled": False},
        "timeseries": {"enabled": True, "save": True},
    }), "bench", "run1")
    spec_path = work / "spec.json"
    write_experiment_spec(spec, spec_path)
    exp = work / "exp"
    measure(MeasureInputs(spec=spec, models_dir=work / "models", out_dir=exp / "cycle_0"),
            log=lambda _m: None)
    result = str(exp / "result.json")
    return {
        "env": ["env", "--out", str(exp / "environment.json"), "--spec", str(spec_path)],
        "baseline": ["baseline", "--spec", str(spec_path), "--out", str(exp / "baseline.json"),
                     "--no-cache"],
        "aggregate": ["aggregate", "--spec", str(spec_path), "--exp-dir", str(exp),
                      "--out", result],
        # a new store each time would add its creation; this measures adding to one
        "ingest": ["ingest", "--store", str(work / "llem.duckdb"), result],
        "report": ["report", result, "--table", str(work / "t.html"),
                   "--energy-per-token-plot", str(work / "e.png"),
                   "--timeseries-dir", str(work / "ts")],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llem-bench-steps-"))
    steps = prepare(work)
    bare = statistics.median(wall_sec(["-c", "pass"]) for _ in range(args.repeats))
    print(f"python -c pass: {bare * 1000:.0f} ms (median of {args.repeats}); "
          f"each step: median of {args.repeats}")
    print(f"{'step':10s} {'--help s':>9s} {'x pass':>7s} {'run s':>7s} {'x pass':>7s}  "
          "heavy imports of the run")
    for name, step in steps.items():
        wall_sec(["-m", "llem", *step])  # the first run creates files the others reuse
        help_sec = statistics.median(
            wall_sec(["-m", "llem", step[0], "--help"]) for _ in range(args.repeats))
        run_sec = statistics.median(
            wall_sec(["-m", "llem", *step]) for _ in range(args.repeats))
        heavy = ", ".join(heavy_imports(["-m", "llem", *step])) or "none"
        print(f"{name:10s} {help_sec:9.2f} {help_sec / bare:7.1f} {run_sec:7.2f} "
              f"{run_sec / bare:7.1f}  {heavy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
