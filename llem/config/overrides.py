"""``KEY=VALUE`` overrides of a campaign mapping (``llem run --set``).

A key is a dotted path into the campaign file: ``defaults.energy.backend``, ``run_id``,
``experiments.0.batching.batch_size``. Under ``sweep`` the rest of the key is one sweep key,
itself dotted (``sweep.batching.batch_size`` sets ``sweep["batching.batch_size"]``). Values
are read as YAML (``4``, ``0.5``, ``true``, ``estimate``, ``[1, 4]``), so they get the types a
campaign file would give them. Nothing here knows which keys exist: the campaign's own
validation refuses an unknown key or a bad value afterwards, naming the field.

Example:
    >>> data = {"defaults": {"model_name": "m"}}
    >>> apply_override(data, *parse_override("defaults.energy.min_window_sec=0.5"))
    >>> apply_override(data, *parse_override("sweep.batching.batch_size=[1,4]"))
    >>> data["defaults"]["energy"], data["sweep"]
    ({'min_window_sec': 0.5}, {'batching.batch_size': [1, 4]})
"""

from __future__ import annotations

import copy
import re
from typing import Any

import yaml

from llem.config.campaign import check_config_size
from llem.errors import ConfigError

_KEY_PART = re.compile(r"^[A-Za-z0-9_-]+$")
#: Longest ``--set`` text accepted; a real override is a few dozen characters.
MAX_OVERRIDE_CHARS = 10_000


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` -> (key, value read as YAML); a malformed one is a one-line ConfigError."""
    shown = text if len(text) <= 80 else text[:77] + "..."
    if len(text) > MAX_OVERRIDE_CHARS:
        raise ConfigError(f"--set {shown!r}: longer than {MAX_OVERRIDE_CHARS} characters")
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {shown!r}: expected KEY=VALUE (e.g. "
                          "defaults.energy.backend=estimate)")
    parts = key.split(".")
    if not all(_KEY_PART.fullmatch(p) for p in parts):
        raise ConfigError(f"--set {key!r}: a key is dotted names of letters, digits, '_' and "
                          "'-' (e.g. defaults.decoder.max_output_tokens)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML: {problem}") from None
    check_config_size(value, f"--set {key}")
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` (dotted, see the module doc) in ``data`` to ``value``, in place.

    Missing sections are created; a part that is neither a mapping nor a list index of an
    existing list is refused, naming it.
    """
    parts = key.split(".")
    if parts[0] == "sweep" and len(parts) > 1:
        sweep = data.setdefault("sweep", {})
        if not isinstance(sweep, dict):
            raise ConfigError(f"--set {key}: 'sweep' is not a mapping in this campaign")
        sweep[".".join(parts[1:])] = copy.deepcopy(value)
        return
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, key, ".".join(parts[: depth + 1]))
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, key)] = copy.deepcopy(value)
    else:
        node[last] = copy.deepcopy(value)


def set_for_every_experiment(data: dict[str, Any], dotted: str, value: Any) -> None:
    """Set an experiment field (``decoder.max_output_tokens``) in ``defaults`` and in each
    listed experiment that gives its own value, so the value holds for every experiment."""
    apply_override(data, f"defaults.{dotted}", value)
    experiments = data.get("experiments")
    if not isinstance(experiments, list):
        return
    for i, fragment in enumerate(experiments):
        if _has_path(fragment, dotted.split(".")):
            apply_override(data, f"experiments.{i}.{dotted}", value)


def field_values(data: dict[str, Any], dotted: str) -> list[Any]:
    """Every value an experiment field is given (in ``defaults`` and in each experiment)."""
    parts = dotted.split(".")
    sources = [data.get("defaults")]
    experiments = data.get("experiments")
    if isinstance(experiments, list):
        sources += experiments
    values = []
    for fragment in sources:
        if _has_path(fragment, parts):
            node = fragment
            for part in parts:
                node = node[part]
            values.append(node)
    return values


def _has_path(node: Any, parts: list[str]) -> bool:
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _child(node: Any, part: str, key: str, where: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, key)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {key}: {where.rsplit('.', 1)[0]!r} is a value, not a section")
    child = node.setdefault(part, {})
    if not isinstance(child, dict | list):
        raise ConfigError(f"--set {key}: {where!r} is a value ({child!r}), not a section")
    return child


def _index(node: list[Any], part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: {part!r} is not an index of a list of {len(node)}")
    return int(part)
