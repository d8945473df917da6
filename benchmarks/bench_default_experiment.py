"""The default experiment (SmolLM2-135M-Instruct, config/config.yaml defaults) on this machine.

Runs the jobs of one experiment as the workflow does (environment, baseline, measure,
aggregate; each a fresh ``python -m llem`` process), after preparing the model once, and
reports output tokens per second and how much of the jobs' wall time lies outside the
measured window (process start, model load, warmup, baseline, writing files).

    python benchmarks/bench_default_experiment.py [--batch-size 1] [--models-dir resources/models]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llem.config.campaign import (  # noqa: E402
    deep_merge,
    load_campaign,
    make_spec,
    parse_experiment,
    write_experiment_spec,
)


def llem(*args: str) -> float:
    """Run one llem job; its wall time in seconds."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "llem", *args], cwd=ROOT, text=True,
                          capture_output=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"llem {args[0]} failed")
    return time.monotonic() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--models-dir", default=str(ROOT / "resources" / "models"))
    args = parser.parse_args()

    campaign = load_campaign(ROOT / "config" / "config.yaml")
    data = deep_merge(campaign.defaults, {"config_name": "bench",
                                          "batching": {"batch_size": args.batch_size}})
    spec = make_spec(parse_experiment(data), "bench", "run1")
    work = Path(tempfile.mkdtemp(prefix="llem-bench-default-"))
    spec_path = work / "spec.json"
    write_experiment_spec(spec, spec_path)
    exp_dir = work / "exp"

    prepare_sec = llem("prepare-model", "--spec", str(spec_path), "--models-dir", args.models_dir)
    env_sec = llem("env", "--out", str(exp_dir / "environment.json"))
    baseline_sec = llem("baseline", "--spec", str(spec_path),
                        "--out", str(exp_dir / "baseline.json"))
    measure_sec = llem("measure", "--spec", str(spec_path), "--environment",
                       str(exp_dir / "environment.json"), "--baseline",
                       str(exp_dir / "baseline.json"), "--models-dir", args.models_dir,
                       "--out-dir", str(exp_dir / "cycle_0"))
    aggregate_sec = llem("aggregate", "--spec", str(spec_path), "--exp-dir", str(exp_dir),
                         "--out", str(exp_dir / "result.json"))
    result = json.loads((exp_dir / "result.json").read_text())
    window_sec = result["measured_window"]["duration_sec"]
    jobs_sec = env_sec + baseline_sec + measure_sec + aggregate_sec
    warmup = json.loads((exp_dir / "cycle_0" / "warmup.json").read_text())

    print(f"model {spec.config.model_name} ({result['model_source']['obtained']}), "
          f"batch size {args.batch_size}, {spec.config.prompts.num_prompts} prompts x "
          f"{spec.config.decoder.max_output_tokens} new tokens")
    print(f"prepare-model     : {prepare_sec:6.1f} s (once per model, not per experiment)")
    print(f"env/baseline jobs : {env_sec:6.1f} s / {baseline_sec:6.1f} s")
    print(f"measure job       : {measure_sec:6.1f} s (warmup {warmup['duration_sec']:.1f} s, "
          f"{warmup['iterations_completed']} iterations)")
    print(f"aggregate job     : {aggregate_sec:6.1f} s")
    print(f"measured window   : {window_sec:6.1f} s, "
          f"{result['measured_window']['prompt_set_repeats']} pass(es)")
    print(f"output tokens/s   : {result['output_tokens_per_second']:6.1f}")
    energy = result["energy_per_output_token_j"]
    print(f"J per output token: {energy if energy is not None else 'unmeasured'}"
          f" ({result['energy_source']})")
    print(f"outside window    : {100 * (1 - window_sec / jobs_sec):5.1f} % of "
          f"{jobs_sec:.1f} s job wall time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
