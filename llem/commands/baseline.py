"""``llem baseline``: measure (or take from the cache) idle power; write baseline.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from llem.config.campaign import read_experiment_spec
from llem.measure.baseline import (
    baseline_summary,
    default_cache_dir,
    measure_baseline,
    write_baseline,
)
from llem.measure.devices import cuda_indices_for_config
from llem.measure.job_guard import MEASURING, current
from llem.measure.orphan import stop_if_orphaned


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "baseline",
        help="measure idle power of the experiment's devices (cached on disk with a TTL)",
        description="Measure mean idle power with a CUDA context alive, over "
        "baseline.duration_sec, and write baseline.json. A baseline of the same host and "
        "devices younger than baseline.cache_ttl_sec is reused.",
    )
    parser.add_argument("--spec", required=True, help="resolved experiment spec (JSON/YAML)")
    parser.add_argument("--out", required=True, help="where to write baseline.json")
    parser.add_argument(
        "--cache-dir", default=None,
        help="baseline cache folder (default: $LLEM_CACHE_DIR/baselines or "
        "~/.cache/llem/baselines)",
    )
    parser.add_argument("--no-cache", action="store_true", help="always measure afresh")
    parser.set_defaults(func=handle, step_kind=MEASURING)


def handle(args: argparse.Namespace) -> int:
    spec = read_experiment_spec(args.spec)
    config = spec.config
    guard = current()
    if guard is not None:  # the devices, then the host alone, from the first read to the last
        guard.hold_devices(config, spec.experiment_id, exclusive=True)
    record = measure_baseline(
        config.baseline,
        energy_cfg=config.energy,
        cuda_device_indices=cuda_indices_for_config(config),
        cache_dir=Path(args.cache_dir) if args.cache_dir else default_cache_dir(),
        use_cache=not args.no_cache,
    )
    stop_if_orphaned()
    write_baseline(record, args.out)
    if guard is not None:
        guard.release()
    print(baseline_summary(record))
    for warning in record.warnings:
        print(f"llem: warning: {warning}", file=sys.stderr)
    if record.method == "unavailable" and not record.required:
        print("llem: warning: no baseline; adjusted energy will be null", file=sys.stderr)
    record.raise_if_required()
    return 0
