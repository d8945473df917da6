"""Generate one batch, count its tokens exactly, and time every decoding step.

A streamer receives the batch's new tokens after each decoding step (transformers copies them
to the host, so on CUDA the stamp is taken after the step really finished). From those stamps
come time to first token, inter-token latencies, per-request end-to-end latency and the
prefill/decode boundaries used to split energy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from llem.config.models import DecoderConfig
from llem.inference.batching import Batch, pad_left


@dataclass
class BatchOutcome:
    """What one generate call produced and when (``time.monotonic()`` seconds)."""

    input_tokens: int
    padding_tokens: int
    output_counts: list[int]  # per request: generated tokens up to and including EOS
    start_sec: float  # just before generate
    step_secs: list[float]  # after each decoding step; step_secs[0] ends the prefill
    end_sec: float  # generate returned
    batch_size: int = 0
    generated_ids: list[list[int]] = field(default_factory=list)  # per request, counted part

    @property
    def output_tokens(self) -> int:
        return sum(self.output_counts)

    @property
    def latency_ms(self) -> float:
        return (self.end_sec - self.start_sec) * 1000.0

    @property
    def ttft_ms(self) -> float | None:
        return (self.step_secs[0] - self.start_sec) * 1000.0 if self.step_secs else None

    def e2e_ms(self) -> list[float]:
        """Per request: from the batch's start to the step that produced its last token."""
        return [(self.step_secs[n - 1] - self.start_sec) * 1000.0 if n else 0.0
                for n in self.output_counts]

    def itl_ms(self) -> list[list[float]]:
        """Per request: gaps between the steps that produced its tokens."""
        gaps = [(b - a) * 1000.0 for a, b in zip(self.step_secs, self.step_secs[1:], strict=False)]
        return [gaps[: max(0, n - 1)] for n in self.output_counts]


class StepClock:
    """A transformers streamer that only stamps the time of each ``put``.

    The first ``put`` carries the prompt (generation starts); every later one carries the
    tokens of one decoding step.
    """

    def __init__(self) -> None:
        self.prompt_sec: float | None = None
        self.step_secs: list[float] = []

    def put(self, value: Any) -> None:
        now = time.monotonic()
        if self.prompt_sec is None:
            self.prompt_sec = now
        else:
            self.step_secs.append(now)

    def end(self) -> None:
        pass


def generation_kwargs(decoder: DecoderConfig, model: Any, tokenizer: Any) -> dict[str, Any]:
    """Arguments for ``model.generate`` from the decoder config (greedy unless sampling)."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_ids(eos)[0]
    settings: dict[str, Any] = {
        "max_new_tokens": decoder.max_output_tokens,
        "min_new_tokens": decoder.min_output_tokens or 0,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "bos_token_id": model.generation_config.bos_token_id,
        "use_cache": True,
        "num_beams": 1,
    }
    if decoder.mode == "sampling":
        settings.update(
            do_sample=True, temperature=decoder.temperature, top_p=decoder.top_p,
            top_k=decoder.top_k,
        )
    else:
        settings.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return {"generation_config": GenerationConfig(**settings)}


def eos_ids(eos: int | list[int] | None) -> list[int]:
    if eos is None:
        return []
    return [eos] if isinstance(eos, int) else list(eos)


def count_generated(new_ids: list[list[int]], eos: list[int]) -> list[int]:
    """Tokens each request actually generated: up to and including its first EOS.

    Rows that finished early are filled with padding afterwards (which may be the EOS id
    itself), so counting stops at the first EOS, never at padding.
    """
    stops = set(eos)
    counts = []
    for row in new_ids:
        n = len(row)
        for i, token in enumerate(row):
            if token in stops:
                n = i + 1
                break
        counts.append(n)
    return counts


def generate_batch(
    model: Any, batch: Batch, gen_kwargs: dict[str, Any], device: str, sync: Any = None
) -> BatchOutcome:
    """Run ``model.generate`` on one left-padded batch; exact counts and step stamps."""
    import torch

    config = gen_kwargs["generation_config"]
    ids, mask = pad_left(batch, config.pad_token_id)
    input_ids = torch.tensor(ids, dtype=torch.long, device=device)
    attention_mask = torch.tensor(mask, dtype=torch.long, device=device)
    clock = StepClock()
    with torch.inference_mode():
        if sync is not None:
            sync()
        start = time.monotonic()
        out = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, streamer=clock, **gen_kwargs
        )
        if sync is not None:
            sync()
        end = time.monotonic()
    new = out[:, input_ids.shape[1] :].tolist()
    counts = count_generated(new, eos_ids(config.eos_token_id))
    return BatchOutcome(
        input_tokens=batch.input_tokens,
        padding_tokens=batch.padding_tokens,
        output_counts=counts,
        start_sec=start,
        step_secs=clock.step_secs,
        end_sec=end,
        batch_size=len(batch.input_ids),
        generated_ids=[row[:n] for row, n in zip(new, counts, strict=True)],
    )
