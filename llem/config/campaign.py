"""Load a campaign file, expand it into named experiments, and hash resolved configs.

A campaign's ``defaults`` are deep-merged under each listed experiment; each experiment is
then expanded over the ``sweep`` grid. Swept experiments are named
``<base>_<key>-<value>[_<key>-<value>...]`` so every name is safe as a file name and a
Snakemake wildcard. Every error names the file and the field.

Files are read strictly: UTF-8 only, a duplicate key is an error (naming key and line), and
a document that YAML aliases blow up (too many values or too deep) is refused before it is
used. A campaign's size is computed from the sweep's list lengths before it is expanded.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llem.config.models import CampaignConfig, ExperimentConfig
from llem.errors import ConfigError
from llem.store_address import StoreAddressError

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9.-]+")

#: Most values (mappings, lists and scalars, each alias counted as often as it is used) and
#: deepest nesting a config document may have; a real campaign is far below both.
MAX_CONFIG_VALUES = 1_000_000
MAX_CONFIG_DEPTH = 32

#: Values quoted in error messages are cut short, whatever their size.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60
_SHORT_REPR.maxlevel = 2


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: Any, line: int, first_line: int) -> None:
        super().__init__(f"line {line}: duplicate key {key!r} (first given on line {first_line})")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping is an error."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first_line: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *anchor` merges; the mapping's own keys override it
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    seen = first_line.get(key)
                except TypeError:
                    continue  # an unhashable key; the base loader reports it
                if seen is not None:
                    raise _DuplicateKeyError(key, line, seen)
                first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON mapping strictly; every problem is a one-line ConfigError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
            f"{exc.start}); save the file as UTF-8"
        ) from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader: builds plain data only
    except _DuplicateKeyError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config file") from None
    if data is None:
        raise ConfigError(f"{path}: the file is empty; a config file holds a mapping of keys")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, not {type(data).__name__}")
    check_config_size(data, str(path))
    return data


def check_config_size(data: Any, source: str) -> None:
    """Refuse a document with more than MAX_CONFIG_VALUES values or deeper than MAX_CONFIG_DEPTH.

    YAML aliases let a small file name one list many times; each use is counted, without
    expanding anything, so a file that would expand to billions of values fails at once.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values, height), of finished containers
    open_ids: set[int] = set()

    def visit(value: Any, depth: int) -> tuple[int, int]:
        if not isinstance(value, dict | list):
            return 1, 0
        key = id(value)
        if key in sizes:
            count, height = sizes[key]
        else:
            if key in open_ids:
                raise ConfigError(f"{source}: a YAML alias refers to itself (a loop)")
            if depth >= MAX_CONFIG_DEPTH:
                raise ConfigError(f"{source}: nested deeper than {MAX_CONFIG_DEPTH} levels")
            open_ids.add(key)
            is_mapping = isinstance(value, dict)
            children = list(value.values()) if is_mapping else value
            count = 1 + (len(value) if is_mapping else 0)  # the container and its keys
            height = 0
            for child in children:
                child_count, child_height = visit(child, depth + 1)
                count += child_count
                height = max(height, child_height + 1)
                if count > MAX_CONFIG_VALUES:
                    raise ConfigError(
                        f"{source}: holds more than {MAX_CONFIG_VALUES:,} values (YAML "
                        "aliases count once per use); a campaign is far smaller"
                    )
            open_ids.discard(key)
            sizes[key] = (count, height)
        if depth + height > MAX_CONFIG_DEPTH:
            raise ConfigError(f"{source}: nested deeper than {MAX_CONFIG_DEPTH} levels")
        return count, height

    visit(data, 0)


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Read each config file strictly, for its errors only (Snakemake parsed it leniently)."""
    for path in paths:
        read_config_file(path)


def load_campaign(path: str | Path) -> CampaignConfig:
    """Read and validate a campaign file."""
    return parse_campaign(read_config_file(path), source=str(path))


def parse_campaign(data: dict[str, Any], source: str = "<config>") -> CampaignConfig:
    """Validate a campaign mapping (e.g. Snakemake's ``config``)."""
    check_config_size(data, source)
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def campaign_size(campaign: CampaignConfig) -> int:
    """Experiments the campaign expands to, from list lengths alone (nothing is expanded)."""
    bases = len(campaign.experiments) or 1
    return bases * math.prod(len(values) for values in campaign.sweep.values())


def expand_campaign(campaign: CampaignConfig, source: str = "<config>") -> list[ExperimentConfig]:
    """Resolve every experiment of a campaign; names are unique and safe."""
    size = campaign_size(campaign)
    if size > campaign.max_experiments:
        grid = " x ".join(str(len(v)) for v in campaign.sweep.values()) or "1"
        raise ConfigError(
            f"{source}: max_experiments: the campaign expands to {size:,} experiments "
            f"({len(campaign.experiments) or 1} x sweep grid {grid}), more than "
            f"max_experiments ({campaign.max_experiments:,}); shrink the sweep or raise "
            "max_experiments"
        )
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
        # A store address is not echoed: it may hold a password (which is what is wrong).
        quiet = isinstance(err.get("ctx", {}).get("error"), StoreAddressError)
        got_text = ("" if quiet or err.get("type") in ("missing", "extra_forbidden")
                    else f" (got {_SHORT_REPR.repr(got)})")
        if len(got_text) > 80:
            got_text = got_text[:76] + "...)"
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


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``line N, column M: not valid YAML: <problem>`` from a PyYAML error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return f"not valid YAML: {_one_line(str(exc))}"
    context = getattr(exc, "context", None)
    detail = f"{context}, {problem}" if context else problem
    return f"line {mark.line + 1}, column {mark.column + 1}: not valid YAML: {_one_line(detail)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
