"""The engine measuring itself, for `coach bench` and the bench scripts: prompt speed from an empty sequence,
the decode loop's tokens/s, and batched prompt processing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from coach.engine.kv import KVCache
from coach.engine.vocab import Vocab

BENCH = "__bench__"  # the speaker whose slot the measurements use (cleared before and after)


class Measure:
    """Timings of one loaded model, taken under its lock in a slot of its own."""

    def __init__(self, kv: KVCache, vocab: Vocab, lock: threading.Lock, n_ctx: int) -> None:
        self._kv, self._vocab, self._lock, self._n_ctx = kv, vocab, lock, n_ctx

    def time_prompt(self, tokens: list[int]) -> float:
        """Seconds to evaluate `tokens` from an empty sequence (prompt processing speed)."""
        with self._lock:
            slot, _ = self._kv.slot_for(BENCH)
            self._kv.clear(slot)
            t0 = time.perf_counter()
            self._kv.eval(slot, tokens, 0)
            dt = time.perf_counter() - t0
            self._kv.clear(slot)
            return dt

    def decode_rate(self, prompt: list[int], n: int) -> float:
        """Generated tokens/s through this engine's decode loop: greedy, `n` tokens, end-of-text ignored,
        timed from the first generated token (as llama-bench's tg)."""
        with self._lock:
            kv = self._kv
            slot, _ = kv.slot_for(BENCH)
            kv.clear(slot)
            kv.decode(slot, prompt, logits_last=True)
            sampler = self._vocab.sampler(seed=0, temperature=0, top_p=1, top_k=1, min_p=0, repeat_penalty=1.0)
            t0 = 0.0
            for i in range(n + 1):
                if i == 1:
                    t0 = time.perf_counter()
                tok = sampler.sample(kv.ctx, -1)
                sampler.accept(tok)
                self._vocab.piece(tok)
                kv.decode(slot, [tok], logits_last=True)
            dt = time.perf_counter() - t0
            sampler.close()
            kv.clear(slot)
            return n / dt

    def batch_rate(self, context: list[int], batch: Callable[[], list[int]], seconds: float) -> tuple[int, int, float]:
        """Prompt processing in batches of one size: after `context`, decode `batch()` batches for about
        `seconds` (or until the context is full). Returns (batches, tokens, seconds)."""
        with self._lock:
            kv = self._kv
            slot, _ = kv.slot_for(BENCH)
            kv.clear(slot)
            kv.eval(slot, context, 0)
            n = tokens = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                b = batch()
                if len(slot.tokens) + len(b) >= self._n_ctx:
                    break
                kv.decode(slot, b, logits_last=False)
                n, tokens = n + 1, tokens + len(b)
            dt = time.perf_counter() - t0
            kv.clear(slot)
            return n, tokens, dt
