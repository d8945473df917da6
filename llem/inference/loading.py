"""Load a prepared model and its tokenizer onto the rank's device (outside any measurement)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llem.config.models import ExperimentConfig
from llem.domain.metrics import ModelSource
from llem.errors import ModelPreparationError
from llem.inference.devices import DevicePlan
from llem.inference.models import (
    PreparedModel,
    local_folder,
    local_model,
    model_key,
    read_prepared,
)


@dataclass
class LoadedModel:
    """A model in eval mode with a left-padding tokenizer, and where it came from."""

    model: Any
    tokenizer: Any
    source: ModelSource
    device: str


def find_prepared(config: ExperimentConfig, models_dir: str | Path) -> PreparedModel:
    """The prepared model; a local model folder works without preparation."""
    prepared = read_prepared(config, models_dir)
    if prepared is not None:
        return prepared
    path = local_folder(config.model_name)
    if path is not None and not config.model.random_weights:
        return local_model(config, Path(models_dir) / model_key(config), path)
    raise ModelPreparationError(
        f"model {config.model_name!r} is not prepared in {models_dir}: run `llem "
        f"prepare-model --spec <spec> --models-dir {models_dir}` first (the workflow does "
        "this in its prepare_model rule)"
    )


def load_model(config: ExperimentConfig, models_dir: str | Path, plan: DevicePlan) -> LoadedModel:
    """Load weights (or build random ones, seeded) in the configured precision."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    prepared = find_prepared(config, models_dir)
    dtype = getattr(torch, config.precision)
    remote = config.trust_remote_code
    try:
        if prepared.random_weights:
            model_config = AutoConfig.from_pretrained(prepared.config_path,
                                                      trust_remote_code=remote)
            torch.manual_seed(config.decoder.seed)
            with torch.device(plan.device):
                model = AutoModelForCausalLM.from_config(
                    model_config, dtype=dtype, trust_remote_code=remote
                )
        else:
            kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": remote}
            if config.model.revision and prepared.source.obtained == "hub cache":
                kwargs["revision"] = config.model.revision
            if config.model.device_map:
                kwargs["device_map"] = config.model.device_map
                if plan.cuda_indices:
                    kwargs["max_memory"] = {
                        i: torch.cuda.get_device_properties(i).total_memory
                        for i in plan.cuda_indices
                    }
            model = AutoModelForCausalLM.from_pretrained(prepared.weights_path, **kwargs)
            if not config.model.device_map:
                model = model.to(plan.device)
        tokenizer = AutoTokenizer.from_pretrained(prepared.tokenizer_path,
                                                  trust_remote_code=remote)
    except OSError as exc:
        raise ModelPreparationError(
            f"cannot load model {config.model_name!r} from {prepared.folder}: {exc}"
        ) from exc
    model.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    source = prepared.source.model_copy(
        update={
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "num_parameters": sum(p.numel() for p in model.parameters()),
        }
    )
    return LoadedModel(model=model, tokenizer=tokenizer, source=source, device=plan.device)
