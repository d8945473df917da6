"""Exact token counts, step stamps and latency samples of real generation on a tiny model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llem.config.models import DecoderConfig, ExperimentConfig
from llem.domain.latency import latency_statistics
from llem.inference.batching import Batch
from llem.inference.devices import plan_device
from llem.inference.flops import estimate_flops, non_embedding_parameters
from llem.inference.generation import count_generated, generate_batch, generation_kwargs
from llem.inference.latency import collect_latencies
from llem.inference.loading import LoadedModel, load_model
from llem.inference.tiny import build_tiny_model
from llem.stats import percentile

PROMPTS = [[1, 40, 41, 42, 43], [1, 50, 51], [1, 60, 61, 62, 63, 64, 65], [1, 70]]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    folder = build_tiny_model(tmp_path_factory.mktemp("gen") / "llama")
    cfg = ExperimentConfig(config_name="g", model_name=str(folder), device="cpu")
    return load_model(cfg, tmp_path_factory.mktemp("models"), plan_device(cfg))


def _batch() -> Batch:
    return Batch(prompt_indices=list(range(len(PROMPTS))), input_ids=[list(p) for p in PROMPTS])


def _kwargs(loaded: LoadedModel, **decoder: Any) -> dict[str, Any]:
    return generation_kwargs(DecoderConfig(**decoder), loaded.model, loaded.tokenizer)


def test_count_generated_stops_at_the_first_eos_and_ignores_padding() -> None:
    assert count_generated([[5, 6, 2, 2, 2], [5, 2, 0, 0, 0], [5, 6, 7, 8, 9]], [2]) == [3, 2, 5]
    assert count_generated([[9, 3, 4]], [3, 4]) == [2]
    assert count_generated([[7, 7]], []) == [2]


def test_counts_match_the_ids_generate_returns(loaded: LoadedModel) -> None:
    import torch

    kwargs = _kwargs(loaded, max_output_tokens=24)
    config = kwargs["generation_config"]
    outcome = generate_batch(loaded.model, _batch(), kwargs, "cpu")
    # the same call straight through transformers, counted here independently
    width = max(len(p) for p in PROMPTS)
    ids = torch.tensor([[config.pad_token_id] * (width - len(p)) + p for p in PROMPTS])
    starts = torch.tensor([width - len(p) for p in PROMPTS])
    mask = torch.arange(width)[None, :] >= starts[:, None]
    with torch.inference_mode():
        out = loaded.model.generate(input_ids=ids, attention_mask=mask.long(), **kwargs)
    new = out[:, width:].tolist()
    eos = config.eos_token_id
    for row, count in zip(new, outcome.output_counts, strict=True):
        if eos in row:
            assert count == row.index(eos) + 1  # EOS included ...
            assert all(t == config.pad_token_id for t in row[count:])  # ... padding not
        else:
            assert count == 24
    assert outcome.generated_ids == [row[:n] for row, n in zip(new, outcome.output_counts,
                                                                strict=True)]
    assert outcome.input_tokens == sum(len(p) for p in PROMPTS)
    assert outcome.padding_tokens == width * len(PROMPTS) - sum(len(p) for p in PROMPTS)
    assert len(outcome.step_secs) == len(new[0])  # one stamp per decoding step


def test_every_row_stops_after_its_first_eos(loaded: LoadedModel) -> None:
    natural_kwargs = _kwargs(loaded, max_output_tokens=24)
    natural = generate_batch(loaded.model, _batch(), natural_kwargs, "cpu")
    # Make a token that row 0 produces mid-way a second EOS: greedy decoding reproduces the
    # same ids up to it, so each row must stop right after its first EOS of either kind.
    extra = natural.generated_ids[0][5]
    kwargs = _kwargs(loaded, max_output_tokens=24)
    kwargs["generation_config"].eos_token_id = [natural_kwargs["generation_config"].eos_token_id,
                                                extra]
    stopped = generate_batch(loaded.model, _batch(), kwargs, "cpu")
    expected = [row.index(extra) + 1 if extra in row else len(row)
                for row in natural.generated_ids]
    assert stopped.output_counts == expected
    assert expected[0] <= 6 and expected != natural.output_counts
    for row, counted in zip(natural.generated_ids, stopped.generated_ids, strict=True):
        assert counted == row[: len(counted)]
    assert len(stopped.step_secs) == max(expected)


def test_fixed_length_decode_ignores_eos(loaded: LoadedModel) -> None:
    free = generate_batch(loaded.model, _batch(), _kwargs(loaded, max_output_tokens=12), "cpu")
    kwargs = _kwargs(loaded, max_output_tokens=12, min_output_tokens=12)
    kwargs["generation_config"].eos_token_id = free.generated_ids[0][2]
    fixed = generate_batch(loaded.model, _batch(), kwargs, "cpu")
    assert fixed.output_counts == [12] * 4


def test_sampling_with_a_seed_is_reproducible(loaded: LoadedModel) -> None:
    import torch

    kwargs = _kwargs(loaded, mode="sampling", temperature=1.5, max_output_tokens=10)
    torch.manual_seed(3)
    a = generate_batch(loaded.model, _batch(), kwargs, "cpu").generated_ids
    torch.manual_seed(3)
    b = generate_batch(loaded.model, _batch(), kwargs, "cpu").generated_ids
    greedy = generate_batch(loaded.model, _batch(), _kwargs(loaded, max_output_tokens=10),
                            "cpu").generated_ids
    assert a == b and a != greedy


def test_step_stamps_give_ordered_latencies(loaded: LoadedModel) -> None:
    outcome = generate_batch(loaded.model, _batch(), _kwargs(loaded, max_output_tokens=8), "cpu")
    stamps = [outcome.start_sec, *outcome.step_secs, outcome.end_sec]
    assert stamps == sorted(stamps)
    m = collect_latencies([outcome])
    assert m.request_count == 4 and m.total_output_tokens == 32
    assert len(m.ttft_ms) == 4 and len(m.itl_full_ms) == 4 * 7 and len(m.itl_trimmed_ms) == 4 * 5
    stats = latency_statistics(m)
    assert stats is not None
    assert 0 < stats.ttft_min_ms <= stats.ttft_median_ms <= stats.ttft_max_ms
    assert stats.e2e_mean_ms == pytest.approx(outcome.e2e_ms()[0])
    assert stats.e2e_mean_ms <= outcome.latency_ms


def test_percentile_interpolates_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 95) == pytest.approx(3.85)


def test_flops_are_two_times_non_embedding_parameters_per_token(loaded: LoadedModel) -> None:
    model = loaded.model
    params = non_embedding_parameters(model)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    assert params == total - embedding  # untied head: counted, embedding table: not
    flops = estimate_flops(params, input_tokens=10, output_tokens=4)
    assert flops.prefill == 2 * params * 10 and flops.decode == 2 * params * 4
    assert flops.method == "parameter_estimate" and flops.confidence == "medium"


def test_tied_output_projection_still_counts(tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=1, num_attention_heads=2, tie_word_embeddings=True)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())  # the tied matrix once
    assert non_embedding_parameters(model) == total
