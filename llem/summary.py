"""The summary a campaign run ends with: one line per experiment, then where things are.

Each line gives the output-token throughput and the energy per output token with its
source, both with their 95 % interval and n when the experiment ran several cycles, or
``not measured: REASON`` with the reason the result records. Figures are read from the
experiments' result.json files (:func:`llem.results.loader.load_result`), never recomputed. The same
text ends ``llem run``, ``llem summary`` and a plain ``snakemake`` run (the workflow's
``onsuccess`` handler, ``workflow/rules/summary.smk``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from llem.constants import DEFAULT_STORE_PATH
from llem.domain.experiment import AggregatedResult, MultiCycleResult
from llem.errors import LlemError
from llem.layout import report_dir, result_path
from llem.workflow import CampaignPlan

#: Energy sources that are not measurements; their figures are labelled so.
_ESTIMATED_SOURCES = {"estimate": "estimate: CPU time x TDP, not a measurement"}


@dataclass(frozen=True)
class Figure:
    """A mean with its 95 % interval over ``n`` cycles (no interval for one cycle)."""

    value: float
    lower: float | None = None
    upper: float | None = None
    n: int = 1

    def text(self, fmt: str, unit: str) -> str:
        shown = f"{format(self.value, fmt)} {unit}"
        if self.n > 1 and self.lower is not None and self.upper is not None:
            shown += (f" [{format(self.lower, fmt)}, {format(self.upper, fmt)}] "
                      f"95% CI, n={self.n}")
        elif self.n > 1:
            shown += f" (n={self.n}, no interval)"
        return shown


def experiment_line(result: AggregatedResult | MultiCycleResult) -> str:
    """Throughput and J per output token of one result, in words."""
    if isinstance(result, MultiCycleResult):
        stats, cycles = result.statistics, result.cycle_results
        throughput = _figure(stats.output_throughput_mean_tps, stats.output_throughput_ci_95_lower,
                             stats.output_throughput_ci_95_upper, stats.num_cycles)
        energy = _figure(stats.energy_per_output_token_mean_j,
                         stats.energy_per_output_token_ci_95_lower,
                         stats.energy_per_output_token_ci_95_upper, stats.num_cycles)
    else:
        cycles = [result]
        throughput = _figure(result.output_tokens_per_second)
        energy = _figure(result.energy_per_output_token_j)
    parts = [throughput.text(".1f", "output tok/s") if throughput else "throughput not measured"]
    if energy is None:
        reasons = [c.energy_unavailable_reason for c in cycles if c.energy_unavailable_reason]
        parts.append(f"energy not measured: {reasons[0] if reasons else 'no reason recorded'}")
    else:
        sources = sorted({c.energy_source or "unknown" for c in cycles})
        source = sources[0] if len(sources) == 1 else "mixed: " + ", ".join(sources)
        parts.append(f"{energy.text('.3g', 'J/output token')} "
                     f"({_ESTIMATED_SOURCES.get(source, source)})")
    return "  ".join(parts)


def experiment_lines(plan: CampaignPlan, root: str | Path = ".") -> list[str]:
    """One line per experiment of the plan, in campaign order."""
    from llem.results.loader import load_result

    root = Path(root)
    width = max((len(name) for name in plan.experiments), default=0)
    batches = {name: f"batch {planned.config.batching.batch_size}"
               for name, planned in plan.experiments.items()}
    batch_width = max((len(b) for b in batches.values()), default=0)
    lines = []
    for name in plan.experiments:
        path = root / result_path(plan.campaign, plan.run_id, name)
        head = f"{name:<{width}}  {batches[name]:<{batch_width}}"
        if not path.is_file():
            lines.append(f"{head}  no result yet (not run, or failed: see logs/)")
            continue
        try:
            result = load_result(path)
        except LlemError as exc:
            lines.append(f"{head}  unreadable result {path}: {str(exc).splitlines()[0]}")
            continue
        if isinstance(result, AggregatedResult | MultiCycleResult):
            lines.append(f"{head}  {experiment_line(result)}")
        else:
            lines.append(f"{head}  {path} is not an experiment result")
    return lines


def summary_text(
    plan: CampaignPlan,
    *,
    campaign_file: str | Path | None = None,
    log_path: str | Path | None = None,
    root: str | Path = ".",
) -> str:
    """The whole summary: experiment lines, report, store, log, and the next commands."""
    root = Path(root)
    count = len(plan.experiments)
    lines = [f"Summary of campaign {plan.campaign}, run {plan.run_id} "
             f"({count} experiment{'s' if count != 1 else ''}):"]
    lines += [f"  {line}" for line in experiment_lines(plan, root)]
    table = f"{report_dir(plan.campaign, plan.run_id)}/experiments.html"
    state = "" if (root / table).is_file() else " (not built yet)"
    configfile = f" --configfile {shlex.quote(str(campaign_file))}" if campaign_file else ""
    lines.append(f"Report: {table}{state}; every figure in one page: "
                 f"snakemake --report report.html{configfile}")
    lines.append(f"Store:  {plan.store}")
    if log_path is not None:
        lines.append(f"Log:    {log_path}")
    store = "" if plan.store == DEFAULT_STORE_PATH else f" --store {shlex.quote(plan.store)}"
    sql = ("SELECT experiment_name, batch_size, throughput_tokens_per_sec, "
           "energy_per_output_token_j, energy_source FROM results "
           f"WHERE campaign = '{plan.campaign}' AND run_id = '{plan.run_id}'")
    lines.append(f"Next:   llem results list --campaign {plan.campaign}{store}")
    # Campaign and run names are [A-Za-z0-9._-] only, so the double quotes are safe.
    lines.append(f'        llem query "{sql}"{store}')
    return "\n".join(lines)


def _figure(value: float | None, lower: float | None = None, upper: float | None = None,
            n: int = 1) -> Figure | None:
    return None if value is None else Figure(value, lower, upper, n)


def print_workflow_summary(plan: CampaignPlan, configfiles: list[str | Path]) -> None:
    """The workflow's ``onsuccess`` handler: print the summary of the finished run.

    The run has succeeded by then; a summary that cannot be built says why in one line
    instead of turning that success into a failure.
    """
    campaign_file = ", ".join(str(f) for f in configfiles) or None
    try:
        text = summary_text(plan, campaign_file=campaign_file)
    except (LlemError, OSError, ValueError) as exc:
        text = f"llem: no summary of {plan.campaign}/{plan.run_id}: {exc}"
    print(text, flush=True)
