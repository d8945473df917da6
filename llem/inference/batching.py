"""Tokenize prompts once, shard them by rank, and group them into static batches.

Prompts are tokenized individually (no padding), so input-token counts are exact; padding is
added per batch, on the left, when the batch is generated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llem.config.models import BatchingConfig, PromptConfig


@dataclass(frozen=True)
class Batch:
    """Token ids of the prompts of one batch, unpadded, and their positions in the prompt set."""

    prompt_indices: list[int]
    input_ids: list[list[int]]

    @property
    def input_tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)

    @property
    def padded_length(self) -> int:
        return max(len(ids) for ids in self.input_ids)

    @property
    def padding_tokens(self) -> int:
        return self.padded_length * len(self.input_ids) - self.input_tokens


def encode_prompts(texts: list[str], tokenizer: Any, cfg: PromptConfig) -> list[list[int]]:
    """Token ids per prompt, at most ``max_input_tokens`` each.

    Without a chat template the text is cut at the end. With one, the prompt text is cut so
    that the whole templated prompt fits, keeping the template's generation prompt intact.
    """
    limit = cfg.max_input_tokens
    encoded: list[list[int]] = []
    for text in texts:
        if not cfg.chat_template:
            ids = tokenizer(text, add_special_tokens=True)["input_ids"]
            encoded.append(list(ids[:limit]))
            continue
        overhead = len(_templated(tokenizer, ""))
        content_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        budget = max(1, limit - overhead)
        if len(content_ids) > budget:
            text = tokenizer.decode(content_ids[:budget], skip_special_tokens=True)
        ids = _templated(tokenizer, text)
        encoded.append(ids[-limit:] if len(ids) > limit else ids)
    return encoded


def _templated(tokenizer: Any, text: str) -> list[int]:
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(rendered, add_special_tokens=False)["input_ids"])


def shard_and_batch(
    encoded: list[list[int]], cfg: BatchingConfig, rank: int = 0, world_size: int = 1
) -> list[Batch]:
    """This rank's batches: prompts (length-sorted first, if asked) dealt round-robin to ranks.

    Sorting before dealing gives every rank a similar mix of lengths; the union of all ranks'
    batches is exactly the prompt set.
    """
    order = list(range(len(encoded)))
    if cfg.sort_by_length:
        order.sort(key=lambda i: len(encoded[i]), reverse=True)
    mine = order[rank::world_size]
    batches = []
    for start in range(0, len(mine), cfg.batch_size):
        chunk = mine[start : start + cfg.batch_size]
        batches.append(Batch(prompt_indices=chunk, input_ids=[encoded[i] for i in chunk]))
    return batches


def pad_left(batch: Batch, pad_token_id: int) -> tuple[list[list[int]], list[list[int]]]:
    """Left-padded ids and attention mask (1 = real token) for a batch."""
    width = batch.padded_length
    ids = [[pad_token_id] * (width - len(row)) + row for row in batch.input_ids]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in batch.input_ids]
    return ids, mask
