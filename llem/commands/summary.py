"""``llem summary``: the summary a campaign run ends with, for any campaign file."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "summary",
        help="one line per experiment of a campaign (throughput, J per output token), the "
        "report, the store and the next command",
        description="Print the summary that `llem run` and a finished workflow end with, "
        "from the result.json files of the campaign's experiments.",
    )
    parser.add_argument("--configfile", required=True, metavar="FILE", help="campaign file")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from llem.summary import summary_text
    from llem.workflow import plan_campaign_file

    plan = plan_campaign_file(args.configfile)
    print(summary_text(plan, campaign_file=args.configfile))
    return 0
