"""FLOPs estimate: 2 x non-embedding parameters x tokens, split into prefill and decode.

Each token passing through a decoder costs about two FLOPs (a multiply and an add) per weight
it meets in a matrix multiply. The input-embedding table is a lookup, not a multiply, so it
is left out; the output projection is a multiply for every token, so it counts even when its
weights are tied to the embedding. Attention over the context and padding are not counted,
hence "medium" confidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

METHOD = "parameter_estimate"
CONFIDENCE = "medium"


@dataclass(frozen=True)
class FlopsEstimate:
    prefill: float
    decode: float
    non_embedding_parameters: int
    method: str = METHOD
    confidence: str = CONFIDENCE

    @property
    def total(self) -> float:
        return self.prefill + self.decode


def non_embedding_parameters(model: Any) -> int:
    """Weights used in a matrix multiply per token (see module docstring)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings()
    embedding_params = embedding.weight.numel() if embedding is not None else 0
    output = model.get_output_embeddings()
    tied = (
        output is not None
        and embedding is not None
        and output.weight.data_ptr() == embedding.weight.data_ptr()
    )
    return total - embedding_params + (output.weight.numel() if tied else 0)


def estimate_flops(params: int, input_tokens: int, output_tokens: int) -> FlopsEstimate:
    """Prefill processes the input tokens; decode processes every generated token."""
    return FlopsEstimate(
        prefill=2.0 * params * input_tokens,
        decode=2.0 * params * output_tokens,
        non_embedding_parameters=params,
    )
