"""The tiny offline model: builds fast, loads as a normal model folder, seeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem.cli import main
from llem.errors import ModelPreparationError
from llem.inference.tiny import build_tiny_model


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_tiny_model_loads_and_generates(tmp_path: Path, architecture: str) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = build_tiny_model(tmp_path / architecture, architecture)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.config.model_type == architecture
    ids = tokenizer("Hello world", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    assert tokenizer.pad_token_id is not None and tokenizer.eos_token_id is not None
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert "hi" in rendered


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    a = build_tiny_model(tmp_path / "a")
    b = build_tiny_model(tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def test_unknown_tiny_architecture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelPreparationError, match="llama"):
        build_tiny_model(tmp_path / "x", "gpt-99")


def test_prepare_model_cli_builds_a_tiny_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["prepare-model", "--tiny", "--out", str(tmp_path / "tiny")]) == 0
    assert (tmp_path / "tiny" / "config.json").is_file()
    assert str(tmp_path / "tiny") in capsys.readouterr().out


def test_prepare_model_cli_lists_architectures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare-model", "--list-architectures"]) == 0
    assert "llama-3.1-8b" in capsys.readouterr().out
