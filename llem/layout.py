"""The path grammar: every file and folder name a campaign run writes, each written once here.

Two forms of the same names:

- **patterns** (upper case) with Snakemake ``{wildcard}`` placeholders, for the rules in
  ``workflow/rules/*.smk``: ``CYCLE == "results/{campaign}/{run_id}/{exp}/cycle_{cycle}"``;
- **functions** that fill a pattern in, or name what lies inside one cycle folder, for the
  Python side (:mod:`llem.workflow`, :mod:`llem.measure`, aggregation).

The tree, relative to the workflow's working directory::

    resources/model_specs/<model_key>.json        MODEL_SPEC   what prepare-model reads
    resources/models/<model_key>/llem-model.json  MODEL_MARKER written last by prepare-model
    results/<campaign>/<run_id>/                  RUN
        ingest.json                               RECEIPT      the store ingest's receipt
        report/                                   REPORT       tables and plots
        <exp>/                                    EXPERIMENT
            spec.json  environment.json  baseline.json  result.json
            cycle_<k>/                            CYCLE        one measure job
                warmup.json                       rank 0's warmup
                raw/process_<rank>.json           raw result of one rank
                raw/process_<rank>.done           written last: the rank finished
                timeseries/process_<rank>.parquet the rank's samples (when saved)
    logs/<step>/<subject>.log                     log(step, subject)
    benchmarks/<step>/<subject>.tsv               benchmark(step, subject)

This is a bottom-layer module: it imports nothing of llem but :mod:`llem.constants`.
"""

from __future__ import annotations

import re
from pathlib import Path

from llem.constants import DEFAULT_MODELS_DIR

#: Regular expression every wildcard of the workflow is constrained to.
WILDCARD_PATTERN = "[A-Za-z0-9._-]+"
#: The ``{cycle}`` wildcard: a cycle index.
CYCLE_WILDCARD_PATTERN = "[0-9]+"

# --- names -------------------------------------------------------------------------------

RESULTS_DIR = "results"
MODELS_DIR = DEFAULT_MODELS_DIR
MODEL_SPECS_DIR = "resources/model_specs"
LOGS_DIR = "logs"
BENCHMARKS_DIR = "benchmarks"

#: File written last into a prepared model folder; its presence means "prepared".
MODEL_RECORD = "llem-model.json"

SPEC_FILE = "spec.json"
ENVIRONMENT_FILE = "environment.json"
BASELINE_FILE = "baseline.json"
RESULT_FILE = "result.json"
RECEIPT_FILE = "ingest.json"
REPORT_DIR_NAME = "report"
CAMPAIGN_FILE = "campaign.yaml"  # the campaign file `llem run` keeps beside a run's results
WARMUP_FILE = "warmup.json"
RAW_DIR_NAME = "raw"
TIMESERIES_DIR_NAME = "timeseries"

#: Names used beside the experiment folders of a run; experiments cannot take them.
RESERVED_EXPERIMENT_NAMES = frozenset({REPORT_DIR_NAME, RECEIPT_FILE, CAMPAIGN_FILE})

_CYCLE_NAME = "cycle_{cycle}"
_PROCESS_NAME = "process_{rank}"
_CYCLE_DIR_RE = re.compile(r"^cycle_(\d+)$")
_RAW_FILE_RE = re.compile(r"^process_(\d+)\.json$")

# --- patterns for the rules ----------------------------------------------------------------

RUN = f"{RESULTS_DIR}/{{campaign}}/{{run_id}}"
EXPERIMENT = f"{RUN}/{{exp}}"
SPEC = f"{EXPERIMENT}/{SPEC_FILE}"
ENVIRONMENT = f"{EXPERIMENT}/{ENVIRONMENT_FILE}"
BASELINE = f"{EXPERIMENT}/{BASELINE_FILE}"
RESULT = f"{EXPERIMENT}/{RESULT_FILE}"
CYCLE = f"{EXPERIMENT}/{_CYCLE_NAME}"
RECEIPT = f"{RUN}/{RECEIPT_FILE}"
REPORT = f"{RUN}/{REPORT_DIR_NAME}"
REPORT_TABLE = f"{REPORT}/experiments.html"
REPORT_TABLE_CSV = f"{REPORT}/experiments.csv"
REPORT_PERFORMANCE_PLOT = f"{REPORT}/throughput_latency_vs_batch_size.png"
REPORT_ENERGY_PER_TOKEN_PLOT = f"{REPORT}/energy_per_token_vs_batch_size.png"
REPORT_TRADEOFF_PLOT = f"{REPORT}/energy_vs_throughput.png"
REPORT_TIMESERIES = f"{REPORT}/timeseries"
MODEL_SPEC = f"{MODEL_SPECS_DIR}/{{model_key}}.json"
MODEL_MARKER = f"{MODELS_DIR}/{{model_key}}/{MODEL_RECORD}"

#: Subjects of logs and benchmarks: what one job of a step is about.
RUN_SUBJECT = "{campaign}/{run_id}"
EXPERIMENT_SUBJECT = "{campaign}/{run_id}/{exp}"
CYCLE_SUBJECT = f"{EXPERIMENT_SUBJECT}/{_CYCLE_NAME}"
MODEL_SUBJECT = "{model_key}"


