"""``llem prepare-model``: make a model loadable offline under the models folder (unmeasured)."""

from __future__ import annotations

import argparse
from pathlib import Path

from llem.constants import DEFAULT_MODELS_DIR
from llem.errors import ConfigError
from llem.measure.job_guard import SHARED


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prepare-model",
        help="Materialize a model under the models folder (download, convert, or random "
        "weights), or build a tiny test model.",
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--spec", type=Path, help="Experiment spec (JSON) naming the model.")
    what.add_argument("--model", help="Hugging Face id, local folder, or architecture name.")
    what.add_argument("--tiny", action="store_true",
                      help="Build a tiny random-weights model offline into --out.")
    what.add_argument("--list-architectures", action="store_true",
                      help="List the architectures shipped for random-weights runs.")
    parser.add_argument("--revision", help="Hub revision (with --model).")
    parser.add_argument("--random-weights", action="store_true",
                        help="Build --model's architecture with random weights.")
    parser.add_argument("--source", default="auto", choices=["auto", "hub"],
                        help="With --model: 'hub' refuses any weights but the Hub's own "
                        "(see model.source).")
    parser.add_argument("--precision", default="float32",
                        choices=["float32", "float16", "bfloat16"],
                        help="Precision recorded for --model (default float32).")
    parser.add_argument("--models-dir", type=Path, default=Path(DEFAULT_MODELS_DIR),
                        help=f"Models folder (default {DEFAULT_MODELS_DIR}).")
    parser.add_argument("--architecture", default="llama",
                        help="Tiny model architecture: llama or qwen2 (with --tiny).")
    parser.add_argument("--out", type=Path, help="Output folder of --tiny.")
    parser.add_argument("--force", action="store_true", help="Prepare again even if present.")
    parser.set_defaults(func=_prepare, step_kind=SHARED)


def _prepare(args: argparse.Namespace) -> int:
    from llem.inference.models import stderr_log

    if args.list_architectures:
        from llem.inference.architectures import list_architectures

        for name, description in list_architectures().items():
            print(f"{name}\t{description}")
        return 0
    if args.tiny:
        from llem.inference.tiny import build_tiny_model

        if args.out is None:
            raise ConfigError("--tiny needs --out DIR")
        print(build_tiny_model(args.out, args.architecture))
        return 0

    from llem.inference.models import prepare_model

    if args.spec is not None:
        from llem.config.campaign import read_experiment_spec

        config = read_experiment_spec(args.spec).config
    elif args.model is not None:
        from llem.config.campaign import parse_experiment

        config = parse_experiment(
            {
                "config_name": "prepare",
                "model_name": args.model,
                "precision": args.precision,
                "model": {"revision": args.revision, "random_weights": args.random_weights,
                          "source": args.source},
            },
            source="command line",
        )
    else:
        raise ConfigError("name the model: --spec SPEC.json, --model NAME, or --tiny --out DIR")
    prepared = prepare_model(config, args.models_dir, force=args.force, log=stderr_log)
    print(prepared.folder)
    return 0
