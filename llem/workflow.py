"""What the Snakemake workflow needs from a campaign: experiment tables, spec files, paths.

The Snakefile stays free of logic: it hands its ``config`` to :func:`plan_campaign`, which
validates and expands the campaign (a bad config raises :class:`~llem.errors.ConfigError`
naming the file and the field, before any job starts), checks that the prompt files and
local model folders the experiments name are usable, and to :func:`sync_specs`, which writes
each experiment's resolved ``spec.json``. Input functions in ``workflow/rules/common.smk`` read
the resulting :class:`CampaignPlan`.

Spec files are written while the workflow is parsed, and only when their content changed.
Their modification time is then exactly as new as the experiment's config, so Snakemake's
ordinary freshness check re-runs the experiments whose config changed and no others.

Example:
    >>> plan = plan_campaign({"sweep": {"batching.batch_size": [1, 4]},
    ...                       "defaults": {"model_name": "m"}})      # doctest: +SKIP
    >>> [e.name for e in plan.experiments.values()]                 # doctest: +SKIP
    ['exp_batch_size-1', 'exp_batch_size-4']
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llem.config.campaign import (
    ExperimentSpec,
    check_config_files,
    expand_campaign,
    make_spec,
    parse_campaign,
    read_config_file,
)
from llem.config.models import ExperimentConfig
from llem.constants import DEFAULT_MODELS_DIR
from llem.devices import check_device_config, gpus_to_allocate
from llem.errors import ConfigError
from llem.inference.models import MODEL_RECORD, local_folder, model_key, model_key_spec
from llem.io import write_json_atomic

#: Regular expression every wildcard of the workflow is constrained to.
WILDCARD_PATTERN = "[A-Za-z0-9._-]+"

#: Top folders of the path grammar (relative to the workflow's working directory).
RESULTS_DIR = "results"
MODELS_DIR = DEFAULT_MODELS_DIR
MODEL_SPECS_DIR = "resources/model_specs"

#: File name of the campaign file ``llem run`` keeps beside a run's results.
CAMPAIGN_FILE = "campaign.yaml"

#: Names used beside the experiment folders of a run; experiments cannot take them.
RESERVED_EXPERIMENT_NAMES = frozenset({"report", "ingest.json", CAMPAIGN_FILE})


# --- path grammar -------------------------------------------------------------------------


def run_dir(campaign: str, run_id: str) -> str:
    """``results/<campaign>/<run_id>``: everything one run of a campaign produces."""
    return f"{RESULTS_DIR}/{campaign}/{run_id}"


def experiment_dir(campaign: str, run_id: str, exp: str) -> str:
    """``results/<campaign>/<run_id>/<exp>``."""
    return f"{run_dir(campaign, run_id)}/{exp}"


def spec_path(campaign: str, run_id: str, exp: str) -> str:
    """The resolved ExperimentSpec (config + hash) of one experiment."""
    return f"{experiment_dir(campaign, run_id, exp)}/spec.json"


def cycle_dir(campaign: str, run_id: str, exp: str, cycle: int) -> str:
    """Folder one measure job (one cycle) writes: warmup, raw process results, time series."""
    return f"{experiment_dir(campaign, run_id, exp)}/cycle_{cycle}"


def result_path(campaign: str, run_id: str, exp: str) -> str:
    """The aggregated, schema-validated result of one experiment."""
    return f"{experiment_dir(campaign, run_id, exp)}/result.json"


def receipt_path(campaign: str, run_id: str) -> str:
    """Receipt of the ingest into the store (the store itself is never a rule output)."""
    return f"{run_dir(campaign, run_id)}/ingest.json"


def report_dir(campaign: str, run_id: str) -> str:
    """Tables and plots of one campaign run, collected by ``snakemake --report``."""
    return f"{run_dir(campaign, run_id)}/report"


def campaign_file_path(campaign: str, run_id: str) -> str:
    """``results/<campaign>/<run_id>/campaign.yaml``: the campaign file ``llem run`` ran."""
    return f"{run_dir(campaign, run_id)}/{CAMPAIGN_FILE}"


def model_marker_path(key: str) -> str:
    """``resources/models/<model_key>/llem-model.json``, written by prepare-model."""
    return f"{MODELS_DIR}/{key}/{MODEL_RECORD}"


def model_spec_path(key: str) -> str:
    """``resources/model_specs/<model_key>.json``: what prepare-model reads for a model.

    Its content is fixed by the model key alone, so whichever campaign ran last, the
    prepare job's input is the same file with the same content, and a finished campaign's
    model (and with it every measurement) stays up to date.
    """
    return f"{MODEL_SPECS_DIR}/{key}.json"


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedExperiment:
    """One experiment of a campaign run, with what the rules need to schedule it."""

    spec: ExperimentSpec
    model_key: str

    @property
    def name(self) -> str:
        return self.spec.config.config_name

    @property
    def config(self) -> ExperimentConfig:
        return self.spec.config

    @property
    def num_cycles(self) -> int:
        return self.spec.config.num_cycles

    @property
    def gpu_count(self) -> int:
        """GPUs to allocate: exactly those the experiment uses (:mod:`llem.devices`).

        ``device: auto`` asks for one GPU per process: it takes a GPU where there is one.
        """
        return gpus_to_allocate(self.spec.config)


@dataclass(frozen=True)
class CampaignPlan:
    """A validated, expanded campaign run: the table the workflow's input functions read."""

    campaign: str
    run_id: str
    store: str
    experiments: dict[str, PlannedExperiment] = field(default_factory=dict)

    def experiment(self, campaign: str, run_id: str, exp: str) -> PlannedExperiment:
        """Look up an experiment by its path wildcards; a foreign one is a ConfigError."""
        if (campaign, run_id) != (self.campaign, self.run_id):
            raise ConfigError(
                f"{run_dir(campaign, run_id)} is not the configured campaign run "
                f"({run_dir(self.campaign, self.run_id)}); set campaign/run_id in the config"
            )
        try:
            return self.experiments[exp]
        except KeyError:
            raise ConfigError(
                f"experiment {exp!r} is not in campaign {self.campaign!r}"
            ) from None

    def spec_path(self, exp: str) -> str:
        return spec_path(self.campaign, self.run_id, exp)

    def cycle_dirs(self, exp: str) -> list[str]:
        planned = self.experiments[exp]
        return [cycle_dir(self.campaign, self.run_id, exp, k) for k in range(planned.num_cycles)]

    def result_paths(self) -> list[str]:
        return [result_path(self.campaign, self.run_id, name) for name in self.experiments]

    def receipt_path(self) -> str:
        return receipt_path(self.campaign, self.run_id)

    def report_dir(self) -> str:
        return report_dir(self.campaign, self.run_id)

    def model_keys(self) -> list[str]:
        """Distinct model keys, in campaign order."""
        return list(dict.fromkeys(p.model_key for p in self.experiments.values()))

    def model_spec_path(self, key: str) -> str:
        """Spec that prepare-model reads for a model: the per-model-key file.

        Not an experiment's spec: that would make the prepare job's input depend on which
        campaign ran last, and a campaign sharing the model would re-prepare it and
        re-measure every experiment of the other.
        """
        self.model_spec(key)
        return model_spec_path(key)

    def model_spec(self, key: str) -> dict[str, Any]:
        """The per-model-key spec document (only what the model key fixes)."""
        for planned in self.experiments.values():
            if planned.model_key == key:
                return model_key_spec(planned.config)
        raise ConfigError(f"no experiment of campaign {self.campaign!r} uses model {key!r}")


