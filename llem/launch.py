"""``llem run``: a campaign built from a model name or a file, written down, then run.

The campaign is a plain campaign mapping: the file given with ``--configfile``, or a minimal
one around a model name. ``llem run``'s options and ``--set`` overrides are applied to it,
it is validated exactly as the workflow validates it, and it is written (atomically) to
``results/<campaign>/<run_id>/campaign.yaml``. That file is what Snakemake runs, so
``snakemake --configfile`` of it later finds the same jobs, already done.

The workflow files (Snakefile, ``workflow/``, ``profiles/``) live in the source checkout
beside the ``llem`` package; an install without them cannot run campaigns.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from llem.config.campaign import read_config_file
from llem.config.overrides import apply_override, parse_override, set_for_every_experiment
from llem.constants import MAX_NAME_CHARS
from llem.errors import ConfigError
from llem.layout import campaign_file_path
from llem.progress import SnakemakeProgress
from llem.workflow import CampaignPlan, plan_campaign

#: Where ``llem run`` keeps Snakemake's full output: ``logs/llem-run/<campaign>/<run_id>.log``.
RUN_LOG_DIR = "logs/llem-run"

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class RunOptions:
    """What ``llem run`` was asked for; None leaves the campaign's own value."""

    model: str | None = None
    configfile: str | None = None
    batch_sizes: list[int] | None = None
    device: str | None = None
    max_output_tokens: int | None = None
    cycles: int | None = None
    energy: str | None = None
    sets: list[str] = field(default_factory=list)


def workflow_dir() -> Path:
    """The checkout holding the Snakefile: the folder above the ``llem`` package."""
    import llem

    root = Path(llem.__file__).resolve().parent.parent
    if not (root / "Snakefile").is_file() or not (root / "workflow" / "rules").is_dir():
        raise ConfigError(
            f"the workflow files are not beside the llem package ({root / 'Snakefile'} is "
            "missing): llem run needs a source checkout installed with `pip install -e .` "
            "(or `make setup`)"
        )
    return root


def campaign_name_for(model: str) -> str:
    """A campaign name from a model name: its last path part, made safe (``SmolLM2-135M``)."""
    last = model.strip().rstrip("/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME_CHARS.sub("-", last).strip("-.")[:MAX_NAME_CHARS].rstrip("-.")
    return name or "campaign"


def minimal_campaign(model: str) -> dict[str, Any]:
    """The campaign ``llem run MODEL`` measures when no file is given: one batch size, run1."""
    return {
        "campaign": campaign_name_for(model),
        "run_id": "run1",
        "defaults": {"model_name": model},
        "sweep": {"batching.batch_size": [1]},
    }


def build_campaign(options: RunOptions) -> tuple[dict[str, Any], str]:
    """The campaign mapping ``options`` describe, and the label its errors are named by.

    Order: the file (or the minimal campaign), then MODEL, then the options, then ``--set``
    (the last word). Options set experiment fields for every experiment (in ``defaults``
    and in each listed experiment that gives its own value); ``--batch-size`` replaces the
    sweep over ``batching.batch_size``.
    """
    if options.configfile:
        data = read_config_file(options.configfile)
        source = f"{options.configfile} with llem run's options"
        if options.model:
            set_for_every_experiment(data, "model_name", options.model)
    elif options.model:
        data = minimal_campaign(options.model)
        source = f"llem run {options.model}"
    else:
        raise ConfigError("llem run: name a MODEL (hub id or model folder) or --configfile FILE")
    if options.batch_sizes:
        apply_override(data, "sweep.batching.batch_size", list(options.batch_sizes))
    fields: list[tuple[str, Any]] = [
        ("device", options.device), ("num_cycles", options.cycles),
        ("energy.backend", options.energy),
        ("decoder.max_output_tokens", options.max_output_tokens),
        ("decoder.min_output_tokens", options.max_output_tokens),
    ]
    for dotted, value in fields:
        if value is not None:
            set_for_every_experiment(data, dotted, value)
    for text in options.sets:
        apply_override(data, *parse_override(text))
    return data, source


def plan_run(options: RunOptions) -> tuple[CampaignPlan, dict[str, Any]]:
    """Build, override and validate the campaign (nothing is written)."""
    data, source = build_campaign(options)
    return plan_campaign(data, sources=[source]), data


def write_campaign_file(plan: CampaignPlan, data: dict[str, Any]) -> Path:
    """Write the campaign to ``results/<campaign>/<run_id>/campaign.yaml`` atomically.

    The text is checked to read back as the same mapping before it replaces the file.
    """
    from llem.io import write_text_atomic

    path = Path(campaign_file_path(plan.campaign, plan.run_id))
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    header = (
        f"# Campaign written by `llem run` at {stamp}. Run it again (it finds nothing to do\n"
        f"# when nothing changed) with: llem run --configfile {path}\n"
        f"# or with the workflow: snakemake --cores 2 --configfile {path}\n"
    )
    text = header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if yaml.safe_load(text) != data:
        raise ConfigError(f"{path}: the campaign does not survive a YAML round trip; "
                          "write it as a file and use --configfile")
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the campaign file: {exc.strerror or exc}") from exc
    return path


def run_log_path(plan: CampaignPlan) -> Path:
    """Where ``llem run`` keeps Snakemake's full output for this campaign run."""
    return Path(RUN_LOG_DIR) / plan.campaign / f"{plan.run_id}.log"


def snakemake_command(
    configfile: str | Path,
    *,
    cores: str = "all",
    profile: str = "local",
    dry_run: bool = False,
) -> list[str]:
    """The argument list (never a shell string) that runs the workflow on ``configfile``.

    ``profile`` "local" uses the workflow's default profile (picked up by Snakemake from
    ``profiles/default`` beside the Snakefile) with ``--cores``; "slurm" names
    ``profiles/slurm`` as the workflow profile instead.
    """
    root = workflow_dir()
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(root / "Snakefile"),
               "--configfile", str(configfile)]
    if profile == "slurm":
        command += ["--workflow-profile", str(root / "profiles" / "slurm")]
    else:
        command += ["--cores", str(cores)]
    if dry_run:
        command.append("--dry-run")
    return command


