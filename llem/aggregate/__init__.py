"""Aggregation: an experiment's raw per-rank results into its result.json.

Four steps, one module each:

- :mod:`llem.aggregate.read`: reading the cycle folders (every rank's raw result, complete
  and marked done);
- :mod:`llem.aggregate.ranks` (energy in :mod:`llem.aggregate.energy`): one cycle's ranks
  into one :class:`~llem.domain.experiment.AggregatedResult`;
- :mod:`llem.aggregate.cycles`: repeated cycles into a
  :class:`~llem.domain.experiment.MultiCycleResult` with statistics;
- :mod:`llem.aggregate.experiment`: one experiment folder to its validated result.json.

The statistics themselves (Student-t quantile, log-scale interval of the mean) are in
:mod:`llem.stats`, shared with the report; they stay importable from here.
"""

from __future__ import annotations

from llem.aggregate.cycles import aggregate_cycles
from llem.aggregate.energy import CombinedEnergy, combine_energy, combine_phases
from llem.aggregate.experiment import aggregate_experiment, write_result
from llem.aggregate.ranks import (
    METHOD,
    aggregate_processes,
    combine_instrumentation,
    combine_throttle,
)
from llem.aggregate.read import read_cycle
from llem.stats import Summary, log_scale_interval, summarize, t_quantile_975

__all__ = [
    "METHOD", "CombinedEnergy", "Summary", "aggregate_cycles", "aggregate_experiment",
    "aggregate_processes", "combine_energy", "combine_instrumentation", "combine_phases",
    "combine_throttle", "log_scale_interval", "read_cycle", "summarize",
    "t_quantile_975", "write_result",
]
