"""``llem env``: collect the environment metadata of this host; never fails."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from llem.errors import LlemError
from llem.io import write_json_atomic
from llem.measure.environment import collect_environment
from llem.measure.job_guard import SHARED


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "env",
        help="collect environment metadata (GPUs, CUDA, CPU, versions) as JSON",
        description="Collect EnvironmentMetadata; what cannot be read is null, with a reason "
        "under 'unavailable'.",
    )
    parser.add_argument("--out", help="write environment.json here (default: print it)")
    parser.add_argument(
        "--gpus", default=None,
        help="CUDA device indices the job uses, comma-separated (default: from --spec, else 0)",
    )
    parser.add_argument(
        "--spec", default=None,
        help="resolved experiment spec: the GPU it uses is reported as 'gpu'",
    )
    parser.set_defaults(func=handle, step_kind=SHARED)


def handle(args: argparse.Namespace) -> int:
    indices = None
    if args.gpus:
        try:
            indices = [int(x) for x in args.gpus.split(",") if x.strip()]
        except ValueError:
            indices = None
    elif args.spec:
        from llem.config.campaign import read_experiment_spec  # only a spec needs the config
        from llem.measure.devices import cuda_indices_for_config

        try:
            indices = cuda_indices_for_config(read_experiment_spec(args.spec).config) or None
        except LlemError as exc:  # collection never fails; the spec only picks the GPU
            print(f"llem: warning: {exc}", file=sys.stderr)
    env = collect_environment(indices)
    document = env.model_dump(mode="json")
    print(env.summary_line)
    if args.out:
        write_json_atomic(args.out, document)
        print(args.out)
    else:
        print(json.dumps(document, indent=2))
    return 0
