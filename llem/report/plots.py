"""Campaign plots: throughput and latency against batch size (always), J per output token
against batch size and the energy/throughput trade-off (when energy exists).

Only recorded values are plotted. Every energy figure names its source in the legend; an
estimate is drawn with hollow markers and dashed lines and says "estimate", and measured and
estimated points are never joined by one line. Where a figure has nothing to plot, the image
says why in one sentence (:func:`energy_missing_reason`, :func:`latency_missing_reason`), and
so does the HTML page. Points resting on more than one cycle show their n.
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llem.io import write_bytes_atomic
from llem.report.rows import ExperimentRow, Interval

#: Drawing styles: a measurement is a filled marker on a solid line, an estimate a hollow
#: marker on a dashed line.
MEASURED_STYLE: dict[str, Any] = {"marker": "o", "linestyle": "-"}
ESTIMATE_STYLE: dict[str, Any] = {"marker": "s", "linestyle": "--", "markerfacecolor": "none"}


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_png(fig: Any) -> bytes:
    """A figure rendered to PNG bytes (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return buffer.getvalue()


def save_figure(fig: Any, path: str | Path) -> bytes:
    """Render a figure to PNG and write it atomically; returns the bytes written."""
    data = figure_png(fig)
    write_bytes_atomic(path, data)
    return data


def missing_figure(message: str) -> Any:
    """A figure that states why nothing could be plotted."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.6))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    return fig


def is_estimate(source: str | None) -> bool:
    """Whether an energy source is an estimate rather than a measurement."""
    return bool(source) and str(source).startswith("estimate")


def source_label(source: str | None) -> str:
    """How a figure's legend names an energy source."""
    if is_estimate(source):
        return "estimate (CPU time x TDP, not measured)"
    if source in (None, "", "unrecorded"):
        return "measured, source not recorded"
    return f"measured ({source})"


# --------------------------------------------------------------------------------------
# why a figure is missing
# --------------------------------------------------------------------------------------


def energy_missing_reason(rows: list[ExperimentRow]) -> str | None:
    """One sentence saying why energy figures are missing; None when every row has them."""
    without = [r for r in rows if r.energy_per_output_token_j is None]
    if not without:
        return None
    reasons = _distinct(r.energy_unavailable_reason or "no energy recorded" for r in without)
    subject = "No experiment" if len(without) == len(rows) else (
        f"{len(without)} of {len(rows)} measured cycles")
    return f"{subject} has a measured J per output token: {'; '.join(reasons)}."


def latency_missing_reason(rows: list[ExperimentRow], metric: str) -> str | None:
    """Why ``metric`` (``ttft`` or ``itl``) percentiles are missing, as one sentence."""
    without = [r for r in rows if getattr(r, f"{metric}_p50_ms") is None]
    if not without:
        return None
    reasons = _distinct(r.latency_unavailable_reason or "not recorded" for r in without)
    name = "time to first token" if metric == "ttft" else "inter-token latency"
    return f"No {name} for {len(without)} of {len(rows)} cycles: {'; '.join(reasons)}."


def timeseries_missing_reason(rows: list[ExperimentRow]) -> str | None:
    """Why no row has a time-series plot; None when at least one has."""
    if any(r.timeseries_files for r in rows):
        return None
    reasons = _distinct(r.timeseries_reason or "none recorded" for r in rows)
    return f"No power or temperature time series: {'; '.join(reasons)}."


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def performance_vs_batch_size(rows: list[ExperimentRow]) -> Any:
    """Output throughput, TTFT p50/p95 and ITL p50/p95 against batch size, per model."""
    plt = pyplot()
    fig, (ax_tp, ax_ttft, ax_itl) = plt.subplots(1, 3, figsize=(15, 4.2))
    by_model = _group(rows, lambda r: r.model or "?")
    drew = _lines(ax_tp, by_model, lambda r: r.output_tokens_per_second,
                  lambda r: r.output_tokens_per_second_interval, MEASURED_STYLE)
    _axes(ax_tp, "output tokens / s", "Throughput against batch size", drew,
          "No experiment has a throughput.")
    for ax, metric, title in ((ax_ttft, "ttft", "Time to first token"),
                              (ax_itl, "itl", "Inter-token latency")):
        drew = False
        for pct, style in (("p50", MEASURED_STYLE), ("p95", {**MEASURED_STYLE,
                                                             "linestyle": ":"})):
            groups = {f"{model} {pct}": by_batch for model, by_batch in by_model.items()}
            drew |= _lines(ax, groups, _getter(f"{metric}_{pct}_ms"), None, style)
        _axes(ax, f"{metric.upper()} (ms)", f"{title} (p50 solid, p95 dotted)", drew,
              latency_missing_reason(rows, metric) or "")
    fig.tight_layout()
    return fig


def energy_per_token_vs_batch_size(rows: list[ExperimentRow]) -> Any:
    """J per output token against batch size: one line per model and energy source, with
    the 95 % interval across cycles and its n where there is one."""
    groups = _group(
        [r for r in rows if r.energy_per_output_token_j is not None],
        lambda r: (r.model or "?", r.energy_source),
    )
    if not groups:
        return missing_figure(_wrap(energy_missing_reason(rows) or "No energy recorded."))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for (model, source), by_batch in sorted(groups.items(), key=lambda kv: str(kv[0])):
        style = ESTIMATE_STYLE if is_estimate(source) else MEASURED_STYLE
        _lines(ax, {f"{model}: {source_label(source)}": by_batch},
               lambda r: r.energy_per_output_token_j,
               lambda r: r.energy_per_output_token_interval_j, style)
    title = "J per output token against batch size"
    _axes(ax, "energy per output token (J)", _estimate_title(title, rows), True, "")
    _estimate_note(ax, rows)
    return fig


def energy_vs_throughput(rows: list[ExperimentRow]) -> Any:
    """Each cycle with energy and throughput as a point: output tokens/s against J per
    output token; estimates hollow."""
    usable = [r for r in rows
              if r.energy_per_output_token_j is not None and r.output_tokens_per_second]
    if not usable:
        return missing_figure(_wrap(energy_missing_reason(rows)
                                    or "No experiment has both energy and throughput."))
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    groups: dict[tuple[str, str | None], list[ExperimentRow]] = defaultdict(list)
    for row in usable:
        groups[(row.model or "?", row.energy_source)].append(row)
    for (model, source), group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        xs = [r.output_tokens_per_second for r in group]
        ys = [r.energy_per_output_token_j for r in group]
        estimate = is_estimate(source)
        ax.scatter(xs, ys, marker="s" if estimate else "o", label=f"{model}: "
                   f"{source_label(source)}", **({"facecolors": "none", "edgecolors": "C1"}
                                                 if estimate else {}))
        for row, x, y in zip(group, xs, ys, strict=True):
            ax.annotate(row.experiment, (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("throughput (output tokens / s)")
    ax.set_ylabel("energy per output token (J)")
    ax.set_title(_estimate_title("Energy / throughput trade-off (lower right is better)",
                                 usable))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _estimate_note(ax, usable)
    return fig


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _group(rows: list[ExperimentRow], key: Callable[[ExperimentRow], Any]
           ) -> dict[Any, dict[int, list[ExperimentRow]]]:
    """Rows with a batch size, by ``key`` and batch size."""
    out: dict[Any, dict[int, list[ExperimentRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.batch_size is not None:
            out[key(row)][row.batch_size].append(row)
    return out


def _lines(
    ax: Any,
    groups: dict[Any, dict[int, list[ExperimentRow]]],
    value: Callable[[ExperimentRow], float | None],
    interval: Callable[[ExperimentRow], Interval | None] | None,
    style: dict[str, Any],
) -> bool:
    """One line per group: the mean over the cycles at each batch size, the interval of
    the experiment as error bars where it has one, and ``n = k`` beside points of k > 1
    cycles. Returns whether anything was drawn."""
    drew = False
    for label, by_batch in sorted(groups.items(), key=lambda kv: str(kv[0])):
        xs, ys, lows, highs, ns = [], [], [], [], []
        for batch in sorted(by_batch):
            values = [v for r in by_batch[batch] if (v := value(r)) is not None]
            if not values:
                continue
            mean = statistics.fmean(values)
            one_experiment = len({r.experiment for r in by_batch[batch]}) == 1
            found = interval(by_batch[batch][0]) if interval and one_experiment else None
            ok = found is not None and found.lower is not None and found.upper is not None
            xs.append(batch)
            ys.append(mean)
            lows.append(max(mean - found.lower, 0.0) if ok else 0.0)  # type: ignore[union-attr]
            highs.append(max(found.upper - mean, 0.0) if ok else 0.0)  # type: ignore[union-attr]
            ns.append(found.n if ok else len(values))  # type: ignore[union-attr]
        if not xs:
            continue
        drew = True
        ax.errorbar(xs, ys, yerr=[lows, highs] if any(lows) or any(highs) else None,
                    capsize=3, label=str(label), **style)
        for x, y, n in zip(xs, ys, ns, strict=True):
            if n > 1:
                ax.annotate(f"n = {n}", (x, y), fontsize=7, xytext=(4, -10),
                            textcoords="offset points")
    return drew


def _axes(ax: Any, ylabel: str, title: str, drew: bool, why_not: str) -> None:
    ax.set_title(title, fontsize=10)
    if not drew:
        ax.axis("off")
        ax.text(0.5, 0.5, _wrap(why_not, 45), ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
        return
    batches = sorted({int(x) for line in ax.get_lines() for x in line.get_xdata()})
    if len(batches) > 1:
        ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def _estimate_title(title: str, rows: list[ExperimentRow]) -> str:
    sources = {r.energy_source for r in rows if r.energy_per_output_token_j is not None}
    if sources and all(is_estimate(s) for s in sources):
        return f"{title}\nESTIMATE, not a measurement"
    return title


def _estimate_note(ax: Any, rows: list[ExperimentRow]) -> None:
    if any(is_estimate(r.energy_source) for r in rows):
        ax.text(0.99, 0.01, "hollow markers, dashed lines: estimate (not measured)",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="C1")


def _getter(name: str) -> Callable[[ExperimentRow], float | None]:
    return lambda row: getattr(row, name)


def _distinct(texts: Any) -> list[str]:
    return list(dict.fromkeys(texts))[:3]


def _wrap(text: str, width: int = 70) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) or text
