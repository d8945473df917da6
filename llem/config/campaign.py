"""Load a campaign file, expand it into named experiments, and hash resolved configs.

A campaign's ``defaults`` are deep-merged under each listed experiment; each experiment is
then expanded over the ``sweep`` grid. Swept experiments are named
``<base>_<key>-<value>[_<key>-<value>...]`` so every name is safe as a file name and a
Snakemake wildcard. Every error names the file and the field.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llem.config.models import CampaignConfig, ExperimentConfig
from llem.errors import ConfigError

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping; a missing, unreadable or non-mapping file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(str(exc))}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, not {type(data).__name__}")
    return data


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign file."""
    return parse_campaign(read_config_file(path), source=str(path))


def parse_campaign(data: dict[str, Any], source: str = "<config>") -> CampaignConfig:
    """Validate a campaign mapping (e.g. Snakemake's ``config``)."""
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def expand_campaign(campaign: CampaignConfig, source: str = "<config>") -> list[ExperimentConfig]:
    """Resolve every experiment of a campaign; names are unique and safe."""
    bases: list[tuple[str, dict[str, Any]]] = []
    if campaign.experiments:
        for i, fragment in enumerate(campaign.experiments):
            if "config_name" not in fragment:
                raise ConfigError(f"{source}: experiments[{i}].config_name: field required")
            merged = deep_merge(campaign.defaults, fragment)
            bases.append((f"experiments[{i}]", merged))
    else:
        if "config_name" in campaign.defaults:
            raise ConfigError(
                f"{source}: defaults.config_name: not allowed; name experiments in "
                "'experiments' or use 'sweep_name'"
            )
        bases.append(("defaults", {**copy.deepcopy(campaign.defaults),
                                   "config_name": campaign.sweep_name}))

    grid_keys = list(campaign.sweep)
    combos = list(itertools.product(*(campaign.sweep[k] for k in grid_keys))) or [()]
    experiments: list[ExperimentConfig] = []
    seen: dict[str, str] = {}
    for where, base in bases:
        for combo in combos:
            data = copy.deepcopy(base)
            suffix: list[str] = []
            chosen = dict(zip(grid_keys, combo, strict=True))
            for key, value in chosen.items():
                _set_dotted(data, key, value, source=source)
                suffix.append(f"{key.split('.')[-1]}-{_name_part(value)}")
            if suffix:
                data["config_name"] = "_".join([str(data["config_name"]), *suffix])
            label = where if not suffix else f"{where} with sweep {chosen}"
            exp = parse_experiment(data, source=f"{source}: {label}")
            if exp.config_name in seen:
                raise ConfigError(
                    f"{source}: experiment name {exp.config_name!r} is used twice "
                    f"({seen[exp.config_name]} and {label})"
                )
            seen[exp.config_name] = label
            experiments.append(exp)
    return experiments


def parse_experiment(data: dict[str, Any], source: str = "<config>") -> ExperimentConfig:
    """Validate one experiment mapping."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def config_hash(experiment: ExperimentConfig) -> str:
    """Hash of everything that affects a measurement (the name does not), 16 hex digits."""
    payload = experiment.model_dump(mode="json", exclude={"config_name"})
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ExperimentSpec:
    """A resolved experiment as the workflow hands it from step to step."""

    config: ExperimentConfig
    config_hash: str
    campaign: str | None = None
    run_id: str | None = None

    @property
    def experiment_id(self) -> str:
        """``<campaign>/<run_id>/<config_name>``, or the bare name outside a campaign."""
        parts = [p for p in (self.campaign, self.run_id) if p]
        return "/".join([*parts, self.config.config_name])

    def to_document(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "campaign": self.campaign,
            "run_id": self.run_id,
            "config_hash": self.config_hash,
            "config": self.config.model_dump(mode="json"),
        }


def make_spec(
    experiment: ExperimentConfig, campaign: str | None = None, run_id: str | None = None
) -> ExperimentSpec:
    """Bundle a resolved experiment with its hash and campaign context."""
    return ExperimentSpec(experiment, config_hash(experiment), campaign, run_id)


def write_experiment_spec(spec: ExperimentSpec, path: str | Path) -> None:
    """Write the resolved spec with its hash (atomically), for later steps to read."""
    from llem.io import write_json_atomic

    write_json_atomic(path, spec.to_document())


def read_experiment_spec(path: str | Path) -> ExperimentSpec:
    """Read a spec written by :func:`write_experiment_spec` (or a bare experiment mapping)."""
    data = read_config_file(path)
    if "config" not in data:
        exp = parse_experiment(data, source=str(path))
        return make_spec(exp)
    if not isinstance(data["config"], dict):
        raise ConfigError(f"{path}: config: must be a mapping")
    exp = parse_experiment(data["config"], source=f"{path}: config")
    spec = make_spec(exp, data.get("campaign"), data.get("run_id"))
    recorded = data.get("config_hash")
    if recorded is not None and recorded != spec.config_hash:
        raise ConfigError(
            f"{path}: config_hash {recorded} does not match its config ({spec.config_hash}); "
            "the spec was edited by hand: regenerate it"
        )
    return spec


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in; nested mappings merge, the rest replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``<source>: <field.path>: <reason> (got <value>)``."""
    lines = []
    for err in exc.errors():
        loc = _format_loc(err.get("loc", ()))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key (not a config field)"
        got = err.get("input")
        got_text = "" if err.get("type") in ("missing", "extra_forbidden") else f" (got {got!r})"
        if len(got_text) > 80:
            got_text = got_text[:77] + "...)"
        lines.append(f"{source}: {loc or '<top level>'}: {msg}{got_text}")
    return "\n".join(lines)


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: sweep.{dotted}: {part!r} is not a section")
        node = child
    node[parts[-1]] = copy.deepcopy(value)


def _name_part(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    text = _UNSAFE_CHARS.sub("-", text).strip("-.")
    return text or "x"


def _one_line(text: str) -> str:
    return " ".join(text.split())
