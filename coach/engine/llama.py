"""The in-process llama.cpp runtime: every panelist's prompt stays resident in llama.cpp's KV cache.

One context holds one KV sequence per slot (`slots`, default 4: three panelists and the committee),
each with its own stream of `n_ctx` cells (llama.cpp's non-unified cache, so attention for one
panelist never scans the others' cells). A speaker keeps its slot; its turn appends only the tokens
that are new since its last turn (the layout guarantees its prefix never moves), so switching
speakers copies nothing. A state is copied out only to evict a speaker when more speakers than slots
are live (several UI tabs) or to persist an evaluated persona card on disk.

`prefill` evaluates what a speaker will read next while the candidate is still typing, in small
batches that yield to a real turn as soon as one is waiting.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from coach.config import physical_cores
from coach.engine.layout import Layout, Message
from coach.errors import CoachError, InvalidModelFile
from coach.fit import check_fits, gpu_layers_that_fit
from coach.gguf import GGUFInfo, read_header

log = logging.getLogger("coach.engine")


@dataclass
class TurnTimings:
    """One turn, as the engine counted and timed it (tokens it handed to llama_decode, wall clock)."""

    speaker: str
    prompt_tokens: int  # the whole prompt, as tokenized
    cached_tokens: int  # prompt tokens not evaluated again (resident in the KV cache)
    prompt_eval_tokens: int  # prompt tokens llama.cpp evaluated this turn
    prompt_eval_ms: float  # time llama.cpp spent on them
    generated_tokens: int
    eval_ms: float  # time decoding generated tokens
    restore_ms: float  # bringing this speaker's KV back (0 unless it had been evicted)
    ttft_s: float  # wall clock: call -> first text chunk
    total_s: float  # wall clock: call -> last chunk
    finish_reason: str
    wait_s: float = 0.0  # waiting for a background prefill batch to end

    @property
    def gen_tokens_per_s(self) -> float:
        """Generation speed: decode of each new token."""
        n = max(0, self.generated_tokens - 1)
        return n / (self.eval_ms / 1000) if self.eval_ms > 0 and n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gen_tokens_per_s": round(self.gen_tokens_per_s, 2)}


class ChatBackend(Protocol):
    """The seam: stream one speaker's turn as text chunks; `timings` describes the last turn."""

    timings: TurnTimings | None

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str]: ...


@dataclass
class _Slot:
    seq: int
    owner: str | None = None
    tokens: list[int] = field(default_factory=list)  # what this sequence's KV cells hold, in order


@dataclass
class _Evicted:
    tokens: list[int]
    data: Any  # ctypes buffer from llama_state_seq_get_data
    n_bytes: int


