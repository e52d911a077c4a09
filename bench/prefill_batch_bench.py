"""Prompt-processing speed by batch size: why background reading runs in 64-token batches.

llama.cpp's batched kernels need a batch of some size to pay off; a turn that wants the model aborts a
batch in flight (the engine's abort callback), so background reading can use the fast size. Decodes
batches of each size after a context of `--context` tokens, for `--seconds` each.

    .venv/bin/python bench/prefill_batch_bench.py [--model NAME_OR_PATH | --shape NAME:QUANT]
"""

from __future__ import annotations

import argparse
import random
import sys

from coach.bench.ladder import bench_file
from coach.config import Settings
from coach.interview.loader import load_local


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--shape", metavar="NAME:QUANT")
    ap.add_argument("--batches", default="1,4,8,16,32,64,128")
    ap.add_argument("--context", type=int, default=800)
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    settings = Settings.from_env(model=args.model)
    ref = bench_file(settings, args.shape)
    sizes = [int(x) for x in args.batches.split(",")]
    be = load_local(settings, ref, n_ctx=4096, slots=1)
    rng = random.Random(0)
    vocab = be.tokenize_text(" ".join(f"word{i}" for i in range(400)))
    print(f"model: {ref.name}, threads {be.n_threads}, context {args.context} tokens, abort callback: "
          f"{'yes' if be.abortable else 'no'}")
    print(f"{'batch':>5} {'tokens/s':>9} {'ms/batch':>9}")
    for size in sizes:
        def batch(size: int = size) -> list[int]:
            return [rng.choice(vocab) for _ in range(size)]

        n, tokens, dt = be.measure.batch_rate([rng.choice(vocab) for _ in range(args.context)], batch, args.seconds)
        print(f"{size:5d} {tokens / dt:9.2f} {dt / max(1, n) * 1000:9.0f}", flush=True)
    # how long a turn waits for a 64-token background batch: the abort takes it at the next graph node
    text = " ".join(f"word{rng.randrange(400)}" for _ in range(400))
    waits = [be.wait_behind_prefill("bench-bg", text, delay) for delay in (0.1, 0.5, 1.0)]
    print("a turn's wait for the model while a 64-token batch runs: "
          + ", ".join(f"{w * 1000:.1f} ms" for w in waits))
    be.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
