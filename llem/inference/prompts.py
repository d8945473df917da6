"""Prompt sources: the built-in set, a JSONL file, or a locally available Hugging Face dataset.

The result is a plain list of texts in a reproducible order (shuffled with the configured
seed when asked), cut or cycled to exactly ``num_prompts``.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from llem.config.models import PromptConfig
from llem.errors import ConfigError

BUILTIN_PROMPTS = "builtin.jsonl"


@dataclass
class PromptSet:
    """Selected prompt texts, and anything worth a warning about how they were chosen."""

    texts: list[str]
    source: str
    warnings: list[str] = field(default_factory=list)


def load_prompts(cfg: PromptConfig) -> PromptSet:
    """Read the configured source, shuffle (seeded) if asked, and select ``num_prompts``."""
    if cfg.source == "builtin":
        entry = resources.files("llem").joinpath("data/prompts").joinpath(BUILTIN_PROMPTS)
        texts = _parse_jsonl(entry.read_text(encoding="utf-8"), "text", f"llem:{BUILTIN_PROMPTS}")
        label = "builtin"
    elif cfg.source == "jsonl":
        assert cfg.path is not None
        path = Path(cfg.path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"prompts.path: cannot read {path}: {exc.strerror or exc}") from exc
        texts = _parse_jsonl(text, cfg.text_field, str(path))
        label = f"jsonl:{path}"
    else:
        texts = _load_hf_dataset(cfg)
        label = f"hf_dataset:{cfg.path}:{cfg.split}"
    if not texts:
        raise ConfigError(f"prompts: {label} holds no prompts")
    if cfg.shuffle:
        random.Random(cfg.seed).shuffle(texts)
    warnings: list[str] = []
    if len(texts) < cfg.num_prompts:
        warnings.append(
            f"prompts: {label} holds {len(texts)} prompts; cycled to reach num_prompts="
            f"{cfg.num_prompts}"
        )
        texts = [texts[i % len(texts)] for i in range(cfg.num_prompts)]
    return PromptSet(texts=texts[: cfg.num_prompts], source=label, warnings=warnings)


def _parse_jsonl(text: str, text_field: str, where: str) -> list[str]:
    texts: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict):
            raise ConfigError(f"{where}:{number}: each line must be a JSON object")
        value = record.get(text_field)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"{where}:{number}: field {text_field!r} is missing or not a non-empty string"
            )
        texts.append(value)
    return texts


def _load_hf_dataset(cfg: PromptConfig) -> list[str]:
    """A dataset from the local cache or a ``save_to_disk`` folder; never downloads."""
    try:
        import datasets
    except ImportError as exc:
        raise ConfigError(
            "prompts.source 'hf_dataset' needs the 'datasets' package: pip install datasets"
        ) from exc
    assert cfg.path is not None
    try:
        if Path(cfg.path).is_dir() and (Path(cfg.path) / "dataset_info.json").exists():
            data = datasets.load_from_disk(cfg.path)
            if isinstance(data, datasets.DatasetDict):
                data = data[cfg.split]
        else:
            datasets.config.HF_DATASETS_OFFLINE = True
            data = datasets.load_dataset(cfg.path, split=cfg.split)
    except Exception as exc:  # the datasets library raises many kinds
        raise ConfigError(
            f"prompts.path: dataset {cfg.path!r} (split {cfg.split!r}) is not available "
            f"locally: {exc}"
        ) from exc
    if cfg.text_field not in data.column_names:
        raise ConfigError(
            f"prompts.text_field: dataset {cfg.path!r} has no column {cfg.text_field!r} "
            f"(columns: {', '.join(data.column_names)})"
        )
    return [t for t in data[cfg.text_field] if isinstance(t, str) and t.strip()]
