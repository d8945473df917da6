"""How long `snakemake -n` takes to build the DAG of a 1,000-experiment sweep.

Snakemake's dry run comes in two forms, and both are timed:

* `snakemake -n -q` builds and checks the whole DAG (every input function, every wildcard,
  every file's state) and stops. It is the dry run Snakemake's help recommends for very large
  workflows, and what the 10 s target is about;
* `snakemake -n` then walks the plan and describes every job (rule, files, resources, shell
  command): about 49,000 lines for this sweep. Its output goes to a pipe here.

Three cases, side by side and interleaved round by round so that a slow spell of a shared
machine hits all of them alike:

* llem, 10 experiments: Snakemake's start-up plus a small plan;
* llem, 1,000 experiments (10 models x 10 batch sizes x 10 output lengths, about 4,000 jobs);
* the floor: a bare Snakefile with the same job graph (per experiment environment, baseline
  and measure in one group, then aggregate; one prepare job per model; one ingest) whose
  rules have no log, benchmark, resources or spec files. It is what Snakemake itself costs
  for this many jobs, whatever the workflow does.

Each round runs every case in a new folder: `-n -q` cold (llem writes every spec.json), then
warm (specs unchanged), then `-n` warm. Prints median wall and CPU seconds over the rounds, the
job count of each DAG, and the ratio of llem to the floor. Exits non-zero when the
1,000-experiment DAG misses the target.

Usage: python benchmarks/bench_dag.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import re
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


# The two dry runs timed; the job count is read from the full one's job table.
DAG_ONLY = ("-n", "-q")
EVERY_JOB = ("-n",)
JOB_TOTAL = re.compile(r"^total\s+(\d+)\s*$", re.MULTILINE)


@dataclass
class Case:
    """One Snakefile and campaign to time, with every timing: (wall, CPU) seconds per run."""

    label: str
    config: dict
    snakefile: Path | None  # None: the floor's bare Snakefile
    dag_cold: list[tuple[float, float]] = field(default_factory=list)
    dag_warm: list[tuple[float, float]] = field(default_factory=list)
    every_job: list[tuple[float, float]] = field(default_factory=list)
    jobs: int | None = None

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


def dry_run(
    flags: tuple[str, ...], workdir: Path, configfile: Path, snakefile: Path
) -> tuple[float, float, str]:
    """(wall s, CPU s, stdout) of one Snakemake dry run in ``workdir``; fails loudly.

    CPU time (user + system of the child) is reported beside wall time because on a shared
    machine the wall time also counts other processes' load.
    """
    command = [
        sys.executable, "-m", "snakemake", *flags, "--cores", "1",
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
        raise SystemExit(f"{' '.join(command)} failed:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, proc.stdout


def job_count(listing: str) -> int:
    """Jobs in the DAG, from the job table a full dry run prints."""
    match = JOB_TOTAL.search(listing)
    if match is None:
        raise SystemExit("no job table in the output of snakemake -n")
    return int(match.group(1))


def run_round(case: Case, root: Path) -> None:
    """Time one case: DAG only cold and warm, then every job listed, in a new folder."""
    folder = case.fresh_folder(root)
    try:
        case.dag_cold.append(dry_run(DAG_ONLY, *folder)[:2])
        case.dag_warm.append(dry_run(DAG_ONLY, *folder)[:2])
        wall, cpu, listing = dry_run(EVERY_JOB, *folder)
        case.every_job.append((wall, cpu))
        case.jobs = job_count(listing)
    finally:
        shutil.rmtree(folder[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3,
                        help="Rounds; each runs every case once in a new folder.")
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
                run_round(case, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"wall / CPU seconds, medians of {args.repeats} rounds, cases interleaved")
    print(f"{'case':>25} {'jobs':>5}  {'-n -q, cold':>15}  {'-n -q, warm':>15}  {'-n, warm':>15}")
    for case in cases:
        cells = [median(t) for t in (case.dag_cold, case.dag_warm, case.every_job)]
        print(f"{case.label:>25} {case.jobs:>5}  "
              + "  ".join(f"{wall:6.2f} / {cpu:6.2f}" for wall, cpu in cells))
    for label, llem_runs, floor_runs in (
        ("-n -q, warm", big.dag_warm, floor.dag_warm),
        ("-n, warm", big.every_job, floor.every_job),
    ):
        ratio = median(llem_runs)[1] / median(floor_runs)[1]
        print(f"CPU ratio llem / bare Snakemake, 1,000 experiments, {label}: {ratio:.2f}x")
    every_job_sec = median(big.every_job)[0]
    print(f"1,000 experiments with every job listed (snakemake -n): {every_job_sec:.2f} s wall")
    worst = max(median(big.dag_cold)[0], median(big.dag_warm)[0])
    verdict = "meets" if worst < TARGET_SEC else "MISSES"
    print(f"1,000-experiment DAG (snakemake -n -q): {worst:.2f} s wall, the worse of the cold "
          f"and warm medians; {verdict} the {TARGET_SEC:.0f} s target")
    return 0 if worst < TARGET_SEC else 1


if __name__ == "__main__":
    raise SystemExit(main())