def auto_gpu_layers(info: GGUFInfo, n_ctx: int, slots: int = 1) -> int:
    """The most layers that fit the GPU: all (-1) when this build can offload and weights plus every
    slot's KV fit in free VRAM, else as many whole layers as fit (the rest run on the CPU), else 0."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return 0
    free = _free_vram()
    if free is None:
        return -1  # Metal/Vulkan builds: no nvidia-smi; llama.cpp itself falls back if it cannot fit
    return gpu_layers_that_fit(info, n_ctx, slots, free)


def _free_vram() -> int | None:
    from coach.doctor import nvidia_gpus

    gpus = nvidia_gpus()
    return max(g.free for g in gpus) if gpus else None


# Background reading (prefill) runs in batches. llama.cpp's batched kernels want size: on a 7B Q4_K_M on
# 2 cores, 4-token batches read 8.5 tokens/s and 64-token batches 17.4 (README, "Engine"). A batch of 64
# takes 3.7 s there, so a turn that wants the model aborts it through llama.cpp's abort callback (it
# stops within milliseconds; the partial batch is dropped). Where no abort callback can be installed,
# batches are sized to take about PREFILL_BATCH_S, so a turn waits at most that long.
PREFILL_BATCH = 64
PREFILL_BATCH_S = 0.4


_LOG_FILTER: Any = None


def _quiet_aborts() -> None:
    """llama.cpp logs, at error level, the cleanup after every aborted batch ("removing memory module
    entries"); an aborted background batch is the engine working as designed, so that line is dropped
    and everything else goes to llama-cpp-python's own logger as before."""
    global _LOG_FILTER
    if _LOG_FILTER is not None:
        return
    import llama_cpp
    from llama_cpp import _logger

    def log(level: int, text: bytes, user_data: Any) -> None:
        if b"removing memory module entries" not in text:
            _logger.llama_log_callback(level, text, user_data)

    _LOG_FILTER = llama_cpp.llama_log_callback(log)
    llama_cpp.llama_log_set(_LOG_FILTER, ctypes.c_void_p(0))


def _abort_callback() -> Any:
    """An abort callback that needs no Python: llama.cpp calls it between graph nodes from its compute
    thread, and a Python callback would take the GIL there, a thousand times a batch. libc's strlen on a
    two-byte flag buffer answers the same question: 0 (empty string) goes on, 1 stops. None where libc
    cannot be found (the engine then falls back to short batches)."""
    import llama_cpp

    try:
        libc = ctypes.CDLL(None) if os.name != "nt" else ctypes.cdll.msvcrt
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):
        return None
    return llama_cpp.ggml_abort_callback(address) if address else None

_LIVE: weakref.WeakSet[LlamaBackend] = weakref.WeakSet()


@atexit.register
def _quiesce() -> None:
    """At exit, let any turn or prefill running in a background thread reach the end of its llama.cpp
    batch before the interpreter frees the model under it."""
    for backend in list(_LIVE):
        backend._closing.set()
        backend._interrupt()
        if backend._lock.acquire(timeout=30):
            backend._lock.release()