#: Seconds between looks at Snakemake's log while it runs.
_FOLLOW_INTERVAL_SEC = 0.2


def run_snakemake(
    command: list[str], log_path: Path, progress: SnakemakeProgress, out: TextIO
) -> int:
    """Run Snakemake with its output going to ``log_path``; show progress on ``out``.

    Snakemake writes to the log file itself (not to a pipe), so it keeps running and
    logging even if this process goes away; the log is followed while it runs. SIGTERM to
    this process is passed on to Snakemake, which then stops its jobs. Returns its exit
    status.
    """
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
    except OSError as exc:
        raise ConfigError(f"{log_path}: cannot write the run log: {exc.strerror or exc}") from exc
    live = out.isatty()
    with log_path.open("wb") as sink, log_path.open("r", encoding="utf-8",
                                                    errors="replace") as follow:
        proc = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        restore = _forward_sigterm(proc)
        try:
            _follow(proc, follow, progress, out, live)
        except KeyboardInterrupt:
            proc.wait()  # Ctrl-C reached Snakemake too; let it stop its jobs
            raise
        finally:
            restore()
    progress.current = "finished" if proc.returncode == 0 else "stopped"
    out.write(("\r\033[K" if live else "") + progress.status() + "\n")
    out.flush()
    return proc.returncode


def _follow(proc: subprocess.Popen[bytes], follow: TextIO, progress: SnakemakeProgress,
            out: TextIO, live: bool) -> None:
    shown = None
    partial = ""
    while True:
        chunk = follow.readline()
        if chunk:
            partial += chunk
            if not partial.endswith("\n"):
                continue
            line, partial = partial, ""
            started = progress.feed(line)
            if live and progress.status() != shown:
                shown = progress.status()
                out.write("\r\033[K" + shown[: shutil.get_terminal_size().columns - 1])
                out.flush()
            elif started and not live:  # a log, not a terminal: one line per job started
                print(progress.status(), file=out, flush=True)
            continue
        if proc.poll() is not None:
            rest = follow.read()
            for line in (partial + rest).splitlines():
                progress.feed(line)
            return
        time.sleep(_FOLLOW_INTERVAL_SEC)


def _forward_sigterm(proc: subprocess.Popen[bytes]) -> Callable[[], None]:
    """Pass SIGTERM on to ``proc`` while it runs; returns the function that undoes it."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def forward(_signum: int, _frame: object) -> None:
        proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    return lambda: signal.signal(signal.SIGTERM, previous)


def log_tail(log_path: Path, lines: int = 25) -> list[str]:
    """The last lines of a run log (what to show when Snakemake failed)."""
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]
