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
import threading
import time

from coach.bench.ladder import bench_file
from coach.config import Settings
from coach.interview.loader import load_backend


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
    be = load_backend(settings, ref, n_ctx=4096, slots=1)
    rng = random.Random(0)
    vocab = be.tokenize_text(" ".join(f"word{i}" for i in range(400)))
    slot, _ = be._slot_for("bench")
    print(f"model: {ref.name}, threads {be.n_threads}, context {args.context} tokens, abort callback: "
          f"{'yes' if be.abortable else 'no'}")
    print(f"{'batch':>5} {'tokens/s':>9} {'ms/batch':>9}")
    for size in sizes:
        be._clear(slot)
        be._eval(slot, [rng.choice(vocab) for _ in range(args.context)], 0)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < args.seconds and len(slot.tokens) + size < be.n_ctx:
            be._decode(slot, [rng.choice(vocab) for _ in range(size)], logits_last=False)
            n += 1
        dt = time.perf_counter() - t0
        print(f"{size:5d} {n * size / dt:9.2f} {dt / max(1, n) * 1000:9.0f}", flush=True)
    # how long a turn waits for a 64-token background batch: the abort takes it at the next graph node
    be._clear(slot)
    be._eval(slot, [rng.choice(vocab) for _ in range(args.context)], 0)
    waits = []
    text = " ".join(f"word{rng.randrange(400)}" for _ in range(400))
    for delay in (0.1, 0.5, 1.0):
        cancel = threading.Event()
        be.forget("bench-bg")
        worker = threading.Thread(target=be.prefill, args=("bench-bg", [{"role": "user", "content": text}]),
                                  kwargs={"cancel": cancel})
        worker.start()
        time.sleep(delay)
        t0 = time.perf_counter()
        be._acquire()
        waits.append(time.perf_counter() - t0)
        cancel.set()
        be._lock.release()
        worker.join()
    print("a turn's wait for the model while a 64-token batch runs: "
          + ", ".join(f"{w * 1000:.1f} ms" for w in waits))
    be.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
