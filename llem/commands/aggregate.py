"""``llem aggregate``: combine an experiment's ranks (and cycles) into its result.json."""

from __future__ import annotations

import argparse
from pathlib import Path

from llem.measure.job_guard import SHARED


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "aggregate",
        help="Combine cycle_*/raw/process_*.json into a schema-validated result.json.",
    )
    parser.add_argument("--spec", type=Path, required=True, help="Experiment spec (JSON).")
    parser.add_argument("--exp-dir", type=Path,
                        help="Experiment folder holding cycle_<k>/ folders "
                        "(default: the folder of --out).")
    parser.add_argument("--out", type=Path, required=True, help="result.json to write.")
    parser.set_defaults(func=_aggregate, step_kind=SHARED)


def _aggregate(args: argparse.Namespace) -> int:
    from llem.aggregate import aggregate_experiment, write_result
    from llem.config.campaign import read_experiment_spec

    spec = read_experiment_spec(args.spec)
    exp_dir = args.out.parent if args.exp_dir is None else args.exp_dir
    result = aggregate_experiment(spec, exp_dir)
    write_result(result, args.out)
    print(args.out)
    return 0
