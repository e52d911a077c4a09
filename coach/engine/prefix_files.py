"""Evaluated prefixes (persona cards) saved to disk, keyed by the model file and the exact tokens, so a
later session with the same card and model starts without reading the card again.

A card alone can be read before any session (`read_cards`, when a model loads): its file holds the
tokens every thread opening with that card starts with, and `warm` starts from it when the session's
own, longer prefix has no file yet, so even the first session on a new model reads only its opening
instruction at Start."""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from coach.engine.base import Cancel
from coach.engine.kv import KVSlots, Slot
from coach.engine.layout import Layout, Message
from coach.models.gguf import GGUFInfo

log = logging.getLogger("coach.engine")


class PrefixFiles(KVSlots):
    """Mixed into `LlamaBackend`: `warm` and the files behind it."""

    info: GGUFInfo
    layout: Layout
    kv_type: str
    _extend: Callable[[str, list[int], Cancel | None], int]  # LlamaBackend's batched prefill

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        """Make `speaker`'s known prompt resident, from the on-disk prefix cache when it is there.

        The prefix (up to the last message's text minus `holdback`, or the whole prompt but its last
        token with `whole`) is looked up under `cache_dir` by the model file and the exact tokens, so a
        later session with the same persona card and model starts without reading the card again.
        Returns tokens evaluated (0 when it came from disk or was already resident)."""
        if not self.speaker_cache:
            return 0
        tokens = self.layout.tokens(messages, upto_last=not whole)[:-1 if whole else -holdback or None]
        path = self._cache_path(cache_dir, tokens) if cache_dir is not None else None
        if path is not None and path.exists() and self._load_prefix(speaker, tokens, path):
            return 0
        if cache_dir is not None and messages and messages[0]["role"] == "system":  # the card read at load
            card = self.card_prefix(messages[0])
            card_path = self._cache_path(cache_dir, card)
            if card and tokens[:len(card)] == card and card_path.exists():
                self._load_prefix(speaker, card, card_path)
        n = self._extend(speaker, tokens, cancel)
        if path is not None:
            with self._lock:
                slot = self._lru.get(speaker)
                if slot is not None and slot.tokens[:len(tokens)] == tokens and len(slot.tokens) >= len(tokens):
                    self._save_prefix(slot, len(tokens), path)
        return n

    def _cache_path(self, cache_dir: Path, tokens: list[int]) -> Path:
        st = self.info.path.stat()
        kv = "" if self.kv_type == "f16" else f"{self.kv_type}|"  # a state loads only into cells of its type
        h = hashlib.sha256(f"{self.info.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{kv}".encode())
        h.update(b",".join(str(t).encode() for t in tokens))
        return cache_dir / f"{h.hexdigest()[:32]}.kv"

    def _save_prefix(self, slot: Slot, n: int, path: Path) -> None:
        import llama_cpp

        self._truncate(slot, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        arr = (llama_cpp.llama_token * n)(*slot.tokens[:n])
        if llama_cpp.llama_state_seq_save_file(self._ctx.ctx, str(tmp).encode(), slot.seq, arr, n):
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)

    def _load_prefix(self, speaker: str, tokens: list[int], path: Path) -> bool:
        import llama_cpp

        with self._lock:
            slot, _ = self._slot_for(speaker)
            if self._common(slot, tokens) >= len(tokens):
                return True
            self._clear(slot)
            cap = len(tokens) + 1
            arr = (llama_cpp.llama_token * cap)()
            n_out = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_seq_load_file(self._ctx.ctx, str(path).encode(), slot.seq, arr, cap,
                                                     ctypes.byref(n_out))
            if not ok or list(arr[:n_out.value]) != tokens:
                self._clear(slot)
                log.info("prefix cache file %s did not load; evaluating the card instead", path.name)
                return False
            slot.tokens = list(tokens)
            return True

    def card_prefix(self, card: Message) -> list[int]:
        """The tokens every thread that opens with `card` starts with, whatever its first turn says: the
        common part of two different openings, less one token (it may merge with what follows)."""
        a = self.layout.tokens([card, {"role": "user", "content": "Ask."}], upto_last=True)
        b = self.layout.tokens([card, {"role": "user", "content": "(Stay in role.) The candidate"}], upto_last=True)
        return a[:max(0, self._common_list(a, b) - 1)]

    @staticmethod
    def _common_list(a: list[int], b: list[int]) -> int:
        k = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            k += 1
        return k

    def read_cards(self, cards: list[Message], cache_dir: Path, *, cancel: Cancel | None = None) -> int:
        """Read persona cards into the on-disk prefix cache before any session needs them (when a model
        loads); cards already there are skipped. Yields to any turn between batches. Returns tokens read."""
        done = 0
        for i, card in enumerate(cards):
            if cancel is not None and cancel.is_set():
                break
            tokens = self.card_prefix(card)
            path = self._cache_path(cache_dir, tokens)
            if not tokens or path.exists():
                continue
            speaker = f"cards/{i}"
            done += self._extend(speaker, tokens, cancel)
            with self._lock:
                slot = self._lru.get(speaker)
                if slot is not None and slot.tokens[:len(tokens)] == tokens and len(slot.tokens) >= len(tokens):
                    self._save_prefix(slot, len(tokens), path)
            self.forget(speaker)
        return done
