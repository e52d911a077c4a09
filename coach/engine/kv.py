"""The KV cache's slots: one sequence per resident speaker, evicted least recently used first (its state
kept in RAM), and the decode calls that fill them."""

from __future__ import annotations

import ctypes
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from coach.errors import CoachError


@dataclass
class Slot:
    seq: int
    owner: str | None = None
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cells hold, in order


@dataclass
class Evicted:
    tokens: list[int]
    data: Any  # ctypes buffer from llama_state_seq_get_data
    n_bytes: int


class KVSlots:
    """Mixed into `LlamaBackend`: the slot table and decoding into a slot."""

    _ctx: Any
    _batch: Any
    _slots: list[Slot]
    _lru: OrderedDict[str, Slot]
    _evicted: OrderedDict[str, Evicted]
    _lock: threading.Lock
    max_evicted: int
    speaker_cache: bool
    n_batch: int

    def _slot_for(self, speaker: str) -> tuple[Slot, float]:
        """`speaker`'s slot, taking the least recently used one if it has none. Returns (slot, ms restoring)."""
        slot = self._lru.get(speaker)
        if slot is not None:
            self._lru.move_to_end(speaker)
            return slot, 0.0
        t0 = time.perf_counter()
        free = [s for s in self._slots if s.owner is None]
        if free:
            slot = free[0]
        else:
            victim, slot = next(iter(self._lru.items()))
            self._evict(victim, slot)
        self._clear(slot)
        slot.owner = speaker
        self._lru[speaker] = slot
        saved = self._evicted.pop(speaker, None)
        if saved is not None and self.speaker_cache:
            self._restore(slot, saved)
        return slot, (time.perf_counter() - t0) * 1000

    def _evict(self, speaker: str, slot: Slot) -> None:
        import llama_cpp

        del self._lru[speaker]
        if self.speaker_cache and slot.tokens:
            size = int(llama_cpp.llama_state_seq_get_size(self._ctx.ctx, slot.seq))
            buf = (ctypes.c_uint8 * size)()
            n = int(llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buf, size, slot.seq))
            self._evicted[speaker] = Evicted(list(slot.tokens), buf, n)
            while len(self._evicted) > self.max_evicted:
                self._evicted.popitem(last=False)
        slot.owner = None

    def _restore(self, slot: Slot, saved: Evicted) -> None:
        import llama_cpp

        if int(llama_cpp.llama_state_seq_set_data(self._ctx.ctx, saved.data, saved.n_bytes, slot.seq)) == 0:
            self._clear(slot)  # could not restore: the turn evaluates the prompt from the start
        else:
            slot.tokens = list(saved.tokens)

    def _clear(self, slot: Slot) -> None:
        self._ctx.kv_cache_seq_rm(slot.seq, 0, -1)
        slot.tokens = []

    def _truncate(self, slot: Slot, keep: int) -> None:
        import llama_cpp

        if keep < len(slot.tokens):
            llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq, keep, -1)
            del slot.tokens[keep:]

    def _decode(self, slot: Slot, tokens: list[int], logits_last: bool, abortable: bool = False) -> bool:
        """Evaluate `tokens` after the slot's cells. Returns False only when `abortable` and the batch was
        aborted (a turn wants the model): llama.cpp has dropped the unfinished part, the slot says what
        it holds."""
        import llama_cpp

        b = self._batch
        pos = len(slot.tokens)
        b.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = t
            b.pos[i] = pos + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = slot.seq
            b.logits[i] = False
        b.logits[len(tokens) - 1] = logits_last
        rc = llama_cpp.llama_decode(self._ctx.ctx, b)
        if rc == 2 and abortable:
            kept = int(llama_cpp.llama_memory_seq_pos_max(self._ctx.memory, slot.seq)) + 1 - pos
            slot.tokens += tokens[:max(0, kept)]
            return False
        if rc != 0:
            raise CoachError(f"llama.cpp could not evaluate the prompt (llama_decode returned {rc}); "
                             "start a new session or lower --ctx")
        slot.tokens += tokens
        return True

    def _eval(self, slot: Slot, tokens: list[int], start: int) -> None:
        """Evaluate `tokens[start:]` after the slot's first `start` cells, in `n_batch` batches; logits for
        the last token only."""
        for i in range(start, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            self._decode(slot, chunk, logits_last=i + len(chunk) >= len(tokens))

    def _common(self, slot: Slot, tokens: list[int]) -> int:
        k = 0
        for a, b in zip(slot.tokens, tokens, strict=False):
            if a != b:
                break
            k += 1
        return k

    def resident(self, speaker: str) -> int:
        """How many tokens of `speaker` sit in the KV cache now (tests, benchmarks)."""
        slot = self._lru.get(speaker)
        return len(slot.tokens) if slot is not None else 0

    def forget(self, speaker: str | None = None) -> None:
        """Drop cached prefixes (one speaker, or all: a new session)."""
        with self._lock:
            if speaker is None:
                for s in self._slots:
                    self._clear(s)
                    s.owner = None
                self._lru.clear()
                self._evicted.clear()
                return
            self._evicted.pop(speaker, None)
            slot = self._lru.pop(speaker, None)
            if slot is not None:
                self._clear(slot)
                slot.owner = None