class LlamaBackend:
    """A GGUF loaded through llama-cpp-python, one resident KV sequence per speaker."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 8192,
        slots: int = 4,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        seed: int = 42,
        n_batch: int = 512,
        speaker_cache: bool = True,
        use_mmap: bool | None = None,
        max_evicted: int = 12,
        check_memory: bool = True,
        verbose: bool = False,
    ) -> None:
        """
        Args:
            model_path: a .gguf file; its header is validated before llama.cpp sees it.
            n_ctx: context per speaker (each slot's stream); capped at the model's trained context.
            slots: speakers resident at once (each one KV sequence of `n_ctx` cells).
            n_threads: CPU threads; default the number of physical cores.
            n_gpu_layers: layers to offload; None = auto (all if supported and it fits, else 0).
            seed: default sampling seed (each turn may pass its own).
            speaker_cache: keep each speaker's prefix; False re-evaluates every prompt (for comparison).
            use_mmap: map the file instead of reading it. None = off when every layer runs on the CPU:
                llama.cpp repacks the weights into its own buffers there, and a mapped file would hold
                them a second time (measured: README, "Memory").
            max_evicted: evicted speakers' states kept in RAM (least recently used dropped first).
            check_memory: refuse a model larger than free RAM (weights + every slot's KV) before loading.
        """
        import llama_cpp
        from llama_cpp._internals import LlamaContext, LlamaModel
        from llama_cpp._logger import set_verbose

        set_verbose(verbose)
        _quiet_aborts()
        self.info = read_header(model_path)
        self.n_ctx = min(n_ctx, self.info.n_ctx_train)
        self.n_slots = max(1, slots)
        self.n_gpu_layers = auto_gpu_layers(self.info, self.n_ctx, self.n_slots) if n_gpu_layers is None \
            else n_gpu_layers
        if check_memory:  # offloaded layers and their KV need VRAM, not RAM
            offloaded = self.n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
            check_fits(self.info, self.n_ctx, self.n_slots, offloaded, _free_vram() if offloaded else None)
        self.n_threads = n_threads or physical_cores()
        self.use_mmap = (self.n_gpu_layers != 0) if use_mmap is None else use_mmap
        self.seed = seed
        self.speaker_cache = speaker_cache
        self.n_batch = n_batch
        t0 = time.perf_counter()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = self.n_gpu_layers
        # llama-cpp-python 0.3.36 has `load_mode`, not `use_mmap` (setting that attribute does nothing)
        mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if self.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_ctx = self.n_ctx * self.n_slots
        cparams.n_batch = cparams.n_ubatch = n_batch
        cparams.n_threads = cparams.n_threads_batch = self.n_threads
        cparams.n_seq_max = self.n_slots
        cparams.kv_unified = False
        try:
            self._model = LlamaModel(path_model=str(self.info.path), params=mparams, verbose=verbose)
            self._ctx = LlamaContext(model=self._model, params=cparams, verbose=verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise InvalidModelFile(
                f"llama.cpp could not load {self.info.path.name} ({self.info.architecture}): {exc}; "
                "update llama-cpp-python or use another GGUF"
            ) from None
        self.load_s = time.perf_counter() - t0
        self._vocab = self._model.vocab
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.layout = self._make_layout()
        self._slots = [_Slot(i) for i in range(self.n_slots)]
        self._lru: OrderedDict[str, _Slot] = OrderedDict()  # speaker -> its slot, least recently used first
        self._evicted: OrderedDict[str, _Evicted] = OrderedDict()
        self.max_evicted = max_evicted
        self._lock = threading.Lock()  # one model, many callers (UI tabs, prefill threads): one batch at a time
        self._waiting = 0  # turns waiting for the lock: a prefill yields to them (aborts its batch)
        self._abort_lock = threading.Lock()  # orders _waiting, _prefilling and the abort flag
        self._prefilling = False  # a prefill batch holds the model (only those are ever aborted)
        self._abort_flag = ctypes.create_string_buffer(2)
        self._abort_cb = _abort_callback()  # referenced for the context's lifetime
        if self._abort_cb is not None:
            llama_cpp.llama_set_abort_callback(self._ctx.ctx, self._abort_cb,
                                               ctypes.cast(self._abort_flag, ctypes.c_void_p))
        self.abortable = self._abort_cb is not None
        self._prefill_rate = 0.0  # measured prompt tokens/s, to size prefill batches
        self._closed = False
        self._closing = threading.Event()  # set at exit: stop evaluating so the model can be freed safely
        _LIVE.add(self)
        self.timings: TurnTimings | None = None

    # ------------------------------------------------------------------ tokens

    def _make_layout(self) -> Layout:
        import llama_cpp

        specials: dict[str, int] = {}
        for i in range(self._n_vocab):
            attr = llama_cpp.llama_vocab_get_attr(self._vocab, i)
            if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED):
                text = self._piece(i, special=True).decode("utf-8", errors="replace")
                if text and text not in specials:
                    specials[text] = i
        bos_id, eos_id = llama_cpp.llama_vocab_bos(self._vocab), llama_cpp.llama_vocab_eos(self._vocab)
        bos = self._piece(bos_id, special=True).decode() if bos_id >= 0 else ""
        eos = self._piece(eos_id, special=True).decode() if eos_id >= 0 else ""
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and bos_id >= 0
        probe = self.tokenize_text("a")
        dummy = bool(probe) and self._piece(probe[0]).startswith(b" ")
        return Layout(self.info.chat_template or _FALLBACK_TEMPLATE, bos=bos, eos=eos, specials=specials,
                      tokenize_text=self.tokenize_text, dummy_prefix=dummy, bos_id=bos_id if add_bos else None)

    def _piece(self, token: int, special: bool = False) -> bytes:
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def tokenize_text(self, text: str) -> list[int]:
        """Plain text to tokens: no BOS, control-token names stay text."""
        import llama_cpp

        data = text.encode("utf-8", errors="replace")
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, False, False)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, False, False)
        return list(buf[:n])

    def render(self, messages: list[Message]) -> str:
        return self.layout.render(messages)

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        return self.layout.tokens(messages)

    # ------------------------------------------------------------------ slots

    def _slot_for(self, speaker: str) -> tuple[_Slot, float]:
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

    def _evict(self, speaker: str, slot: _Slot) -> None:
        import llama_cpp

        del self._lru[speaker]
        if self.speaker_cache and slot.tokens:
            size = int(llama_cpp.llama_state_seq_get_size(self._ctx.ctx, slot.seq))
            buf = (ctypes.c_uint8 * size)()
            n = int(llama_cpp.llama_state_seq_get_data(self._ctx.ctx, buf, size, slot.seq))
            self._evicted[speaker] = _Evicted(list(slot.tokens), buf, n)
            while len(self._evicted) > self.max_evicted:
                self._evicted.popitem(last=False)
        slot.owner = None

    def _restore(self, slot: _Slot, saved: _Evicted) -> None:
        import llama_cpp

        if int(llama_cpp.llama_state_seq_set_data(self._ctx.ctx, saved.data, saved.n_bytes, slot.seq)) == 0:
            self._clear(slot)  # could not restore: the turn evaluates the prompt from the start
        else:
            slot.tokens = list(saved.tokens)

    def _clear(self, slot: _Slot) -> None:
        self._ctx.kv_cache_seq_rm(slot.seq, 0, -1)
        slot.tokens = []

    def _truncate(self, slot: _Slot, keep: int) -> None:
        import llama_cpp

        if keep < len(slot.tokens):
            llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot.seq, keep, -1)
            del slot.tokens[keep:]

    def _decode(self, slot: _Slot, tokens: list[int], logits_last: bool, abortable: bool = False) -> bool:
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

    def _eval(self, slot: _Slot, tokens: list[int], start: int) -> None:
        """Evaluate `tokens[start:]` after the slot's first `start` cells, in `n_batch` batches; logits for
        the last token only."""
        for i in range(start, len(tokens), self.n_batch):
            chunk = tokens[i:i + self.n_batch]
            self._decode(slot, chunk, logits_last=i + len(chunk) >= len(tokens))

    def _common(self, slot: _Slot, tokens: list[int]) -> int:
        k = 0
        for a, b in zip(slot.tokens, tokens, strict=False):
            if a != b:
                break
            k += 1
        return k

    # ------------------------------------------------------------------ generation

    def _acquire(self) -> float:
        """Take the model for a turn, aborting a prefill batch that holds it."""
        t0 = time.perf_counter()
        with self._abort_lock:
            self._waiting += 1  # a prefill that has not started its batch sees this and yields
        self._interrupt()  # one that has is aborted
        try:
            self._lock.acquire()
        finally:
            with self._abort_lock:
                self._waiting -= 1
        return time.perf_counter() - t0

    def _interrupt(self) -> None:
        """Abort the prefill batch in flight, if any (a turn wants the model, or the process exits)."""
        with self._abort_lock:
            if self._prefilling:
                self._abort_flag[0] = b"\x01"

    def stream(
        self,
        speaker: str,
        messages: list[Message],
        *,
        max_tokens: int = 256,
        temperature: float = 0.7,
        top_p: float = 0.95,
        top_k: int = 40,
        min_p: float = 0.05,
        repeat_penalty: float = 1.1,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[str]:
        """Stream one turn of `speaker` as text chunks. `self.timings` is set when it finishes."""
        t0 = time.perf_counter()
        tokens = self.layout.tokens(messages)
        wait = self._acquire()
        try:
            if self._closed or self._closing.is_set():
                raise CoachError("this model was unloaded (another tab switched models); resume the session "
                                 "to go on with the model loaded now")
            yield from self._stream(speaker, tokens, t0=t0, wait=wait, max_tokens=max_tokens, stop=stop or [],
                                    seed=self.seed if seed is None else seed, temperature=temperature, top_p=top_p,
                                    top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty)
        finally:
            self._lock.release()

    def _sampler(self, *, seed: int, temperature: float, top_p: float, top_k: int, min_p: float,
                 repeat_penalty: float) -> Any:
        from llama_cpp._internals import LlamaSampler

        s = LlamaSampler()
        if repeat_penalty != 1.0:
            s.add_penalties(self._n_vocab, 64, repeat_penalty, 0.0, 0.0)
        if temperature <= 0:
            s.add_greedy()
            return s
        s.add_top_k(top_k)
        s.add_top_p(top_p, 1)
        s.add_min_p(min_p, 1)
        s.add_temp(temperature)
        s.add_dist(seed & 0xFFFFFFFF)
        return s

    def _stream(self, speaker: str, tokens: list[int], *, t0: float, wait: float, max_tokens: int, stop: list[str],
                seed: int, **sampling: Any) -> Iterator[str]:
        import llama_cpp

        budget = self.n_ctx - len(tokens)
        if budget < 8:
            raise CoachError(
                f"the conversation ({len(tokens)} tokens) no longer fits the context ({self.n_ctx}); "
                "start a new session or raise --ctx"
            )
        slot, restore_ms = self._slot_for(speaker)
        if not self.speaker_cache:
            self._clear(slot)
        keep = min(self._common(slot, tokens), len(tokens) - 1)  # the last token is evaluated for its logits
        self._truncate(slot, keep)
        cached = keep
        t_prompt = time.perf_counter()
        self._eval(slot, tokens, keep)
        prompt_s = time.perf_counter() - t_prompt
        sampler = self._sampler(seed=seed, **sampling)
        first: float | None = None
        finish, n_gen = "length", 0
        pending = b""  # bytes of an incomplete UTF-8 character
        held = ""  # text that may be the start of a stop string
        eval_s = 0.0
        try:
            for _ in range(min(max_tokens, budget)):
                if self._closing.is_set():
                    finish = "interrupted"
                    break
                tok = sampler.sample(self._ctx, -1)
                sampler.accept(tok)
                n_gen += 1
                if llama_cpp.llama_vocab_is_eog(self._vocab, tok):
                    finish = "stop"
                    break
                pending += self._piece(tok)
                try:
                    text = pending.decode("utf-8")
                    pending = b""
                except UnicodeDecodeError:
                    text = ""
                    if len(pending) > 8:
                        text, pending = pending.decode("utf-8", errors="replace"), b""
                held += text
                hit = _find_stop(held, stop)
                if hit is not None:
                    out = held[:hit]
                    held = ""
                    if out:
                        first = first or time.perf_counter()
                        yield out
                    finish = "stop"
                    break
                safe = len(held) - _partial_stop(held, stop)
                if safe > 0:
                    first = first or time.perf_counter()
                    yield held[:safe]
                    held = held[safe:]
                t_e = time.perf_counter()
                self._decode(slot, [tok], logits_last=True)
                eval_s += time.perf_counter() - t_e
            if held and finish != "stop":
                first = first or time.perf_counter()
                yield held
        finally:
            sampler.close()
            if not self.speaker_cache:
                self._clear(slot)
            p_eval = len(tokens) - cached
            self.timings = TurnTimings(
                speaker=speaker, prompt_tokens=len(tokens), cached_tokens=cached,
                prompt_eval_tokens=p_eval, prompt_eval_ms=prompt_s * 1000,
                generated_tokens=n_gen, eval_ms=eval_s * 1000,
                restore_ms=restore_ms, ttft_s=(first or time.perf_counter()) - t0,
                total_s=time.perf_counter() - t0, finish_reason=finish, wait_s=wait,
            )
            if p_eval > 0 and prompt_s > 0:
                self._prefill_rate = p_eval / prompt_s

    def complete(self, speaker: str, messages: list[Message], **sampling: Any) -> str:
        return "".join(self.stream(speaker, messages, **sampling))

    # ------------------------------------------------------------------ ahead of the turn

    def prefill(self, speaker: str, messages: list[Message], *, holdback: int = 1,
                cancel: threading.Event | None = None) -> int:
        """Evaluate what is already known of `speaker`'s next prompt, while the candidate is typing.

        `messages` is the speaker's thread whose last message holds what it will read so far (the
        turn appends to that text). We evaluate up to the end of that text minus `holdback` tokens (a
        token can merge across the boundary with what is appended). Batches are small and a waiting
        turn or `cancel` stops the work between them, with what was evaluated kept. Returns tokens
        evaluated.
        """
        if not self.speaker_cache:
            return 0
        tokens = self.layout.tokens(messages, upto_last=True)[:-holdback or None]
        return self._extend(speaker, tokens, cancel)

    def _extend(self, speaker: str, tokens: list[int], cancel: threading.Event | None) -> int:
        done = 0
        while True:
            if self._waiting or self._closing.is_set() or (cancel is not None and cancel.is_set()):
                return done
            with self._lock:
                if self._closed or self._closing.is_set():
                    return done
                slot, _ = self._slot_for(speaker)
                keep = self._common(slot, tokens)
                if keep >= len(tokens) or len(tokens) >= self.n_ctx:
                    return done
                self._truncate(slot, keep)
                rate = int(self._prefill_rate * PREFILL_BATCH_S)
                if self.abortable:
                    step = min(self.n_batch, max(PREFILL_BATCH, rate))
                else:
                    step = max(4, min(self.n_batch, rate)) if rate else 16
                chunk = tokens[keep:keep + step]
                with self._abort_lock:
                    if self._waiting or self._closing.is_set():
                        return done
                    self._prefilling = True
                before = len(slot.tokens)
                t0 = time.perf_counter()
                try:
                    finished = self._decode(slot, chunk, logits_last=False, abortable=True)
                finally:
                    with self._abort_lock:
                        self._prefilling = False
                        self._abort_flag[0] = b"\x00"
                dt = time.perf_counter() - t0
                done += len(slot.tokens) - before
                if not finished:
                    return done
                if dt > 0:
                    r = len(chunk) / dt
                    self._prefill_rate = r if not self._prefill_rate else 0.7 * self._prefill_rate + 0.3 * r

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: threading.Event | None = None) -> int:
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
        n = self._extend(speaker, tokens, cancel)
        if path is not None:
            with self._lock:
                slot = self._lru.get(speaker)
                if slot is not None and slot.tokens[:len(tokens)] == tokens and len(slot.tokens) >= len(tokens):
                    self._save_prefix(slot, len(tokens), path)
        return n

    def _cache_path(self, cache_dir: Path, tokens: list[int]) -> Path:
        st = self.info.path.stat()
        h = hashlib.sha256(f"{self.info.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|".encode())
        h.update(b",".join(str(t).encode() for t in tokens))
        return cache_dir / f"{h.hexdigest()[:32]}.kv"

    def _save_prefix(self, slot: _Slot, n: int, path: Path) -> None:
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

    # ------------------------------------------------------------------ measuring (coach bench, engine_bench)

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

    # ------------------------------------------------------------------ housekeeping

    @property
    def turn_waiting(self) -> bool:
        """A turn is waiting for the model: background work should step aside."""
        return self._waiting > 0

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

    def close(self) -> None:
        """Free the model once any turn in progress has finished; later calls get a clear error."""
        import llama_cpp

        self._acquire()  # aborts a prefill batch rather than waiting for it
        try:
            if self._closed:
                return
            self._closed = True
            self._evicted.clear()
            llama_cpp.llama_batch_free(self._batch)
            self._ctx.close()
            self._model.close()
        finally:
            self._lock.release()


def _find_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def _partial_stop(text: str, stops: list[str]) -> int:
    """Length of the longest tail of `text` that begins some stop string (held back until resolved)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if s.startswith(text[-n:]):
                best = max(best, n)
                break
    return best


# Used only when a GGUF carries no chat template (rare; old conversions): ChatML.
_FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
