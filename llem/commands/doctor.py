"""``llem doctor``: what this machine can measure, and why not; with ``--configfile``, what
each experiment of a campaign will use here and what stops it (:mod:`llem.preflight`)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from llem.energy.probe import format_report, probe, report_document

#: Exit status when the campaign given cannot run here as configured.
EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="show what this machine can measure (GPUs, energy counters, RAPL) and why not; "
        "with --configfile, what each experiment will use here",
        description="Probe NVML and RAPL and say, in plain words, what llem can measure here. "
        "With --configfile, check the campaign's experiments against this host (device, "
        "energy source, model, prompts; SLURM profile settings with --profile slurm) and "
        f"exit {EXIT_PROBLEMS} when one of them cannot run.",
    )
    parser.add_argument("--json", action="store_true", help="print the probe as JSON")
    parser.add_argument("--configfile", metavar="FILE",
                        help="campaign file to check against this host")
    parser.add_argument("--profile", choices=("local", "slurm"), default="local",
                        help="where the campaign's jobs would run (default: local)")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    reports = probe()
    checked = None
    if args.configfile:
        from llem.preflight import preflight
        from llem.workflow import plan_campaign_file

        checked = preflight(plan_campaign_file(args.configfile), profile=args.profile)
    if args.json:
        document: Any = report_document(reports)
        if checked is not None:
            document = {"sources": document, "campaign": {
                "campaign": checked.campaign, "run_id": checked.run_id,
                "experiments": {name: [asdict(c) for c in checks]
                                for name, checks in checked.experiments.items()},
                "campaign_checks": [asdict(c) for c in checked.campaign_checks],
                "problems": checked.problems}}
        print(json.dumps(document, indent=2))
    else:
        print(format_report(reports))
        if checked is not None:
            print("\n" + "\n".join(checked.lines()))
            if checked.problems:
                print("\nThe campaign cannot run here as configured:")
                print("\n".join(f"  {p}" for p in checked.problems))
    return EXIT_PROBLEMS if checked is not None and checked.problems else 0
