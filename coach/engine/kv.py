"""The KV cache: one llama.cpp context with one sequence per resident speaker (each its own stream of cells),
the slot table (least recently used evicted first, its state kept in RAM), decoding into a slot, and
growing every stream when a longer thread needs it."""

from __future__ import annotations

import ctypes
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coach.errors import CoachError

log = logging.getLogger("coach.engine")


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


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    k = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        k += 1
    return k


class KVCache:
    """One context of `n_slots` sequences of `cells` cells each, and the speakers living in them.

    Not thread-safe: its owner (`LlamaBackend`) calls it with the model's lock held. `on_context` is called
    with every context this cache creates (the first and each one rebuilt larger), so the owner can attach
    its abort callback."""

    def __init__(self, model: Any, cparams: Any, *, n_slots: int, cells: int, n_batch: int, speaker_cache: bool,
                 max_evicted: int, on_context: Callable[[Any], None], verbose: bool = False) -> None:
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        self._model = model
        self._cparams = cparams
        self._on_context = on_context
        self.n_slots = n_slots
        self.cells = cells
        self.n_batch = n_batch
        self.speaker_cache = speaker_cache
        self.max_evicted = max_evicted
        cparams.n_ctx = cells * n_slots
        cparams.n_seq_max = n_slots
        self.ctx = LlamaContext(model=model, params=cparams, verbose=verbose)
        on_context(self.ctx)
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.slots = [Slot(i) for i in range(n_slots)]
        self.lru: OrderedDict[str, Slot] = OrderedDict()  # speaker -> its slot, least recently used first
        self.evicted: OrderedDict[str, Evicted] = OrderedDict()

    # ------------------------------------------------------------------ the slot table

    def slot_for(self, speaker: str) -> tuple[Slot, float]:
        """`speaker`'s slot, taking the least recently used one if it has none. Returns (slot, ms restoring)."""
        slot = self.lru.get(speaker)
        if slot is not None:
            self.lru.move_to_end(speaker)
            return slot, 0.0
        t0 = time.perf_counter()
        free = [s for s in self.slots if s.owner is None]
        if free:
            slot = free[0]
        else:
            victim, slot = next(iter(self.lru.items()))
            self._evict(victim, slot)
        self.clear(slot)
        slot.owner = speaker
        self.lru[speaker] = slot
        saved = self.evicted.pop(speaker, None)
        if saved is not None and self.speaker_cache:
            self._restore(slot, saved)
        return slot, (time.perf_counter() - t0) * 1000

    def _evict(self, speaker: str, slot: Slot) -> None:
        del self.lru[speaker]
        if self.speaker_cache and slot.tokens:
            data, n = self._copy_out(slot)
            self.evicted[speaker] = Evicted(list(slot.tokens), data, n)
            while len(self.evicted) > self.max_evicted:
                self.evicted.popitem(last=False)
        slot.owner = None

    def _copy_out(self, slot: Slot) -> tuple[Any, int]:
        import llama_cpp

        size = int(llama_cpp.llama_state_seq_get_size(self.ctx.ctx, slot.seq))
        buf = (ctypes.c_uint8 * size)()
        return buf, int(llama_cpp.llama_state_seq_get_data(self.ctx.ctx, buf, size, slot.seq))

    def _copy_in(self, slot: Slot, data: Any, n_bytes: int) -> bool:
        import llama_cpp

        return int(llama_cpp.llama_state_seq_set_data(self.ctx.ctx, data, n_bytes, slot.seq)) != 0

    def _restore(self, slot: Slot, saved: Evicted) -> None:
        if self._copy_in(slot, saved.data, saved.n_bytes):
            slot.tokens = list(saved.tokens)
        else:
            self.clear(slot)  # could not restore: the turn evaluates the prompt from the start

    def resident(self, speaker: str) -> int:
        """How many tokens of `speaker` sit in the cache now."""
        slot = self.lru.get(speaker)
        return len(slot.tokens) if slot is not None else 0

    def drop(self, speaker: str | None = None) -> None:
        """Drop cached prefixes: one speaker's, or every one (a new session)."""
        if speaker is None:
            for s in self.slots:
                self.clear(s)
                s.owner = None
            self.lru.clear()
            self.evicted.clear()
            return
        self.evicted.pop(speaker, None)
        slot = self.lru.pop(speaker, None)
        if slot is not None:
            self.clear(slot)
            slot.owner = None

    # ------------------------------------------------------------------ cells

    def clear(self, slot: Slot) -> None:
        self.ctx.kv_cache_seq_rm(slot.seq, 0, -1)
        slot.tokens = []

    def truncate(self, slot: Slot, keep: int) -> None:
        import llama_cpp

        if keep < len(slot.tokens):
            llama_cpp.llama_memory_seq_rm(self.ctx.memory, slot.seq, keep, -1)
            del slot.tokens[keep:]

    def decode(self, slot: Slot, tokens: list[int], logits_last: bool, abortable: bool = False) -> bool:
        """Evaluate `tokens` after the slot's cells. Returns False only when `abortable` and the batch was
        aborted (a turn wants the model): llama.cpp has dropped the unfinished part, the slot says what
        it holds."""
        import llama_cpp

        b = self.batch
        pos = len(slot.tokens)
        b.n_tokens = len(tokens)
        for i, t in enumerate(tokens):
            b.token[i] = t
            b.pos[i] = pos + i
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = slot.seq
            b.logits[i] = False
        b.logits[len(tokens) - 1] = logits_last
        rc = llama_cpp.llama_decode(self.ctx.ctx, b)
        if rc == 2 and abortable:
            kept = int(llama_cpp.llama_memory_seq_pos_max(self.ctx.memory, slot.seq)) + 1 - pos
            slot.tokens += tokens[:max(0, kept)]
            return False
        if rc != 0:
            raise CoachError(f"llama.cpp could not evaluate the prompt (llama_decode returned {rc}); "
                             "start a new session or lower --ctx")
        slot.tokens += tokens
        return True

    def eval(self, slot: Slot, tokens: list[int], start: int) -> None:
        """Evaluate `tokens[start:]` after the slot's first `start` cells, in `n_batch` batches; logits for
        the last token only."""
        for i in range(start, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            self.decode(slot, chunk, logits_last=i + len(chunk) >= len(tokens))

    def grow(self, cells: int) -> None:
        """Rebuild the context with `cells` cells a slot: resident speakers are copied out and back (one
        that cannot be copied back reads its prompt again at its next turn)."""
        from llama_cpp._internals import LlamaContext

        t0 = time.perf_counter()
        saved = {slot.seq: self._copy_out(slot) for slot in self.slots if slot.tokens}
        self.ctx.close()
        self._cparams.n_ctx = cells * self.n_slots
        self.ctx = LlamaContext(model=self._model, params=self._cparams, verbose=False)
        self._on_context(self.ctx)
        for slot in self.slots:
            if slot.seq in saved and not self._copy_in(slot, *saved[slot.seq]):
                slot.tokens = []
        log.info("KV cells grown from %d to %d a speaker in %.2f s", self.cells, cells, time.perf_counter() - t0)
        self.cells = cells

    def close(self) -> None:
        import llama_cpp

        self.evicted.clear()
        llama_cpp.llama_batch_free(self.batch)
        self.ctx.close()
