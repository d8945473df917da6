"""Reading an experiment's cycle folders: every rank's raw result, complete and marked done."""

from __future__ import annotations

import re
from pathlib import Path

from llem.domain.experiment import RawProcessResult
from llem.errors import AggregationError

_CYCLE_DIR = re.compile(r"^cycle_(\d+)$")
_RAW_FILE = re.compile(r"^process_(\d+)\.json$")


def read_cycle(cycle_dir: Path, num_processes: int) -> list[RawProcessResult]:
    """Every rank's raw result of one cycle; each must exist and be marked done."""
    raw_dir = cycle_dir / "raw"
    found: dict[int, Path] = {}
    if raw_dir.is_dir():
        for path in raw_dir.iterdir():
            match = _RAW_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = path
    expected = set(range(num_processes))
    missing = sorted(expected - set(found))
    if missing:
        raise AggregationError(
            f"{raw_dir}: missing result of rank(s) {missing} (expected {num_processes} "
            "process result(s)); the measure job did not finish on every rank"
        )
    extra = sorted(set(found) - expected)
    if extra:
        raise AggregationError(
            f"{raw_dir}: result(s) of rank(s) {extra} beyond num_processes={num_processes}; "
            "stale files from an earlier run?"
        )
    results = []
    for rank in sorted(found):
        path = found[rank]
        if not path.with_suffix(".done").is_file():
            raise AggregationError(f"{path}: no completion marker (process_{rank}.done)")
        try:
            raw = RawProcessResult.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise AggregationError(f"{path}: not a readable v3 process result: {exc}") from exc
        if raw.process_index != rank:
            raise AggregationError(f"{path}: holds the result of rank {raw.process_index}")
        results.append(raw)
    return results


def cycle_dirs(exp_dir: Path) -> dict[int, Path]:
    """``cycle_<k>`` folders of an experiment, by k."""
    out: dict[int, Path] = {}
    if exp_dir.is_dir():
        for path in exp_dir.iterdir():
            match = _CYCLE_DIR.match(path.name)
            if match and path.is_dir():
                out[int(match.group(1))] = path
    return out

