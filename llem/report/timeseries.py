"""Power and temperature over time of one measured cycle, with the measured window shaded.

Reads the Parquet files of the measure step (columns of
:class:`llem.domain.timeseries.TimeSeriesRecord`); time is seconds since the window started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from llem.report.plots import missing_figure, pyplot
from llem.report.rows import ExperimentRow


def read_samples(files: list[Path]) -> list[dict[str, Any]]:
    """All samples of the given Parquet files as plain dicts."""
    import pyarrow.parquet as pq

    samples: list[dict[str, Any]] = []
    for path in files:
        samples.extend(pq.ParquetFile(path).read().to_pylist())  # read_table imports pandas
    return samples


def timeseries_figure(row: ExperimentRow) -> Any:
    """Power (left axis) and temperature (right axis) per device over time."""
    samples = read_samples(row.timeseries_files)
    title = row.experiment if row.cycle is None else f"{row.experiment} (cycle {row.cycle})"
    power = _series(samples, "power_w")
    temperature = _series(samples, "temperature_c")
    if not power and not temperature:
        why = row.energy_unavailable_reason or "the samplers read no power or temperature"
        return missing_figure(f"{title}\nNo power or temperature samples were recorded: {why}.")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for device, (ts, values) in sorted(power.items()):
        ax.plot(ts, values, label=f"power {device}", linewidth=1.2)
    ax.set_xlabel("time since the measured window started (s)")
    ax.set_ylabel("power (W)")
    if not power:
        ax.text(0.5, 0.5, "no power samples", transform=ax.transAxes, ha="center")
    start_sec, end_sec = _window(row, samples)
    if end_sec is not None:
        ax.axvspan(start_sec, end_sec, color="tab:green", alpha=0.12, label="measured window")
    lines, labels = ax.get_legend_handles_labels()
    if temperature:
        ax_t = ax.twinx()
        for device, (ts, values) in sorted(temperature.items()):
            ax_t.plot(ts, values, linestyle="--", linewidth=1.0, label=f"temp {device}")
        ax_t.set_ylabel("temperature (C)")
        more_lines, more_labels = ax_t.get_legend_handles_labels()
        lines, labels = lines + more_lines, labels + more_labels
    ax.legend(lines, labels, fontsize=7, loc="upper left")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    return fig


def figure_name(row: ExperimentRow, multi_cycle: bool) -> str:
    """File name of a row's time-series plot, unique within a campaign run."""
    if multi_cycle and row.cycle is not None:
        return f"{row.experiment}_cycle-{row.cycle}.png"
    return f"{row.experiment}.png"


def _series(
    samples: list[dict[str, Any]], column: str
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for sample in sorted(samples, key=lambda s: s["t_sec"]):
        value = sample.get(column)
        if value is None:
            continue
        device = f"{sample.get('device_id')} (rank {sample.get('rank')})"
        ts, values = out.setdefault(device, ([], []))
        ts.append(sample["t_sec"])
        values.append(value)
    return out


def _window(row: ExperimentRow, samples: list[dict[str, Any]]) -> tuple[float, float | None]:
    """The measured window on the time axis: [0, duration] as recorded in the result."""
    if row.window_sec is not None:
        return 0.0, row.window_sec
    inside = [s["t_sec"] for s in samples if s.get("in_window")]
    if inside:
        return min(inside), max(inside)
    return 0.0, None