def plan_campaign(
    config: Mapping[str, Any], sources: Iterable[str | Path] = ()
) -> CampaignPlan:
    """Validate and expand a campaign mapping (Snakemake's ``config``) into a plan.

    ``sources`` names the config files the mapping came from, for error messages. Raises
    :class:`~llem.errors.ConfigError` with one line per problem, each naming file and field.
    """

    source = ", ".join(str(s) for s in sources) or "<config>"
    campaign = parse_campaign(dict(config), source=source)
    experiments = expand_campaign(campaign, source=source)
    planned: dict[str, PlannedExperiment] = {}
    for exp in experiments:
        if exp.config_name in RESERVED_EXPERIMENT_NAMES:
            raise ConfigError(
                f"{source}: experiment name {exp.config_name!r} is reserved for the run's "
                f"{exp.config_name} output; choose another config_name"
            )
        check_device_config(exp, source)
        spec = make_spec(exp, campaign.campaign, campaign.run_id)
        planned[exp.config_name] = PlannedExperiment(spec=spec, model_key=model_key(exp))
    check_inputs(experiments, source)
    return CampaignPlan(
        campaign=campaign.campaign,
        run_id=campaign.run_id,
        store=campaign.store,
        experiments=planned,
    )


def plan_campaign_file(path: str | Path) -> CampaignPlan:
    """:func:`plan_campaign` of a YAML/JSON campaign file."""
    return plan_campaign(read_config_file(path), sources=[str(path)])


def plan_workflow(config: Mapping[str, Any], configfiles: Iterable[str | Path]) -> CampaignPlan:
    """:func:`plan_campaign` of the Snakefile's ``config``, its files read strictly first.

    Snakemake's own reader lets a repeated key win silently; each file is read again with
    llem's (:func:`~llem.config.campaign.read_config_file`), so a repeated key, a YAML-alias
    bomb or a non-mapping stops the workflow with the file's name and line. The values
    validated are Snakemake's ``config``, which includes ``--config`` overrides.
    """
    files = [str(f) for f in configfiles]
    if not files:
        raise ConfigError(
            "no campaign config: pass --configfile FILE (the profiles in profiles/ name "
            "config/config.yaml as the default campaign)"
        )
    check_config_files(files)
    return plan_campaign(config, sources=files)


