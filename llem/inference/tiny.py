"""A tiny causal language model built offline, for tests and quick local runs.

The model has random weights and a byte-level BPE tokenizer trained on a handful of sentences,
so building it needs no network and takes well under a second. The folder it writes is a
normal Hugging Face model folder: anything that accepts a ``model_name`` accepts its path.

Example:
    >>> from llem.inference.tiny import build_tiny_model
    >>> path = build_tiny_model(tmp_path / "tiny")          # doctest: +SKIP
    >>> ExperimentConfig(config_name="t", model_name=str(path))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Architectures the tiny builder knows, mapped to their transformers config class names.
TINY_ARCHITECTURES: dict[str, str] = {
    "llama": "LlamaConfig",
    "qwen2": "Qwen2Config",
}

_TRAINING_TEXT = [
    "The quick brown fox jumps over the lazy dog.",
    "Energy per token is the headline figure of an inference measurement.",
    "A measured window covers generation only, never model loading or warmup.",
    "Researchers compare throughput, latency and joules across models and batch sizes.",
    "Hello world! How are you today? I am fine, thank you.",
    "Numbers 0 1 2 3 4 5 6 7 8 9 and punctuation , . ; : ? ! - ( ) are common.",
    "Write a short poem about the sea, the wind and the light on the water.",
    "Explain why the sky is blue in one paragraph for a curious child.",
]

_SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]

#: Size of the byte-level BPE vocabulary of :func:`build_tokenizer`.
TINY_VOCAB_SIZE = 384

# A minimal chat template so `prompts.chat_template: true` works with tiny models too.
_CHAT_TEMPLATE = (
    "{% for message in messages %}<s>{{ message['role'] }}: {{ message['content'] }}</s>"
    "{% endfor %}{% if add_generation_prompt %}<s>assistant:{% endif %}"
)

_TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
}


def build_tiny_model(out_dir: Path, architecture: str = "llama", seed: int = 0) -> Path:
    """Build and save a tiny random-weights causal LM with its own tokenizer; returns the folder.

    The weights are seeded, so two builds with the same seed are identical (tests may compare
    runs across processes). Saved as safetensors with ``config.json`` and a fast tokenizer.
    """
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    if architecture not in TINY_ARCHITECTURES:
        from llem.errors import ModelPreparationError

        known = ", ".join(sorted(TINY_ARCHITECTURES))
        raise ModelPreparationError(
            f"unknown tiny architecture {architecture!r}; choose one of: {known}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()

    config_cls = getattr(transformers, TINY_ARCHITECTURES[architecture])
    config = config_cls(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **_TINY_SHAPE,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tokenizer() -> Any:
    """A small byte-level BPE tokenizer (384 tokens) with pad/bos/eos and a chat template.

    Byte-level, so any text tokenizes without unknown tokens. Also used by random-weights
    models whose architecture ships without a tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TINY_VOCAB_SIZE,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TRAINING_TEXT, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        padding_side="left",
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    return tokenizer
