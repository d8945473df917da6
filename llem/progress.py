"""Progress of a Snakemake run, read from the lines Snakemake prints.

Only lines of Snakemake's ordinary console output are used: the ``Job stats:`` table,
``rule X:`` / ``localrule X:`` with the job's ``wildcards:``, ``Finished jobid: N (Rule: X)``,
``N of M steps (P%) done`` and ``Error in rule X:``. An experiment is done when its
``aggregate`` job has finished (its result.json exists), or when the run did not schedule it
(it was already up to date). A line that matches nothing is ignored, so a changed log
format costs the progress line, never the run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_JOB_START = re.compile(r"^(?:local)?rule (\w+):\s*$")
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")
_FINISHED = re.compile(r"^Finished jobid: \d+ \(Rule: (\w+)\)")
_STEPS = re.compile(r"^(\d+) of (\d+) steps \(\d+%\) done")
_ERROR = re.compile(r"^Error in rule (\w+):")
_STATS_ROW = re.compile(r"^(\w+)\s+(\d+)\s*$")

#: The rule whose finished job completes one experiment.
EXPERIMENT_RULE = "aggregate"


@dataclass
class SnakemakeProgress:
    """What a Snakemake run has done so far, fed one output line at a time."""

    total_experiments: int
    scheduled: dict[str, int] | None = None  # jobs per rule of this run, from "Job stats:"
    finished: dict[str, int] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    steps_done: int = 0
    steps_total: int | None = None
    current: str | None = None
    nothing_to_do: bool = False
    _in_stats: bool = False
    _pending_rule: str | None = None

    def feed(self, line: str) -> bool:
        """Take one line; True when a job started (its wildcards name the current step)."""
        line = line.rstrip("\n")
        if self._in_stats:
            return self._stats_line(line)
        if line.startswith("Job stats:"):
            self._in_stats, self.scheduled = True, {}
            return False
        if "Nothing to be done" in line:
            self.nothing_to_do = True
            return False
        if match := _JOB_START.match(line):
            self._pending_rule = self.current = match.group(1)
            return False
        if self._pending_rule and (match := _WILDCARDS.match(line)):
            self.current = _describe(self._pending_rule, match.group(1))
            self._pending_rule = None
            return True
        if match := _FINISHED.match(line):
            rule = match.group(1)
            self.finished[rule] = self.finished.get(rule, 0) + 1
        elif match := _STEPS.match(line):
            self.steps_done, self.steps_total = int(match.group(1)), int(match.group(2))
        elif match := _ERROR.match(line):
            self.failed.append(match.group(1))
        return False

    def _stats_line(self, line: str) -> bool:
        match = _STATS_ROW.match(line.strip())
        if match is None:
            if self.scheduled:  # the table has ended
                self._in_stats = False
            return False
        rule, count = match.group(1), int(match.group(2))
        if rule == "total":
            self._in_stats = False
            self.steps_total = self.steps_total or count
        elif rule != "job":
            assert self.scheduled is not None
            self.scheduled[rule] = count
        return False

    @property
    def experiments_done(self) -> int | None:
        """Experiments with an up-to-date result; None before Snakemake has planned."""
        if self.nothing_to_do:
            return self.total_experiments
        if self.scheduled is None:
            return None
        pending = self.scheduled.get(EXPERIMENT_RULE, 0) - self.finished.get(EXPERIMENT_RULE, 0)
        return max(0, self.total_experiments - pending)

    def status(self) -> str:
        """One line: experiments done of total, steps, the step that started last."""
        done = self.experiments_done
        parts = [f"{'?' if done is None else done}/{self.total_experiments} experiments"]
        if self.steps_total:
            parts.append(f"step {self.steps_done}/{self.steps_total}")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        head = f"[{', '.join(parts)}]"
        return f"{head} {self.current}" if self.current else f"{head} planning"


def _describe(rule: str, wildcards: str) -> str:
    """``measure exp_batch_size-1 cycle 0`` from a rule and its wildcards line."""
    values = dict(item.split("=", 1) for item in wildcards.split(", ") if "=" in item)
    run = "/".join(v for v in (values.get("campaign"), values.get("run_id")) if v)
    what = values.get("exp") or values.get("model_key") or run
    text = f"{rule} {what}".strip()
    if "cycle" in values:
        text += f" cycle {values['cycle']}"
    return text
