"""Campaign plots: J per output token against batch size, and the energy/throughput trade-off.

Only measured values are plotted. When no experiment has the figure a plot needs, the image
says so and why, instead of drawing zeros.
"""

from __future__ import annotations

import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from llem.io import write_bytes_atomic
from llem.report.rows import ExperimentRow


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> None:
    """Render a figure to PNG and write it atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    pyplot().close(fig)
    write_bytes_atomic(path, buffer.getvalue())


def missing_figure(message: str) -> Any:
    """A figure that states why nothing could be plotted."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return fig


def energy_per_token_vs_batch_size(rows: list[ExperimentRow]) -> Any:
    """J per output token against batch size, one line per model (mean ± std over cycles)."""
    points: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.energy_per_output_token_j is None or row.batch_size is None:
            continue
        points[row.model or "?"][row.batch_size].append(row.energy_per_output_token_j)
    if not points:
        return missing_figure(
            "No experiment has a measured J per output token.\n" + _reasons(rows)
        )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, by_batch in sorted(points.items()):
        batches = sorted(by_batch)
        means = [statistics.fmean(by_batch[b]) for b in batches]
        stds = [statistics.stdev(by_batch[b]) if len(by_batch[b]) > 1 else 0.0 for b in batches]
        ax.errorbar(batches, means, yerr=stds, marker="o", capsize=3, label=model)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size")
    ax.set_ylabel("energy per output token (J)")
    ax.set_title("J per output token against batch size")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def energy_vs_throughput(rows: list[ExperimentRow]) -> Any:
    """Each measured cycle as a point: output tokens/s against J per output token."""
    by_model: dict[str, list[ExperimentRow]] = defaultdict(list)
    for row in rows:
        if row.energy_per_output_token_j is None or row.output_tokens_per_second is None:
            continue
        by_model[row.model or "?"].append(row)
    if not by_model:
        return missing_figure(
            "No experiment has both a measured energy and a throughput.\n" + _reasons(rows)
        )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model, model_rows in sorted(by_model.items()):
        xs = [r.output_tokens_per_second for r in model_rows]
        ys = [r.energy_per_output_token_j for r in model_rows]
        ax.scatter(xs, ys, label=model)
        for row, x, y in zip(model_rows, xs, ys, strict=True):
            ax.annotate(row.experiment, (x, y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xlabel("throughput (output tokens / s)")
    ax.set_ylabel("energy per output token (J)")
    ax.set_title("Energy / throughput trade-off (lower right is better)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _reasons(rows: list[ExperimentRow]) -> str:
    reasons = sorted({n for r in rows for n in r.notes if n.startswith("energy unavailable")})
    return "\n".join(reasons[:3])
