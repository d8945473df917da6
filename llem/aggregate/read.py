"""Reading an experiment's cycle folders: every rank's raw result, complete and marked done."""

from __future__ import annotations

from pathlib import Path

from llem.domain.experiment import RawProcessResult
from llem.errors import AggregationError
from llem.layout import done_marker_of, raw_dir, raw_results


def read_cycle(cycle_dir: Path, num_processes: int) -> list[RawProcessResult]:
    """Every rank's raw result of one cycle; each must exist and be marked done."""
    folder = raw_dir(cycle_dir)
    found = raw_results(cycle_dir)
    expected = set(range(num_processes))
    missing = sorted(expected - set(found))
    if missing:
        raise AggregationError(
            f"{folder}: missing result of rank(s) {missing} (expected {num_processes} "
            "process result(s)); the measure job did not finish on every rank"
        )
    extra = sorted(set(found) - expected)
    if extra:
        raise AggregationError(
            f"{folder}: result(s) of rank(s) {extra} beyond num_processes={num_processes}; "
            "stale files from an earlier run?"
        )
    results = []
    for rank in sorted(found):
        path = found[rank]
        marker = done_marker_of(path)
        if not marker.is_file():
            raise AggregationError(f"{path}: no completion marker ({marker.name})")
        try:
            raw = RawProcessResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AggregationError(f"{path}: not a readable v3 process result: {exc}") from exc
        if raw.process_index != rank:
            raise AggregationError(f"{path}: holds the result of rank {raw.process_index}")
        results.append(raw)
    return results


