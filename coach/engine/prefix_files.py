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
import threading
from collections.abc import Callable
from pathlib import Path

from coach.engine.base import Cancel
from coach.engine.kv import KVCache, Slot, common_prefix
from coach.engine.layout import Layout, Message
from coach.models.gguf import GGUFInfo

log = logging.getLogger("coach.engine")

Extend = Callable[[str, list[int], Cancel | None], int]  # evaluate a speaker's tokens in yielding batches


class PrefixFiles:
    """`warm` and `read_cards`: evaluated prefixes saved to and loaded from files under a cache folder."""

    def __init__(self, kv: KVCache, layout: Layout, info: GGUFInfo, kv_type: str, lock: threading.Lock,
                 extend: Extend) -> None:
        self._kv, self._layout, self._info, self._kv_type = kv, layout, info, kv_type
        self._lock = lock  # the model's lock: held around every use of the cache
        self._extend = extend  # the engine's batched prefill, which steps aside for a waiting turn

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        """Make `speaker`'s known prompt resident, from the on-disk prefix cache when it is there.

        The prefix (up to the last message's text minus `holdback`, or the whole prompt but its last
        token with `whole`) is looked up under `cache_dir` by the model file and the exact tokens, so a
        later session with the same persona card and model starts without reading the card again.
        Returns tokens evaluated (0 when it came from disk or was already resident)."""
        if not self._kv.speaker_cache:
            return 0
        tokens = self._layout.tokens(messages, upto_last=not whole)[:-1 if whole else -holdback or None]
        path = self.cache_path(cache_dir, tokens) if cache_dir is not None else None
        if path is not None and path.exists() and self._load(speaker, tokens, path):
            return 0
        n = self.card(speaker, messages, cache_dir, within=tokens, cancel=cancel) if cache_dir is not None else 0
        n += self._extend(speaker, tokens, cancel)
        if path is not None:
            self._save_resident(speaker, tokens, path)
        return n

    def card(self, speaker: str, messages: list[Message], cache_dir: Path, *, within: list[int] | None = None,
             cancel: Cancel | None = None) -> int:
        """Make the persona card that opens `messages` resident for `speaker`: nothing when it is, from disk
        when this model read it before, else read now and kept on disk for the next session (the embedded
        model does not read cards ahead at load; a resumed session's panelists start with it). Only when the
        prompt (`within`, default the whole of `messages`) begins with the card. Returns tokens evaluated."""
        if not self._kv.speaker_cache or not messages or messages[0]["role"] != "system":
            return 0
        card = self.card_prefix(messages[0])
        if within is None:
            within = self._layout.tokens(messages, upto_last=True)
        if not card or within[:len(card)] != card or self._holds(speaker, card):
            return 0
        path = self.cache_path(cache_dir, card)
        if path.exists() and self._load(speaker, card, path):
            return 0
        n = self._extend(speaker, card, cancel)
        self._save_resident(speaker, card, path)
        return n

    def read_cards(self, cards: list[Message], cache_dir: Path, *, cancel: Cancel | None = None) -> int:
        """Read persona cards into the on-disk prefix cache before any session needs them (when a model
        loads); cards already there are skipped. Yields to any turn between batches. Returns tokens read."""
        done = 0
        for i, card in enumerate(cards):
            if cancel is not None and cancel.is_set():
                break
            tokens = self.card_prefix(card)
            path = self.cache_path(cache_dir, tokens)
            if not tokens or path.exists():
                continue
            speaker = f"cards/{i}"
            done += self._extend(speaker, tokens, cancel)
            self._save_resident(speaker, tokens, path)
            with self._lock:
                self._kv.drop(speaker)
        return done

    def card_prefix(self, card: Message) -> list[int]:
        """The tokens every thread that opens with `card` starts with, whatever its first turn says: the
        common part of two different openings, less one token (it may merge with what follows)."""
        a = self._layout.tokens([card, {"role": "user", "content": "Ask."}], upto_last=True)
        b = self._layout.tokens([card, {"role": "user", "content": "(Stay in role.) The candidate"}], upto_last=True)
        return a[:max(0, common_prefix(a, b) - 1)]

    def cache_path(self, cache_dir: Path, tokens: list[int]) -> Path:
        """The file for these exact tokens of this model file (and KV cell type: a state loads only into
        cells of its type)."""
        st = self._info.path.stat()
        kv = "" if self._kv_type == "f16" else f"{self._kv_type}|"
        h = hashlib.sha256(f"{self._info.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{kv}".encode())
        h.update(b",".join(str(t).encode() for t in tokens))
        return cache_dir / f"{h.hexdigest()[:32]}.kv"

    def _holds(self, speaker: str, tokens: list[int]) -> bool:
        """Whether `speaker`'s cells already begin with `tokens`."""
        with self._lock:
            slot = self._kv.lru.get(speaker)
            return slot is not None and common_prefix(slot.tokens, tokens) >= len(tokens)

    def _save_resident(self, speaker: str, tokens: list[int], path: Path) -> None:
        """Save `speaker`'s cells to `path` when they hold `tokens` (a prefill may have stopped short)."""
        with self._lock:
            slot = self._kv.lru.get(speaker)
            if slot is not None and slot.tokens[:len(tokens)] == tokens and len(slot.tokens) >= len(tokens):
                self._save(slot, len(tokens), path)

    def _save(self, slot: Slot, n: int, path: Path) -> None:
        import llama_cpp

        self._kv.truncate(slot, n)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        arr = (llama_cpp.llama_token * n)(*slot.tokens[:n])
        if llama_cpp.llama_state_seq_save_file(self._kv.ctx.ctx, str(tmp).encode(), slot.seq, arr, n):
            os.replace(tmp, path)
        else:
            tmp.unlink(missing_ok=True)

    def _load(self, speaker: str, tokens: list[int], path: Path) -> bool:
        import llama_cpp

        with self._lock:
            kv = self._kv
            slot, _ = kv.slot_for(speaker)
            if common_prefix(slot.tokens, tokens) >= len(tokens):
                return True
            kv.clear(slot)
            cap = len(tokens) + 1
            arr = (llama_cpp.llama_token * cap)()
            n_out = ctypes.c_size_t(0)
            ok = llama_cpp.llama_state_seq_load_file(kv.ctx.ctx, str(path).encode(), slot.seq, arr, cap,
                                                     ctypes.byref(n_out))
            if not ok or list(arr[:n_out.value]) != tokens:
                kv.clear(slot)
                log.info("prefix cache file %s did not load; evaluating the card instead", path.name)
                return False
            slot.tokens = list(tokens)
            return True
