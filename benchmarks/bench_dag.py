"""How long `snakemake -n` takes to build the DAG of a 1,000-experiment sweep.

Runs the workflow's dry run side by side on a 10-experiment sweep (the baseline: Snakemake's
own start-up plus a small plan) and on a 1,000-experiment sweep (10 models x 10 batch sizes x
10 output lengths), each in a fresh working directory, first cold (every spec.json written)
and then warm (specs unchanged). Prints seconds and the ratio to the baseline; the target is
under 10 s for 1,000 experiments.

Usage: python benchmarks/bench_dag.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET_SEC = 10.0


def sweep_config(models: int, batch_sizes: int, lengths: int) -> dict:
    """A campaign with models x batch sizes x output lengths experiments."""
    return {
        "campaign": "bench",
        "run_id": "run1",
        "defaults": {"model_name": "org/model-0", "device": "cpu"},
        "sweep": {
            "model_name": [f"org/model-{i}" for i in range(models)],
            "batching.batch_size": [2**i for i in range(batch_sizes)],
            "decoder.max_output_tokens": [16 * (i + 1) for i in range(lengths)],
        },
    }


def dry_run_sec(workdir: Path, configfile: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `snakemake -n` in ``workdir``; fails loudly on failure.

    CPU time (user + system of the child) is reported beside wall time because on a shared
    machine the wall time also counts other processes' load.
    """
    snakemake = [sys.executable, "-m", "snakemake"]
    command = [
        *snakemake, "-n", "--quiet", "all", "--cores", "1",
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(configfile),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


Timing = tuple[float, float]  # (wall, CPU) seconds


def measure(name: str, config: dict, repeats: int) -> tuple[Timing, Timing]:
    """(cold, fastest warm) timings of dry runs of ``config`` in a fresh folder."""
    workdir = Path(tempfile.mkdtemp(prefix=f"llem-bench-{name}-"))
    try:
        configfile = workdir / "campaign.yaml"
        configfile.write_text(yaml.safe_dump(config))
        cold = dry_run_sec(workdir, configfile)
        warm = [dry_run_sec(workdir, configfile) for _ in range(repeats)]
        return cold, min(warm)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="Warm runs per size.")
    args = parser.parse_args()

    base_cold, base_warm = measure("base", sweep_config(10, 1, 1), args.repeats)
    big_cold, big_warm = measure("1000", sweep_config(10, 10, 10), args.repeats)
    print(f"{'sweep':>12} {'cold wall/CPU (s)':>18} {'warm wall/CPU (s)':>18}")
    for label, cold, warm in (("10 exps", base_cold, base_warm),
                              ("1,000 exps", big_cold, big_warm)):
        print(f"{label:>12} {cold[0]:8.2f} /{cold[1]:7.2f}  {warm[0]:8.2f} /{warm[1]:7.2f}")
    print(f"ratio 1,000 / 10 (wall): cold {big_cold[0] / base_cold[0]:.2f}x, "
          f"warm {big_warm[0] / base_warm[0]:.2f}x")
    worst = max(big_cold[0], big_warm[0])
    verdict = "meets" if worst < TARGET_SEC else "MISSES"
    print(f"1,000-experiment DAG: {worst:.2f} s wall, {verdict} the {TARGET_SEC:.0f} s target")
    return 0 if worst < TARGET_SEC else 1


if __name__ == "__main__":
    raise SystemExit(main())
