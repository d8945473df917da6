"""How long `snakemake -n` takes to build the DAG of a 1,000-experiment sweep.

Three dry runs, side by side and interleaved round by round so that a slow spell of a shared
machine hits all of them alike:

* llem, 10 experiments: Snakemake's start-up plus a small plan;
* llem, 1,000 experiments (10 models x 10 batch sizes x 10 output lengths, about 4,000 jobs);
* the floor: a bare Snakefile with the same job graph (per experiment environment, baseline
  and measure in one group, then aggregate; one prepare job per model; one ingest) whose
  rules have no log, benchmark, resources or spec files. It is what Snakemake itself costs
  for this many jobs, whatever the workflow does.

Each round runs every case first cold, in a new folder (llem writes every spec.json), then
warm (specs unchanged). Prints the median wall and CPU seconds over the rounds, the ratio of
llem to the floor and to the 10-experiment run. The target is under 10 s for 1,000
experiments, cold and warm.

Usage: python benchmarks/bench_dag.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET_SEC = 10.0

FLOOR_SNAKEFILE = '''
EXPERIMENTS = config["experiments"]  # experiment name -> model name


rule all:
    input:
        "results/c/r/ingest.json",


rule prepare_model:
    output:
        "resources/models/{model}/marker",
    shell:
        "true"


rule environment:
    output:
        "results/{campaign}/{run_id}/{exp}/environment.json",
    group:
        "measurement"
    shell:
        "true"


rule baseline:
    output:
        "results/{campaign}/{run_id}/{exp}/baseline.json",
    group:
        "measurement"
    shell:
        "true"


rule measure:
    input:
        environment="results/{campaign}/{run_id}/{exp}/environment.json",
        baseline="results/{campaign}/{run_id}/{exp}/baseline.json",
        model=lambda wildcards: f"resources/models/{EXPERIMENTS[wildcards.exp]}/marker",
    output:
        directory("results/{campaign}/{run_id}/{exp}/cycle_{cycle}"),
    group:
        "measurement"
    shell:
        "true"


rule aggregate:
    input:
        "results/{campaign}/{run_id}/{exp}/cycle_0",
    output:
        "results/{campaign}/{run_id}/{exp}/result.json",
    shell:
        "true"


rule ingest:
    input:
        expand("results/c/r/{exp}/result.json", exp=EXPERIMENTS),
    output:
        "results/c/r/ingest.json",
    shell:
        "true"
'''


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


def floor_config(models: int, experiments: int) -> dict:
    """The floor's experiments, spread over ``models`` models like the sweep's."""
    return {"experiments": {f"exp{i}": f"model{i % models}" for i in range(experiments)}}


@dataclass
class Case:
    """One dry run to time, with every timing it got: (wall, CPU) seconds per run."""

    label: str
    config: dict
    snakefile: Path | None  # None: the floor's bare Snakefile
    cold: list[tuple[float, float]] = field(default_factory=list)
    warm: list[tuple[float, float]] = field(default_factory=list)

    def fresh_folder(self, root: Path) -> tuple[Path, Path, Path]:
        """(work folder, config file, Snakefile) for a cold run, in a new folder."""
        workdir = Path(tempfile.mkdtemp(dir=root))
        configfile = workdir / "campaign.yaml"
        configfile.write_text(yaml.safe_dump(self.config))
        snakefile = self.snakefile
        if snakefile is None:
            snakefile = workdir / "Snakefile"
            snakefile.write_text(FLOOR_SNAKEFILE)
        return workdir, configfile, snakefile


def median(timings: list[tuple[float, float]]) -> tuple[float, float]:
    """Median (wall, CPU) seconds."""
    return (statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings))


def dry_run_sec(workdir: Path, configfile: Path, snakefile: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one `snakemake -n` in ``workdir``; fails loudly on failure.

    CPU time (user + system of the child) is reported beside wall time because on a shared
    machine the wall time also counts other processes' load.
    """
    command = [
        sys.executable, "-m", "snakemake", "-n", "--quiet", "all", "--cores", "1",
        "--snakefile", str(snakefile), "--directory", str(workdir),
        "--configfile", str(configfile),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake -n failed in {workdir}:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="Rounds; each runs every case cold in a new folder, then warm.")
    args = parser.parse_args()

    snakefile = REPO / "Snakefile"
    small = Case("llem, 10 experiments", sweep_config(10, 1, 1), snakefile)
    big = Case("llem, 1,000 experiments", sweep_config(10, 10, 10), snakefile)
    floor = Case("bare Snakemake, same DAG", floor_config(10, 1000), None)
    cases = (small, big, floor)
    root = Path(tempfile.mkdtemp(prefix="llem-bench-dag-"))
    try:
        for _ in range(args.repeats):
            for case in cases:
                folder = case.fresh_folder(root)
                case.cold.append(dry_run_sec(*folder))
                case.warm.append(dry_run_sec(*folder))
                shutil.rmtree(folder[0])
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"{'case':>28} {'cold wall/CPU (s)':>18} {'warm wall/CPU (s)':>18}")
    for case in cases:
        cold, warm = median(case.cold), median(case.warm)
        print(f"{case.label:>28} {cold[0]:8.2f} /{cold[1]:7.2f}  {warm[0]:8.2f} /{warm[1]:7.2f}")
    print(f"medians of {args.repeats} rounds, cases interleaved; "
          f"1,000 experiments, all runs: {min(t[0] for t in big.cold + big.warm):.2f}"
          f"-{max(t[0] for t in big.cold + big.warm):.2f} s wall")
    for kind in ("cold", "warm"):
        llem_cpu = median(getattr(big, kind))[1]
        print(f"ratio llem / bare Snakemake, 1,000 experiments, {kind} CPU: "
              f"{llem_cpu / median(getattr(floor, kind))[1]:.2f}x; "
              f"1,000 / 10 experiments: {llem_cpu / median(getattr(small, kind))[1]:.2f}x")
    worst = max(median(big.cold)[0], median(big.warm)[0])
    verdict = "meets" if worst < TARGET_SEC else "MISSES"
    print(f"1,000-experiment DAG: {worst:.2f} s wall (worse of the cold and warm medians), "
          f"{verdict} the {TARGET_SEC:.0f} s target")
    return 0 if worst < TARGET_SEC else 1


if __name__ == "__main__":
    raise SystemExit(main())
