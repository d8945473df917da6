"""What one rank of a measured run writes into its cycle folder, in the order that makes it safe.

Files (names from :mod:`llem.layout`; ``cycle`` is one cycle's folder)::

    warmup.json                        rank 0's WarmupResult (written before the window)
    timeseries/process_<rank>.parquet  when timeseries.enabled and timeseries.save
    raw/process_<rank>.json            RawProcessResult (schema v3)
    raw/process_<rank>.done            written last: this rank finished

A raw result's ``timeseries_path`` is relative to the folder of the raw file
(``../timeseries/process_<rank>.parquet``). Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

from llem.config.models import TimeSeriesConfig
from llem.domain.experiment import RawProcessResult
from llem.domain.metrics import WarmupResult
from llem.io import write_json_atomic, write_text_atomic
from llem.layout import (
    done_marker_path,
    raw_result_path,
    timeseries_file_path,
    timeseries_ref,
    warmup_path,
)
from llem.measure.orphan import stop_if_orphaned
from llem.measure.window import WindowResult


def write_warmup(cycle: Path, warmup: WarmupResult) -> None:
    """Rank 0's warmup result (``warmup.json``)."""
    write_json_atomic(warmup_path(cycle), warmup.model_dump(mode="json"))


def write_rank_outputs(
    cycle: Path,
    rank: int,
    timeseries: TimeSeriesConfig,
    raw: RawProcessResult,
    window: WindowResult,
) -> None:
    """Time series, then the raw result, then the completion marker (last).

    Sets ``raw.timeseries_path`` when the time series is saved.
    """
    stop_if_orphaned()  # an orphan exits here: nothing of it looks complete
    if timeseries.enabled and timeseries.save:
        from llem.measure.timeseries import write_timeseries  # pyarrow: only when saving

        write_timeseries(window, timeseries_file_path(cycle, rank), rank)
        raw.timeseries_path = timeseries_ref(rank)
    write_json_atomic(raw_result_path(cycle, rank), raw.model_dump(mode="json"))
    write_text_atomic(done_marker_path(cycle, rank), "done\n")
