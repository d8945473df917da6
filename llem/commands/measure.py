"""``llem measure``: warm up and measure one experiment cycle (launches torchrun for N > 1)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llem.constants import DEFAULT_MODELS_DIR
from llem.measure.job_guard import MEASURING, current


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "measure",
        help="Warm up and run one cycle of an experiment under a measurement window.",
    )
    parser.add_argument("--spec", type=Path, required=True, help="Experiment spec (JSON).")
    parser.add_argument("--environment", type=Path,
                        help="environment.json of this job (collected now if omitted).")
    parser.add_argument("--baseline", type=Path,
                        help="baseline.json of this job's devices (no baseline if omitted).")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR),
                       help=f"Prepared models folder (default {DEFAULT_MODELS_DIR}).")
    where.add_argument("--model-record", type=Path,
                       help="The prepared model's llem-model.json; its models folder is used, "
                       "and it must be this spec's model.")
    parser.add_argument("--out-dir", type=Path, required=True,
                        help="Cycle folder: warmup.json, raw/, timeseries/ go here.")
    parser.add_argument("--cycle", type=int, default=0, help="Cycle index, from 0.")
    parser.add_argument("--rank-worker", action="store_true",
                        help=argparse.SUPPRESS)  # set by the torchrun launch
    parser.set_defaults(func=_measure, step_kind=MEASURING)


def _measure(args: argparse.Namespace) -> int:
    from llem.config.campaign import read_experiment_spec
    from llem.inference.distributed import RankInfo, launch_workers
    from llem.inference.models import models_dir_of_record
    from llem.measure.run import MeasureInputs, measure

    spec = read_experiment_spec(args.spec)
    if args.model_record is not None:
        args.models_dir = models_dir_of_record(args.model_record, spec.config)
    processes = spec.config.num_processes
    # The launching process holds the devices and the host for every rank; ranks take none.
    guard = None if args.rank_worker else current()
    if guard is not None:  # the host alone from warmup on; all of torchrun for N ranks
        guard.hold_devices(spec.config, spec.experiment_id, exclusive=processes > 1)
    if processes > 1 and not args.rank_worker:
        worker_args = ["measure", "--spec", str(args.spec), "--models-dir", str(args.models_dir),
                       "--out-dir", str(args.out_dir), "--cycle", str(args.cycle),
                       "--rank-worker"]
        if args.environment is not None:
            worker_args += ["--environment", str(args.environment)]
        if args.baseline is not None:
            worker_args += ["--baseline", str(args.baseline)]
        return launch_workers(processes, worker_args)
    inputs = MeasureInputs(
        spec=spec, models_dir=args.models_dir, out_dir=args.out_dir, cycle=args.cycle,
        environment_path=args.environment, baseline_path=args.baseline,
    )
    raw = measure(inputs, RankInfo.from_env() if args.rank_worker else RankInfo(),
                  exclusive=guard.exclusive if guard is not None else None)
    energy_j = raw.energy_metrics.total_energy_j
    energy = "unmeasured" if energy_j is None else f"{energy_j:.3f} J"
    print(f"{raw.output_tokens} output tokens, {raw.output_tokens_per_second:.1f} tok/s, "
          f"energy {energy}")
    return 0
