"""One experiment folder to its result.json: read every cycle, combine, validate, write."""

from __future__ import annotations

import json
from pathlib import Path

from llem.aggregate.cycles import aggregate_cycles
from llem.aggregate.ranks import aggregate_processes
from llem.aggregate.read import read_cycle
from llem.config.campaign import ExperimentSpec
from llem.domain.experiment import AggregatedResult, MultiCycleResult
from llem.errors import AggregationError, SchemaValidationError
from llem.io import write_json_atomic
from llem.layout import cycle_folders


def aggregate_experiment(
    spec: ExperimentSpec, exp_dir: Path
) -> AggregatedResult | MultiCycleResult:
    """The experiment's result: one cycle -> AggregatedResult, several -> MultiCycleResult."""
    cfg = spec.config
    dirs = cycle_folders(exp_dir)
    missing = sorted(set(range(cfg.num_cycles)) - set(dirs))
    if missing:
        raise AggregationError(
            f"{exp_dir}: missing cycle folder(s) {[f'cycle_{k}' for k in missing]} "
            f"(num_cycles={cfg.num_cycles})"
        )
    cycles = []
    for k in range(cfg.num_cycles):
        raws = read_cycle(dirs[k], cfg.num_processes)
        cycles.append(aggregate_processes(raws, spec, base_dir=exp_dir, cycle_dir=dirs[k]))
    if cfg.num_cycles == 1:
        return cycles[0]
    return aggregate_cycles(cycles, spec)


def write_result(result: AggregatedResult | MultiCycleResult, out: Path) -> None:
    """Validate against the JSON Schema, then write atomically."""
    from llem.results.schema import validate_document

    fmt = "v3_multi_cycle" if isinstance(result, MultiCycleResult) else "v3_aggregated"
    document = json.loads(result.model_dump_json())
    problems = validate_document(document, fmt)
    if problems:
        shown = "\n".join(problems[:10])
        raise SchemaValidationError(f"{out}: result does not match the {fmt} schema:\n{shown}")
    write_json_atomic(out, document)

