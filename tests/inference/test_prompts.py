"""Prompt sources, selection and shuffling; tokenization, truncation, sharding and batching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llem.config.models import BatchingConfig, PromptConfig
from llem.errors import ConfigError
from llem.inference.batching import encode_prompts, pad_left, shard_and_batch
from llem.inference.prompts import load_prompts
from llem.inference.tiny import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_builtin_prompt_set_has_varied_lengths() -> None:
    prompts = load_prompts(PromptConfig(num_prompts=48)).texts
    assert len(prompts) == 48 and len(set(prompts)) == 48
    lengths = sorted(len(p) for p in prompts)
    assert lengths[0] < 40 and lengths[-1] > 400


def test_num_prompts_and_seeded_shuffle() -> None:
    plain = load_prompts(PromptConfig(num_prompts=10)).texts
    a = load_prompts(PromptConfig(num_prompts=10, shuffle=True, seed=1)).texts
    b = load_prompts(PromptConfig(num_prompts=10, shuffle=True, seed=1)).texts
    c = load_prompts(PromptConfig(num_prompts=10, shuffle=True, seed=2)).texts
    assert len(plain) == 10 and a == b and a != plain and a != c


def test_too_few_prompts_are_cycled_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"q": "one"}\n\n{"q": "two"}\n')
    selected = load_prompts(PromptConfig(source="jsonl", path=str(path), text_field="q",
                                         num_prompts=5))
    assert selected.texts == ["one", "two", "one", "two", "one"]
    assert selected.warnings and "cycled" in selected.warnings[0]


def test_jsonl_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"other": 1}) + "\n")
    with pytest.raises(ConfigError, match=r"p\.jsonl:2: field 'text'"):
        load_prompts(PromptConfig(source="jsonl", path=str(path)))
    path.write_text("not json\n")
    with pytest.raises(ConfigError, match=r"p\.jsonl:1: not valid JSON"):
        load_prompts(PromptConfig(source="jsonl", path=str(path)))


def test_missing_jsonl_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_prompts(PromptConfig(source="jsonl", path=str(tmp_path / "none.jsonl")))


def test_hf_dataset_source_fails_clearly_when_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"datasets|not available"):
        load_prompts(PromptConfig(source="hf_dataset", path=str(tmp_path / "nothing")))


def test_truncation_to_max_input_tokens(tokenizer) -> None:
    texts = load_prompts(PromptConfig(num_prompts=48)).texts
    full = encode_prompts(texts, tokenizer, PromptConfig(max_input_tokens=10_000))
    cut = encode_prompts(texts, tokenizer, PromptConfig(max_input_tokens=32))
    assert max(len(ids) for ids in full) > 32
    for long_ids, short_ids in zip(full, cut, strict=True):
        assert short_ids == long_ids[:32]


def test_chat_template_keeps_the_generation_prompt_within_the_limit(tokenizer) -> None:
    texts = load_prompts(PromptConfig(num_prompts=48)).texts
    cfg = PromptConfig(max_input_tokens=40, chat_template=True)
    suffix = tokenizer("<s>assistant:", add_special_tokens=False)["input_ids"]
    for ids in encode_prompts(texts, tokenizer, cfg):
        assert len(ids) <= 40
        assert ids[-len(suffix):] == suffix


def test_shards_cover_the_prompt_set_exactly_once() -> None:
    encoded = [[1] * n for n in (5, 9, 2, 7, 3, 8, 4)]
    cfg = BatchingConfig(batch_size=2, sort_by_length=True)
    seen: list[int] = []
    for rank in range(3):
        batches = shard_and_batch(encoded, cfg, rank, 3)
        assert all(len(b.prompt_indices) <= 2 for b in batches)
        seen += [i for b in batches for i in b.prompt_indices]
    assert sorted(seen) == list(range(7))


def test_sorted_batches_group_similar_lengths() -> None:
    encoded = [[1] * n for n in (5, 9, 2, 7, 3, 8)]
    batches = shard_and_batch(encoded, BatchingConfig(batch_size=2, sort_by_length=True))
    assert [[len(x) for x in b.input_ids] for b in batches] == [[9, 8], [7, 5], [3, 2]]
    unsorted = shard_and_batch(encoded, BatchingConfig(batch_size=4))
    assert [b.prompt_indices for b in unsorted] == [[0, 1, 2, 3], [4, 5]]


def test_left_padding_and_counts() -> None:
    batch = shard_and_batch([[5, 6, 7], [8]], BatchingConfig(batch_size=2))[0]
    ids, mask = pad_left(batch, pad_token_id=0)
    assert ids == [[5, 6, 7], [0, 0, 8]]
    assert mask == [[1, 1, 1], [0, 0, 1]]
    assert batch.input_tokens == 4 and batch.padding_tokens == 2
