"""The engine measuring itself, for `coach bench` and bench/engine_bench.py: prompt speed from an empty
sequence and the decode loop's tokens/s."""

from __future__ import annotations

import time
from collections.abc import Callable

from coach.engine.kv import KVSlots
from coach.engine.vocab import Vocab


class Measure(KVSlots, Vocab):
    """Mixed into `LlamaBackend`."""

    n_ctx: int

    def time_prompt(self, tokens: list[int]) -> float:
        """Seconds to evaluate `tokens` from an empty sequence (prompt processing speed)."""
        with self._lock:
            slot, _ = self._slot_for("__bench__")
            self._clear(slot)
            t0 = time.perf_counter()
            self._eval(slot, tokens, 0)
            dt = time.perf_counter() - t0
            self._clear(slot)
            return dt

    def decode_rate(self, prompt: list[int], n: int) -> float:
        """Generated tokens/s through this engine's decode loop: greedy, `n` tokens, end-of-text ignored,
        timed from the first generated token (as llama-bench's tg)."""
        with self._lock:
            slot, _ = self._slot_for("__bench__")
            self._clear(slot)
            self._decode(slot, prompt, logits_last=True)
            sampler = self._sampler(seed=0, temperature=0, top_p=1, top_k=1, min_p=0, repeat_penalty=1.0)
            t0 = 0.0
            for i in range(n + 1):
                if i == 1:
                    t0 = time.perf_counter()
                tok = sampler.sample(self._ctx, -1)
                sampler.accept(tok)
                self._piece(tok)
                self._decode(slot, [tok], logits_last=True)
            dt = time.perf_counter() - t0
            sampler.close()
            self._clear(slot)
            return n / dt

    def batch_rate(self, context: list[int], batch: Callable[[], list[int]], seconds: float) -> tuple[int, int, float]:
        """Prompt processing in batches of one size: after `context`, decode `batch()` batches for about
        `seconds` (or until the context is full). Returns (batches, tokens, seconds)."""
        with self._lock:
            slot, _ = self._slot_for("__bench__")
            self._clear(slot)
            self._eval(slot, context, 0)
            n = tokens = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                b = batch()
                if len(slot.tokens) + len(b) >= self.n_ctx:
                    break
                self._decode(slot, b, logits_last=False)
                n, tokens = n + 1, tokens + len(b)
            dt = time.perf_counter() - t0
            self._clear(slot)
            return n, tokens, dt
