"""The ``llem`` command line: parse, call one package function, print.

Each sub-command lives in its own module under :mod:`llem.commands` and exposes
``register(subparsers)``; the module adds its parser and sets ``func`` to a handler that takes
the parsed arguments and returns an exit status. Errors llem raises on purpose
(:class:`llem.errors.LlemError`) are printed as plain lines, never as tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import textwrap
from collections.abc import Sequence

from llem.errors import LlemError
from llem.measure.job_guard import guard_step
from llem.version import __version__

EXIT_ERROR = 2

#: Commands a user types, listed first by ``llem --help``; the others are the workflow's steps.
USER_COMMANDS = ("run", "results", "query", "store", "report", "doctor", "ingest", "export",
                 "validate")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every sub-command registered, or only ``command``'s.

    Each workflow step is its own process: importing every command module (and what each
    imports) for one of them is start-up time spent per experiment. A sub-command lives in the
    module of its name (``prepare-model`` in ``prepare_model.py``); an unknown name registers
    them all, so the error lists the choices.
    """
    parser = argparse.ArgumentParser(
        prog="llem",
        usage="llem [-h] [--version] COMMAND ...",
        description="Measure energy, throughput and latency of LLM inference; keep every "
        "result in a queryable store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"llem {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", prog="llem",
                                       help=argparse.SUPPRESS)
    import llem.commands as commands_pkg

    names = sorted(info.name for info in pkgutil.iter_modules(commands_pkg.__path__)
                   if not info.name.startswith("_"))
    wanted = command.replace("-", "_") if command else None
    for name in [wanted] if wanted in names else names:
        module = importlib.import_module(f"llem.commands.{name}")
        module.register(subparsers)
    parser.epilog = _command_list(subparsers)
    return parser


def _command_list(subparsers: argparse._SubParsersAction) -> str:
    """The help's list of commands: those a user types first, then the workflow's steps."""
    helps = {action.dest: action.help or "" for action in subparsers._choices_actions}
    steps = sorted(set(helps) - set(USER_COMMANDS))
    lines = []
    for title, names in (("commands:", [n for n in USER_COMMANDS if n in helps]),
                         ("workflow steps (run by the Snakefile's rules; `llem STEP --help`):",
                          steps)):
        lines.append(title)
        for name in names:
            lines += textwrap.wrap(helps[name], 98, initial_indent=f"  {name:<15}",
                                   subsequent_indent=" " * 17) or [f"  {name}"]
        lines.append("")
    return "\n".join(lines).rstrip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    process_wide = argv is None  # the real command line, not a call from Python
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        # Workflow steps run guarded: stopped when orphaned, under the host's locks.
        with guard_step(getattr(args, "step_kind", None), argv, process_wide=process_wide):
            return int(args.func(args) or 0)
    except LlemError as exc:
        for line in str(exc).splitlines() or ["unknown error"]:
            print(f"llem: error: {line}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("llem: interrupted", file=sys.stderr)
        return 130
