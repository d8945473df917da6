"""``llem run``: one command from a model (or a campaign file) to a summary of results."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from llem.errors import ConfigError

_ENERGY_CHOICES = ("auto", "nvml", "rapl", "estimate")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run",
        help="measure a model (or a campaign file) with the workflow and print a summary",
        description="Build a campaign around MODEL (or read --configfile), apply the options "
        "and --set overrides, check it and this host, write it to "
        "results/<campaign>/<run_id>/campaign.yaml and run the Snakemake workflow on it. "
        "Snakemake's full output goes to logs/llem-run/<campaign>/<run_id>.log.",
    )
    parser.add_argument("model", nargs="?", metavar="MODEL",
                        help="Hugging Face model id or local model folder")
    parser.add_argument("--configfile", metavar="FILE",
                        help="campaign file to start from instead of a minimal campaign")
    parser.add_argument("--batch-size", type=_batch_sizes, metavar="N[,N...]",
                        help="batch sizes to sweep (default 1; replaces the file's sweep "
                        "over batching.batch_size)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"),
                        help="device of every experiment")
    parser.add_argument("--max-output-tokens", type=_positive, metavar="N",
                        help="tokens every experiment generates (max and min output tokens)")
    parser.add_argument("--cycles", type=_positive, metavar="N",
                        help="times each experiment is measured (num_cycles)")
    parser.add_argument("--energy", choices=_ENERGY_CHOICES,
                        help="energy.backend of every experiment ('estimate' needs "
                        "--set defaults.energy.cpu_tdp_w=WATTS)")
    parser.add_argument("--set", action="append", default=[], dest="sets", metavar="KEY=VALUE",
                        help="override any campaign key, dotted, value as YAML (repeatable): "
                        "defaults.energy.min_window_sec=2, sweep.batching.batch_size=[1,4], "
                        "run_id=run2")
    parser.add_argument("--cores", default="all", metavar="N",
                        help="cores Snakemake may use locally (default: all)")
    parser.add_argument("--profile", choices=("local", "slurm"), default="local",
                        help="where jobs run: here (default) or on SLURM (profiles/slurm)")
    parser.add_argument("--dry-run", action="store_true",
                        help="show what Snakemake would run (snakemake -n); measure nothing")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from llem.launch import (
        RunOptions,
        log_tail,
        plan_run,
        run_log_path,
        run_snakemake,
        snakemake_command,
        workflow_dir,
        write_campaign_file,
    )
    from llem.preflight import preflight
    from llem.progress import SnakemakeProgress
    from llem.summary import summary_text

    if args.cores != "all" and not (args.cores.isdigit() and int(args.cores) > 0):
        raise ConfigError(f"--cores {args.cores!r}: a positive number of cores, or 'all'")
    options = RunOptions(
        model=args.model, configfile=args.configfile, batch_sizes=args.batch_size,
        device=args.device, max_output_tokens=args.max_output_tokens, cycles=args.cycles,
        energy=args.energy, sets=list(args.sets),
    )
    root = workflow_dir()
    plan, data = plan_run(options)
    report = preflight(plan, profile=args.profile, workflow_root=root)
    print("\n".join(report.lines()), flush=True)
    if report.problems:
        raise ConfigError("\n".join(["nothing was run; this host cannot run the campaign as "
                                     "configured:", *report.problems]))
    campaign_file = write_campaign_file(plan, data)
    print(f"Campaign file: {campaign_file}", flush=True)
    command = snakemake_command(campaign_file, cores=args.cores, profile=args.profile,
                                dry_run=args.dry_run)
    if args.dry_run:
        status = subprocess.run(command, check=False, stdin=subprocess.DEVNULL).returncode
        print(f"Dry run: nothing was measured. Run it: llem run --configfile {campaign_file}")
        return status
    log_path = run_log_path(plan)
    print(f"Running the workflow; Snakemake's output goes to {log_path}", flush=True)
    progress = SnakemakeProgress(len(plan.experiments))
    status = run_snakemake(command, log_path, progress, sys.stderr)
    print(summary_text(plan, campaign_file=campaign_file, log_path=log_path), flush=True)
    if status != 0:
        print(f"llem: the workflow failed (Snakemake exit status {status}); the end of "
              f"{log_path}:", file=sys.stderr)
        for line in log_tail(log_path):
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


def _batch_sizes(text: str) -> list[int]:
    sizes = []
    for part in text.split(","):
        sizes.append(_positive(part.strip()))
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"{text!r} lists a batch size twice")
    return sizes


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)