def check_inputs(experiments: Iterable[ExperimentConfig], source: str) -> None:
    """Refuse, at plan time, inputs that `llem measure` would only refuse after its baseline.

    A ``jsonl`` prompts file must be a readable file (paths are relative to the working
    directory, where the jobs run). A model named by a local folder whose ``config.json``
    maps an architecture transformers does not ship to the folder's own code (``auto_map``)
    needs ``trust_remote_code: true``. A model name that is a path (starts with ``/`` or
    ``.``) must be an existing folder. Hub ids are not looked up: that needs the network.
    """
    seen_files: dict[str, str | None] = {}
    seen_models: dict[str, str | None] = {}
    for exp in experiments:
        where = f"{source}: experiment {exp.config_name}"
        prompts = exp.prompts
        if prompts.source == "jsonl" and prompts.path is not None:
            if prompts.path not in seen_files:
                seen_files[prompts.path] = _unreadable_file(Path(prompts.path))
            problem = seen_files[prompts.path]
            if problem:
                raise ConfigError(f"{where}: prompts.path: {problem}: {prompts.path!r}")
        key = f"{exp.model_name}\0{exp.trust_remote_code}"
        if key not in seen_models:
            seen_models[key] = _model_problem(exp)
        if seen_models[key]:
            raise ConfigError(f"{where}: {seen_models[key]}")


def _unreadable_file(path: Path) -> str | None:
    if not path.exists():
        return "no such file"
    if not path.is_file():
        return "not a file"
    if not os.access(path, os.R_OK):
        return "file not readable"
    return None


def _model_problem(exp: ExperimentConfig) -> str | None:
    """Why the experiment's local model folder cannot be used as configured, or None."""
    folder = local_folder(exp.model_name)
    if folder is None:
        if exp.model_name.startswith(("/", ".")):
            return f"model_name: no such model folder: {exp.model_name!r}"
        return None
    if exp.trust_remote_code:
        return None
    try:
        with (folder / "config.json").open(encoding="utf-8") as handle:
            model_config = json.load(handle)
    except FileNotFoundError:
        return None  # no config: prepare_model or measure says what is missing
    except (OSError, ValueError) as exc:
        return f"model_name: cannot read {folder / 'config.json'}: {exc}"
    if not isinstance(model_config, dict) or not isinstance(model_config.get("auto_map"), dict):
        return None
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    model_type = model_config.get("model_type")
    if model_type in CONFIG_MAPPING_NAMES:
        return None  # transformers ships this architecture; auto_map is not used
    return (
        f"trust_remote_code: model folder {str(folder)!r} needs its own code (config.json "
        f"maps model_type {model_type!r}, which transformers does not ship, to it via "
        "auto_map); set trust_remote_code: true if you trust that code"
    )


def sync_specs(plan: CampaignPlan, root: str | Path = ".") -> list[str]:
    """Write every experiment's ``spec.json`` and every model's per-key spec whose content
    differs; returns those written.

    An unchanged spec is left alone so its modification time, and with it everything
    downstream, stays as it is. Writes are atomic, so concurrent parses (cluster jobs parse
    the workflow too) never see a half-written spec; they skip fsync, which would dominate
    planning a large sweep, because a spec is derived and rewritten whenever it differs.
    """
    root = Path(root)
    wanted = [(plan.spec_path(name), planned.spec.to_document())
              for name, planned in plan.experiments.items()]
    wanted += [(model_spec_path(key), plan.model_spec(key)) for key in plan.model_keys()]
    written: list[str] = []
    for rel, document in wanted:
        path = root / rel
        if _json_file_equals(path, document):
            continue
        write_json_atomic(path, document, durable=False)
        written.append(rel)
    return written


#: Net allocations between two young-generation garbage collections in the Snakemake process.
GC_GEN0_THRESHOLD = 50_000


def relax_garbage_collection() -> None:
    """Run Python's cyclic garbage collector less often in the Snakemake process.

    Building the DAG allocates many objects per job and frees few of them, so the default
    trigger (a collection every 700 net allocations, and a full one every 100 of those)
    keeps scanning a growing heap that holds no garbage: about a tenth of a
    1,000-experiment ``snakemake -n`` (benchmarks/bench_dag.py). Cycles are still collected,
    only in larger batches; nothing outside this process changes.
    """
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), gen1, gen2)


def put_interpreter_first_on_path() -> None:
    """Make ``python`` in job shells the interpreter running the workflow.

    Rules call ``python -m llem``; without this, a workflow started as
    ``.venv/bin/snakemake`` from an unactivated shell would run its jobs with whatever
    ``python`` comes first on PATH, which may not have llem at all.
    """
    bin_dir = os.path.dirname(sys.executable)
    entries = os.environ.get("PATH", "").split(os.pathsep)
    if entries and entries[0] == bin_dir:
        return
    os.environ["PATH"] = os.pathsep.join([bin_dir, *entries])


def _json_file_equals(path: Path, document: Any) -> bool:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle) == document
    except (OSError, ValueError):
        return False
