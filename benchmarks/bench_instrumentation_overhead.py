"""Does llem's instrumentation slow down the inference it measures?

The same tiny model and the same batches go, in alternating rounds within one run, through
(A) the full measured path of ``llem measure`` (step-stamping streamer, measurement window,
background sampler) and (B) a bare ``model.generate`` loop. Fixed-length decoding makes both
produce exactly the same tokens. Reports output-token throughput of A over B (median of the
rounds). Target: >= 0.98.

    python benchmarks/bench_instrumentation_overhead.py [--rounds 7] [--batch-size 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llem.config.campaign import make_spec, parse_experiment
from llem.inference.batching import encode_prompts, pad_left, shard_and_batch
from llem.inference.devices import plan_device
from llem.inference.loading import load_model
from llem.inference.prompts import load_prompts
from llem.inference.runner import MeasureInputs, measure
from llem.inference.tiny import build_tiny_model


def bare_loop(loaded, batches, max_new: int) -> float:
    """Output tokens per second of a plain generate loop over the same batches."""
    import torch

    pad = loaded.tokenizer.pad_token_id
    tokens = 0
    start = time.monotonic()
    with torch.inference_mode():
        for batch in batches:
            ids, mask = pad_left(batch, pad)
            out = loaded.model.generate(
                input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                max_new_tokens=max_new, min_new_tokens=max_new, do_sample=False,
                pad_token_id=pad,
            )
            tokens += (out.shape[1] - len(ids[0])) * out.shape[0]
    return tokens / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--interval-ms", type=int, default=100)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="llem-bench-"))
    tiny = build_tiny_model(work / "tiny")
    exp = parse_experiment({
        "config_name": "overhead", "model_name": str(tiny), "device": "cpu",
        "prompts": {"num_prompts": args.prompts},
        "batching": {"batch_size": args.batch_size},
        "decoder": {"max_output_tokens": args.max_new, "min_output_tokens": args.max_new},
        "energy": {"backend": "estimate", "cpu_tdp_w": 65.0, "min_window_sec": 0.0},
        # Warm up as llem always does (outside the window): each round loads its own model,
        # and a cold first batch would be counted as instrumentation overhead.
        "warmup": {"enabled": True, "convergence_detection": False, "max_prompts": 3,
                   "window_size": 3, "min_prompts": 1},
        "timeseries": {"enabled": True, "save": False, "sample_interval_ms": args.interval_ms},
    })
    spec = make_spec(exp)
    loaded = load_model(exp, work, plan_device(exp))
    texts = load_prompts(exp.prompts).texts
    batches = shard_and_batch(encode_prompts(texts, loaded.tokenizer, exp.prompts), exp.batching)
    bare_loop(loaded, batches, args.max_new)  # warm both paths' kernels and allocator

    measured: list[float] = []
    bare: list[float] = []
    for i in range(args.rounds):
        raw = measure(MeasureInputs(spec=spec, models_dir=work, out_dir=work / f"r{i}"),
                      log=lambda _m: None)
        measured.append(raw.output_tokens_per_second or 0.0)
        bare.append(bare_loop(loaded, batches, args.max_new))
    ratios = [m / b for m, b in zip(measured, bare, strict=True)]
    print(f"tiny model, {len(batches)} batches of {args.batch_size}, {args.max_new} new tokens, "
          f"sampler every {args.interval_ms} ms, {args.rounds} alternating rounds")
    print(f"llem measure : {statistics.median(measured):8.1f} output tok/s (median)")
    print(f"bare generate: {statistics.median(bare):8.1f} output tok/s (median)")
    print(f"ratio        : {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
          f"max {max(ratios):.3f}; target >= 0.98)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