def log(step: str, subject: str) -> str:
    """``logs/<step>/<subject>.log``: where a job of ``step`` writes its log."""
    return f"{LOGS_DIR}/{step}/{subject}.log"


def benchmark(step: str, subject: str) -> str:
    """``benchmarks/<step>/<subject>.tsv``: a job's run time and memory (Snakemake's)."""
    return f"{BENCHMARKS_DIR}/{step}/{subject}.tsv"


# --- run-level paths (strings, relative to the working directory) --------------------------


def run_dir(campaign: str, run_id: str) -> str:
    """``results/<campaign>/<run_id>``: everything one run of a campaign produces."""
    return RUN.format(campaign=campaign, run_id=run_id)


def experiment_dir(campaign: str, run_id: str, exp: str) -> str:
    """``results/<campaign>/<run_id>/<exp>``."""
    return EXPERIMENT.format(campaign=campaign, run_id=run_id, exp=exp)


def spec_path(campaign: str, run_id: str, exp: str) -> str:
    """The resolved ExperimentSpec (config + hash) of one experiment."""
    return SPEC.format(campaign=campaign, run_id=run_id, exp=exp)


def cycle_dir(campaign: str, run_id: str, exp: str, cycle: int) -> str:
    """Folder one measure job (one cycle) writes: warmup, raw process results, time series."""
    return CYCLE.format(campaign=campaign, run_id=run_id, exp=exp, cycle=cycle)


def result_path(campaign: str, run_id: str, exp: str) -> str:
    """The aggregated, schema-validated result of one experiment."""
    return RESULT.format(campaign=campaign, run_id=run_id, exp=exp)


def receipt_path(campaign: str, run_id: str) -> str:
    """Receipt of the ingest into the store (the store itself is never a rule output)."""
    return RECEIPT.format(campaign=campaign, run_id=run_id)


def campaign_file_path(campaign: str, run_id: str) -> str:
    """``results/<campaign>/<run_id>/campaign.yaml``: the campaign file ``llem run`` ran."""
    return f"{run_dir(campaign, run_id)}/{CAMPAIGN_FILE}"


def report_dir(campaign: str, run_id: str) -> str:
    """Tables and plots of one campaign run, collected by ``snakemake --report``."""
    return REPORT.format(campaign=campaign, run_id=run_id)


def report_table_path(campaign: str, run_id: str) -> str:
    """The report's experiments table (HTML): the workflow's final target beside the receipt."""
    return REPORT_TABLE.format(campaign=campaign, run_id=run_id)


def model_marker_path(key: str) -> str:
    """``resources/models/<model_key>/llem-model.json``, written by prepare-model."""
    return MODEL_MARKER.format(model_key=key)


def model_spec_path(key: str) -> str:
    """``resources/model_specs/<model_key>.json``: what prepare-model reads for a model.

    Its content is fixed by the model key alone, so whichever campaign ran last, the
    prepare job's input is the same file with the same content, and a finished campaign's
    model (and with it every measurement) stays up to date.
    """
    return MODEL_SPEC.format(model_key=key)


# --- inside an experiment folder and a cycle folder (Paths) --------------------------------


def cycle_folders(exp_dir: Path) -> dict[int, Path]:
    """The ``cycle_<k>`` folders an experiment folder holds, by k."""
    out: dict[int, Path] = {}
    if exp_dir.is_dir():
        for path in exp_dir.iterdir():
            match = _CYCLE_DIR_RE.match(path.name)
            if match and path.is_dir():
                out[int(match.group(1))] = path
    return out


def cycle_folder_name(cycle: int) -> str:
    """``cycle_<k>``."""
    return _CYCLE_NAME.format(cycle=cycle)


def warmup_path(cycle: Path) -> Path:
    """``<cycle>/warmup.json``: rank 0's warmup result."""
    return cycle / WARMUP_FILE


def raw_dir(cycle: Path) -> Path:
    """``<cycle>/raw``: every rank's raw result and completion marker."""
    return cycle / RAW_DIR_NAME


def raw_result_path(cycle: Path, rank: int) -> Path:
    """``<cycle>/raw/process_<rank>.json``."""
    return raw_dir(cycle) / f"{_PROCESS_NAME.format(rank=rank)}.json"


def done_marker_path(cycle: Path, rank: int) -> Path:
    """``<cycle>/raw/process_<rank>.done``, written last: this rank finished."""
    return raw_dir(cycle) / f"{_PROCESS_NAME.format(rank=rank)}.done"


def done_marker_of(raw_result: Path) -> Path:
    """The completion marker beside a raw result file."""
    return raw_result.with_suffix(".done")


def raw_results(cycle: Path) -> dict[int, Path]:
    """The raw result files a cycle folder holds, by rank (done or not)."""
    folder = raw_dir(cycle)
    found: dict[int, Path] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _RAW_FILE_RE.match(path.name)
            if match:
                found[int(match.group(1))] = path
    return found


def timeseries_file_path(cycle: Path, rank: int) -> Path:
    """``<cycle>/timeseries/process_<rank>.parquet``."""
    return cycle / TIMESERIES_DIR_NAME / f"{_PROCESS_NAME.format(rank=rank)}.parquet"


def timeseries_ref(rank: int) -> str:
    """The time series as a raw result names it: relative to the raw result's folder."""
    return f"../{TIMESERIES_DIR_NAME}/{_PROCESS_NAME.format(rank=rank)}.parquet"
