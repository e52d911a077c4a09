"""The in-process llama.cpp runtime: every panelist's prompt stays resident in llama.cpp's KV cache.

One context holds one KV sequence per slot (`slots`, default 4: three panelists and the committee),
each with its own stream of cells (llama.cpp's non-unified cache, so attention for one panelist never
scans the others' cells). Each stream starts at what a session needs (`fit.session_cells`: 3,072, a
full-length panel's thread is under 2,800 tokens) and grows, doubling up to `n_ctx`, when a longer
thread needs it: every resident speaker's cells are copied out, the context is rebuilt, and they are
copied back (a rare pause instead of 4 x 8,192 cells held from the start). A speaker keeps its slot;
its turn appends only the tokens that are new since its last turn (the layout guarantees its prefix
never moves), so switching speakers copies nothing. A state is copied out only to evict a speaker when
more speakers than slots are live (several UI tabs) or to persist an evaluated persona card on disk.

`prefill` evaluates what a speaker will read next while the candidate is still typing, in batches that
a real turn aborts as soon as it is waiting.

`LlamaBackend` owns its parts, as llama-cpp-python's `Llama` owns a model, a context and a batch: a
`Vocab` (`vocab.py`: tokens, the prompt layout, the sampler), a `KVCache` (`kv.py`: the context, the
slot table, decoding into a slot, growing), `PrefixFiles` (`prefix_files.py`: persona cards cached on
disk) and `Measure` (`measure.py`: what the benchmark times); `native.py` holds llama.cpp's process-wide
pieces. This file holds loading, the model's lock, a turn, background prefill and closing.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from coach.config import physical_cores
from coach.engine.base import Cancel, ChatBackend, TurnTimings  # noqa: F401  (re-exported: the engine's public names)
from coach.engine.kv import KVCache, common_prefix
from coach.engine.layout import Message
from coach.engine.measure import Measure
from coach.engine.native import (
    PREFILL_BATCH,
    PREFILL_BATCH_S,
    abort_callback,
    auto_gpu_layers,
    find_stop,
    free_vram,
    partial_stop,
    quiet_aborts,
)
from coach.engine.prefix_files import PrefixFiles
from coach.engine.vocab import Vocab
from coach.errors import CoachError, InvalidModelFile
from coach.models.fit import check_fits, session_cells
from coach.models.gguf import read_header

log = logging.getLogger("coach.engine")


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


KV_TYPES = {"f16": 1, "q8_0": 8}  # ggml type ids: the KV cache's cells as half floats, or 8-bit blocks

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
        kv_type: str = "f16",
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
            kv_type: the KV cells' type: "f16", or "q8_0" (half the memory; with llama.cpp's flash attention).
            speaker_cache: keep each speaker's prefix; False re-evaluates every prompt (for comparison).
            use_mmap: map the file instead of reading it. None = off when every layer runs on the CPU:
                llama.cpp repacks the weights into its own buffers there, and a mapped file would hold
                them a second time (measured: docs/benchmark.md).
            max_evicted: evicted speakers' states kept in RAM (least recently used dropped first).
            check_memory: refuse a model larger than free RAM (weights + every slot's KV) before loading.
        """
        import llama_cpp
        from llama_cpp._internals import LlamaModel
        from llama_cpp._logger import set_verbose

        set_verbose(verbose)
        quiet_aborts()
        self.info = read_header(model_path)
        self.n_ctx = min(n_ctx, self.info.n_ctx_train)
        cells = session_cells(self.n_ctx, self.info.n_ctx_train)  # each slot's cells now; grown on demand
        self.n_slots = max(1, slots)
        self.n_gpu_layers = auto_gpu_layers(self.info, cells, self.n_slots) if n_gpu_layers is None \
            else n_gpu_layers
        self.check_memory = check_memory
        self._offloaded = self.n_gpu_layers if llama_cpp.llama_supports_gpu_offload() else 0
        if check_memory:  # offloaded layers and their KV need VRAM, not RAM
            check_fits(self.info, cells, self.n_slots, self._offloaded,
                       free_vram() if self._offloaded else None)
        self.n_threads = n_threads or physical_cores()
        self.use_mmap = (self.n_gpu_layers != 0) if use_mmap is None else use_mmap
        self.seed = seed
        self.speaker_cache = speaker_cache
        # Wraps every turn's sampler when set: a benchmark makes the engine say a fixed text through its
        # own sampler chain (whose cost is real), at the model's true decoding speed.
        self.sampler_hook: Callable[[Any], Any] | None = None
        if kv_type not in KV_TYPES:
            raise CoachError(f"KV cache type {kv_type!r}: use one of {', '.join(KV_TYPES)}")
        self.kv_type = kv_type
        t0 = time.perf_counter()
        mparams = llama_cpp.llama_model_default_params()
        mparams.n_gpu_layers = self.n_gpu_layers
        # llama-cpp-python 0.3.36 has `load_mode`, not `use_mmap` (setting that attribute does nothing)
        mparams.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP if self.use_mmap else llama_cpp.LLAMA_LOAD_MODE_NONE
        cparams = llama_cpp.llama_context_default_params()
        cparams.n_batch = cparams.n_ubatch = n_batch
        cparams.n_threads = cparams.n_threads_batch = self.n_threads
        cparams.kv_unified = False
        if kv_type != "f16":  # a quantized V cache needs llama.cpp's flash attention
            cparams.type_k = cparams.type_v = KV_TYPES[kv_type]
            cparams.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        self._abort_flag = ctypes.create_string_buffer(2)
        self._abort_cb = abort_callback()  # referenced for the context's lifetime
        self.abortable = self._abort_cb is not None
        try:
            self._model = LlamaModel(path_model=str(self.info.path), params=mparams, verbose=verbose)
            self.kv = KVCache(self._model, cparams, n_slots=self.n_slots, cells=cells, n_batch=n_batch,
                              speaker_cache=speaker_cache, max_evicted=max_evicted, on_context=self._set_abort,
                              verbose=verbose)
        except (ValueError, RuntimeError, OSError) as exc:
            raise InvalidModelFile(
                f"llama.cpp could not load {self.info.path.name} ({self.info.architecture}): {exc}; "
                "update llama-cpp-python or use another GGUF"
            ) from None
        self.load_s = time.perf_counter() - t0
        self.vocab = Vocab(self._model, self.info)
        self.layout = self.vocab.layout
        self.rendering = self.vocab.rendering
        self._lock = threading.Lock()  # one model, many callers (UI tabs, prefill threads): one batch at a time
        self._waiting = 0  # turns waiting for the lock: a prefill yields to them (aborts its batch)
        self._abort_lock = threading.Lock()  # orders _waiting, _prefilling and the abort flag
        self._prefilling = False  # a prefill batch holds the model (only those are ever aborted)
        self.prefixes = PrefixFiles(self.kv, self.layout, self.info, kv_type, self._lock, self._extend)
        self.measure = Measure(self.kv, self.vocab, self._lock, self.n_ctx)
        self._prefill_rate = 0.0  # measured prompt tokens/s, to size prefill batches
        self._closed = False
        self._closing = threading.Event()  # set at exit: stop evaluating so the model can be freed safely
        _LIVE.add(self)
        self.timings: TurnTimings | None = None

    @property
    def cells(self) -> int:
        """Each slot's KV cells now (grown on demand up to `n_ctx`)."""
        return self.kv.cells

    def _set_abort(self, ctx: Any) -> None:
        import llama_cpp

        if self._abort_cb is not None:
            llama_cpp.llama_set_abort_callback(ctx.ctx, self._abort_cb, ctypes.cast(self._abort_flag, ctypes.c_void_p))

    def _ensure_cells(self, need: int) -> None:
        """Grow every slot's cells to hold `need` tokens (doubling, at most `n_ctx`), the fit checked first.
        Called with the lock held."""
        cells = self.kv.cells
        if need <= cells or cells >= self.n_ctx:
            return
        new = min(self.n_ctx, max(need, 2 * cells))
        if self.check_memory:
            check_fits(self.info, new, self.n_slots, self._offloaded, free_vram() if self._offloaded else None)
        self.kv.grow(new)

    # ------------------------------------------------------------------ text and tokens

    def tokenize_text(self, text: str) -> list[int]:
        """Plain text to tokens: no BOS, control-token names stay text."""
        return self.vocab.tokenize_text(text)

    def text_of(self, tokens: list[int]) -> str:
        """Tokens back to text, as the model would print them."""
        return self.vocab.text_of(tokens)

    @property
    def eos_token(self) -> int:
        return self.vocab.eos_token

    def render(self, messages: list[Message]) -> str:
        return self.layout.render(messages)

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        return self.layout.tokens(messages)

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

    def _stream(self, speaker: str, tokens: list[int], *, t0: float, wait: float, max_tokens: int, stop: list[str],
                seed: int, **sampling: Any) -> Iterator[str]:
        budget = self.n_ctx - len(tokens)
        if budget < 8:
            raise CoachError(
                f"the conversation ({len(tokens)} tokens) no longer fits the context ({self.n_ctx}); "
                "start a new session or raise --ctx"
            )
        self._ensure_cells(min(self.n_ctx, len(tokens) + min(max_tokens, budget)))
        kv = self.kv
        slot, restore_ms = kv.slot_for(speaker)
        if not self.speaker_cache:
            kv.clear(slot)
        keep = min(common_prefix(slot.tokens, tokens), len(tokens) - 1)  # the last token is evaluated for its logits
        kv.truncate(slot, keep)
        cached = keep
        t_prompt = time.perf_counter()
        kv.eval(slot, tokens, keep)
        prompt_s = time.perf_counter() - t_prompt
        sampler = self.vocab.sampler(seed=seed, **sampling)
        if self.sampler_hook is not None:
            sampler = self.sampler_hook(sampler)
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
                tok = sampler.sample(kv.ctx, -1)
                sampler.accept(tok)
                n_gen += 1
                if self.vocab.is_end(tok):
                    finish = "stop"
                    break
                pending += self.vocab.piece(tok)
                try:
                    text = pending.decode("utf-8")
                    pending = b""
                except UnicodeDecodeError:
                    text = ""
                    if len(pending) > 8:
                        text, pending = pending.decode("utf-8", errors="replace"), b""
                held += text
                hit = find_stop(held, stop)
                if hit is not None:
                    out = held[:hit]
                    held = ""
                    if out:
                        first = first or time.perf_counter()
                        yield out
                    finish = "stop"
                    break
                safe = len(held) - partial_stop(held, stop)
                if safe > 0:
                    first = first or time.perf_counter()
                    yield held[:safe]
                    held = held[safe:]
                t_e = time.perf_counter()
                kv.decode(slot, [tok], logits_last=True)
                eval_s += time.perf_counter() - t_e
            if held and finish != "stop":
                first = first or time.perf_counter()
                yield held
        finally:
            sampler.close()
            if not self.speaker_cache:
                kv.clear(slot)
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
                cancel: Cancel | None = None) -> int:
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

    def _extend(self, speaker: str, tokens: list[int], cancel: Cancel | None) -> int:
        done = 0
        while True:
            if self._waiting or self._closing.is_set() or (cancel is not None and cancel.is_set()):
                return done
            with self._lock:
                if self._closed or self._closing.is_set():
                    return done
                if len(tokens) >= self.n_ctx:
                    return done
                self._ensure_cells(len(tokens) + 1)
                slot, _ = self.kv.slot_for(speaker)
                keep = common_prefix(slot.tokens, tokens)
                if keep >= len(tokens):
                    return done
                self.kv.truncate(slot, keep)
                rate = int(self._prefill_rate * PREFILL_BATCH_S)
                if self.abortable:
                    step = min(self.kv.n_batch, max(PREFILL_BATCH, rate))
                else:
                    step = max(4, min(self.kv.n_batch, rate)) if rate else 16
                chunk = tokens[keep:keep + step]
                with self._abort_lock:
                    if self._waiting or self._closing.is_set():
                        return done
                    self._prefilling = True
                before = len(slot.tokens)
                t0 = time.perf_counter()
                try:
                    finished = self.kv.decode(slot, chunk, logits_last=False, abortable=True)
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

    def interrupt(self) -> None:
        """Stop the background batch in flight now: the draft it was reading is stale (the answer was sent).
        What it had not finished is dropped, what was read before it is kept."""
        self._interrupt()

    def wait_behind_prefill(self, speaker: str, text: str, delay: float) -> float:
        """Seconds a turn waits for the model when background reading of `text` for `speaker` has run for
        `delay` seconds: the abort takes the batch in flight at its next graph node."""
        self.forget(speaker)
        cancel = threading.Event()
        worker = threading.Thread(target=self.prefill, args=(speaker, [{"role": "user", "content": text}]),
                                  kwargs={"cancel": cancel})
        worker.start()
        time.sleep(delay)
        waited = self._acquire()
        cancel.set()
        self._lock.release()
        worker.join()
        return waited

    # ------------------------------------------------------------------ housekeeping

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        """Make `speaker`'s known prompt resident, from the on-disk prefix cache when it is there
        (`PrefixFiles.warm`). Returns tokens evaluated."""
        return self.prefixes.warm(speaker, messages, cache_dir, holdback=holdback, whole=whole, cancel=cancel)

    def load_card(self, speaker: str, messages: list[Message], cache_dir: Path) -> int:
        """`speaker`'s persona card resident: from `cache_dir` when read before, else read and kept there."""
        return self.prefixes.card(speaker, messages, cache_dir)

    def read_cards(self, cards: list[Message], cache_dir: Path, *, cancel: Cancel | None = None) -> int:
        """Read persona cards into the on-disk prefix cache when a model loads (`PrefixFiles.read_cards`)."""
        return self.prefixes.read_cards(cards, cache_dir, cancel=cancel)

    def resident(self, speaker: str) -> int:
        """How many tokens of `speaker` sit in the KV cache now (tests, benchmarks; read without the lock)."""
        return self.kv.resident(speaker)

    def forget(self, speaker: str | None = None) -> None:
        """Drop cached prefixes (one speaker, or all: a new session)."""
        with self._lock:
            self.kv.drop(speaker)

    @property
    def turn_waiting(self) -> bool:
        """A turn is waiting for the model: background work should step aside."""
        return self._waiting > 0

    def close(self) -> None:
        """Free the model once any turn in progress has finished; later calls get a clear error."""
        self._acquire()  # aborts a prefill batch rather than waiting for it
        try:
            if self._closed:
                return
            self._closed = True
            self.kv.close()
            self._model.close()
        finally:
            self._lock.release()


