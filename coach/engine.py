"""The llama.cpp runtime: load a GGUF, stream a chat turn, keep one KV prefix state per speaker.

The panel is three speakers over one model. Each speaker's prompt grows by appending (its persona
card, then the conversation as it saw it), so its previous prompt plus its own reply is a prefix of
its next prompt. We keep that speaker's KV state after its turn and restore it before its next one;
llama-cpp-python then evaluates only the tokens added since, instead of the whole transcript.
"""

from __future__ import annotations

import atexit
import ctypes
import shutil
import subprocess
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from coach.config import physical_cores
from coach.errors import CoachError, InvalidModelFile
from coach.gguf import GGUFInfo, read_header
from coach.models import check_fits_ram

Message = dict[str, str]  # OpenAI style: {"role": "system"|"user"|"assistant", "content": str}


@dataclass
class TurnTimings:
    """One turn, from llama.cpp's own counters and from the wall clock."""

    speaker: str
    prompt_tokens: int  # the whole prompt, as tokenized
    cached_tokens: int  # prompt tokens not evaluated again (kept in the KV cache)
    prompt_eval_tokens: int  # what llama.cpp evaluated for the prompt (its counter)
    prompt_eval_ms: float  # llama.cpp's prompt-processing time
    generated_tokens: int
    eval_ms: float  # llama.cpp's time decoding generated tokens
    restore_ms: float  # restoring this speaker's KV state
    ttft_s: float  # wall clock: call -> first text chunk
    total_s: float  # wall clock: call -> last chunk
    finish_reason: str

    @property
    def gen_tokens_per_s(self) -> float:
        """Generation speed from llama.cpp's counter (decode of each new token)."""
        n = max(0, self.generated_tokens - 1)
        return n / (self.eval_ms / 1000) if self.eval_ms > 0 and n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gen_tokens_per_s": round(self.gen_tokens_per_s, 2)}


@dataclass
class _SpeakerState:
    kv: Any  # ctypes byte array from llama_state_seq_get_data
    n_bytes: int
    tokens: Any  # numpy array of the token ids in the KV cells


class ChatBackend(Protocol):
    """The seam: stream one speaker's turn as text chunks; `timings` describes the last turn."""

    timings: TurnTimings | None

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str]: ...


def auto_gpu_layers(info: GGUFInfo, n_ctx: int) -> int:
    """All layers when this llama.cpp build can offload and the GPU has room, else 0 (CPU)."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return 0
    free = _free_vram()
    if free is None or info.estimate_ram(n_ctx) <= free:
        return -1  # Metal/Vulkan builds: no nvidia-smi; llama.cpp itself falls back if it cannot fit
    return 0


def _free_vram() -> int | None:
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
        return int(out.split()[0]) * 2**20
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


# Prefill evaluates in small batches so Ctrl-C or a closing app waits at most one of them. Measured
# on the embedded model (2 threads): 271 tok/s at 64 per batch vs 261 at 512, so it costs nothing.
PREFILL_CHUNK = 64

_LIVE: weakref.WeakSet[LlamaBackend] = weakref.WeakSet()


@atexit.register
def _quiesce() -> None:
    """At exit, let any turn or prefill running in a background thread (a UI worker, the CLI's
    prefill) reach the end of its llama.cpp batch before the interpreter frees the model under it."""
    for backend in list(_LIVE):
        backend._closing.set()  # running work stops at its next batch; new work is refused
        if backend._lock.acquire(timeout=10):  # a barrier: wait for that batch to end
            backend._lock.release()


class LlamaBackend:
    """A GGUF loaded through llama-cpp-python, with a KV prefix state per speaker."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        seed: int = 42,
        n_batch: int = 512,
        speaker_cache: bool = True,
        max_states: int = 12,
        check_memory: bool = True,
        verbose: bool = False,
    ) -> None:
        """
        Args:
            model_path: a .gguf file; its header is validated before llama.cpp sees it.
            n_ctx: context size; capped at the model's trained context.
            n_threads: CPU threads; default the number of physical cores.
            n_gpu_layers: layers to offload; None = auto (all if supported and it fits, else 0).
            seed: default sampling seed (each turn may pass its own).
            speaker_cache: keep and restore a KV state per speaker; False re-evaluates every prompt.
            max_states: how many speakers' states to keep (least recently used dropped first).
            check_memory: refuse a model larger than free RAM before loading it.
        """
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.info = read_header(model_path)
        self.n_ctx = min(n_ctx, self.info.n_ctx_train)
        if check_memory:
            check_fits_ram(self.info, self.n_ctx)
        self.n_threads = n_threads or physical_cores()
        self.n_gpu_layers = auto_gpu_layers(self.info, self.n_ctx) if n_gpu_layers is None else n_gpu_layers
        self.seed = seed
        self.speaker_cache = speaker_cache
        t0 = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(self.info.path), n_ctx=self.n_ctx, n_batch=n_batch, n_threads=self.n_threads,
                n_threads_batch=self.n_threads, n_gpu_layers=self.n_gpu_layers, seed=seed, verbose=verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise InvalidModelFile(
                f"llama.cpp could not load {self.info.path.name} ({self.info.architecture}): {exc}; "
                "update llama-cpp-python or use another GGUF"
            ) from None
        self.load_s = time.perf_counter() - t0
        eos_id, bos_id = self.llm.token_eos(), self.llm.token_bos()
        self._eos = self.llm._model.token_get_text(eos_id) if eos_id != -1 else ""
        self._bos = self.llm._model.token_get_text(bos_id) if bos_id != -1 else ""
        template = self.info.chat_template or _FALLBACK_TEMPLATE
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=self._eos, bos_token=self._bos)
        # speaker -> its KV prefix, least recently used first; bounded so many sessions cannot exhaust RAM
        self._states: OrderedDict[str, _SpeakerState] = OrderedDict()
        self.max_states = max_states
        self._owner: str | None = None  # whose tokens the live context holds
        self._lock = threading.Lock()  # one model, many callers (UI tabs): one turn at a time
        self._closed = False
        self._closing = threading.Event()  # set at exit: stop evaluating so the model can be freed safely
        _LIVE.add(self)
        self.timings: TurnTimings | None = None

    # ------------------------------------------------------------------ prompts

    def render(self, messages: list[Message]) -> str:
        """The chat template from the GGUF's metadata, with a generation prompt appended."""
        try:
            return self._formatter(messages=_normalize(messages)).prompt  # type: ignore[arg-type]
        except Exception as exc:  # jinja raise_exception(), e.g. roles that must alternate
            raise CoachError(f"the model's chat template rejected these messages ({exc}); use another GGUF") from None

    def tokenize(self, text: str) -> list[int]:
        add_bos = bool(self._bos) and not text.startswith(self._bos)
        return self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)

    # ------------------------------------------------------------------ generation

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
        with self._lock:
            if self._closed or self._closing.is_set():
                raise CoachError("this model was unloaded (another tab switched models); resume the session "
                                 "to go on with the model loaded now")
            yield from self._stream(speaker, messages, max_tokens=max_tokens, temperature=temperature,
                                    top_p=top_p, top_k=top_k, min_p=min_p, repeat_penalty=repeat_penalty,
                                    stop=stop, seed=seed)

    def _stream(self, speaker: str, messages: list[Message], *, max_tokens: int, stop: list[str] | None,
                seed: int | None, **sampling: Any) -> Iterator[str]:
        import llama_cpp

        t0 = time.perf_counter()
        tokens = self.tokenize(self.render(messages))
        budget = self.n_ctx - len(tokens)
        if budget < 8:
            raise CoachError(
                f"the conversation ({len(tokens)} tokens) no longer fits the context ({self.n_ctx}); "
                "start a new session or raise --ctx"
            )
        restore_ms = self._switch_to(speaker)
        ctx = self.llm._ctx.ctx
        llama_cpp.llama_perf_context_reset(ctx)
        first: float | None = None
        finish = "stop"
        n_gen = 0
        try:
            for chunk in self.llm.create_completion(
                prompt=tokens, max_tokens=min(max_tokens, budget), stop=stop or [], seed=self.seed if seed is None else seed,
                stream=True, **sampling,
            ):
                choice: dict[str, Any] = chunk["choices"][0]  # type: ignore[index,assignment]
                if self._closing.is_set():
                    finish = "interrupted"
                    break
                n_gen += 1
                text = choice["text"]
                if choice.get("finish_reason"):
                    finish = str(choice["finish_reason"])
                if text:
                    if first is None:
                        first = time.perf_counter()
                    yield text
        finally:
            perf = llama_cpp.llama_perf_context(ctx)
            total = time.perf_counter() - t0
            if self.speaker_cache:
                self._keep(speaker, self._save())
            self._owner = speaker
            p_eval = int(perf.n_p_eval)
            # Tokens generated = decoded past the prompt, plus the last one sampled (never decoded).
            n_gen = max(0, self.llm.n_tokens - len(tokens) + 1) if n_gen else 0
            # A one-token prompt remainder is decoded like a generated token: count it as prompt.
            extra = max(0, int(perf.n_eval) - max(0, n_gen - 1))
            self.timings = TurnTimings(
                speaker=speaker, prompt_tokens=len(tokens), cached_tokens=len(tokens) - p_eval - extra,
                prompt_eval_tokens=p_eval + extra, prompt_eval_ms=float(perf.t_p_eval_ms),
                generated_tokens=n_gen, eval_ms=float(perf.t_eval_ms), restore_ms=restore_ms,
                ttft_s=(first or time.perf_counter()) - t0, total_s=total, finish_reason=finish,
            )

    def prefill(self, speaker: str, messages: list[Message], *, holdback: int = 4,
                cancel: threading.Event | None = None) -> int:
        """Evaluate what is already known of `speaker`'s next prompt, while the candidate is typing.

        `messages` is the speaker's thread whose last message holds the news so far; the real turn
        will append to that message's text. We evaluate up to the end of that text minus `holdback`
        tokens (a token can merge across the boundary with what is appended) and keep the state, so
        the turn itself evaluates only the candidate's latest answer. Returns tokens evaluated.
        Setting `cancel` stops it between batches (Ctrl-C, a closing process) with the state kept.
        """
        if not self.speaker_cache:
            return 0
        with self._lock:
            if self._closed or self._closing.is_set():
                return 0
            text = self.render(messages)
            content = messages[-1]["content"]
            cut = text.rfind(content)
            if cut < 0 or not content:
                return 0
            tokens = self.tokenize(text[: cut + len(content)])[:-holdback]
            self._switch_to(speaker)
            keep = 0
            for a, b in zip(self.llm._input_ids, tokens, strict=False):
                if a != b:
                    break
                keep += 1
            if keep >= len(tokens) or len(tokens) >= self.n_ctx:
                return 0
            self.llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            self.llm.n_tokens = keep
            step = min(PREFILL_CHUNK, max(1, self.llm.n_batch))
            for i in range(keep, len(tokens), step):
                if self._closing.is_set() or (cancel is not None and cancel.is_set()):
                    break
                self.llm.eval(tokens[i: i + step])
            self._keep(speaker, self._save())
            self._owner = speaker
            return self.llm.n_tokens - keep

    def _switch_to(self, speaker: str) -> float:
        """Put `speaker`'s KV prefix in the live context (or clear it when the cache is off)."""
        t0 = time.perf_counter()
        if not self.speaker_cache:
            self.llm.reset()
        elif self._owner != speaker:
            state = self._states.get(speaker)
            if state is None or not self._restore(state):
                self.llm.reset()
        return (time.perf_counter() - t0) * 1000

    # Only sequence 0's KV cells and the token ids are kept: llama-cpp-python's own save_state also
    # copies the logits buffer (n_batch x n_vocab floats), which we never read back.
    def _save(self) -> _SpeakerState:
        import llama_cpp

        ctx = self.llm.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buf = (ctypes.c_uint8 * size)()
        n = int(llama_cpp.llama_state_seq_get_data(ctx, buf, size, 0))
        return _SpeakerState(buf, n, self.llm.input_ids[: self.llm.n_tokens].copy())

    def _keep(self, speaker: str, st: _SpeakerState) -> None:
        self._states[speaker] = st
        self._states.move_to_end(speaker)
        while len(self._states) > self.max_states:
            self._states.popitem(last=False)

    def _restore(self, st: _SpeakerState) -> bool:
        import llama_cpp

        self.llm._ctx.kv_cache_clear()
        if int(llama_cpp.llama_state_seq_set_data(self.llm.ctx, st.kv, st.n_bytes, 0)) == 0:
            return False
        n = len(st.tokens)
        self.llm.input_ids[:n] = st.tokens
        self.llm.n_tokens = n
        self.llm._requires_eval = True  # logits are not restored: the next decode refreshes them
        return True

    def forget(self, speaker: str | None = None) -> None:
        """Drop cached states (one speaker, or all: a new session)."""
        with self._lock:
            if speaker is None:
                self._states.clear()
                self._owner = None
                self.llm.reset()
            else:
                self._states.pop(speaker, None)
                if self._owner == speaker:
                    self._owner = None
                    self.llm.reset()

    def complete(self, speaker: str, messages: list[Message], **sampling: Any) -> str:
        return "".join(self.stream(speaker, messages, **sampling))

    def close(self) -> None:
        """Free the model once any turn in progress has finished; later calls get a clear error."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._states.clear()
            self.llm.close()


def _normalize(messages: list[Message]) -> list[Message]:
    """Merge consecutive same-role messages: strict templates (Mistral) require alternation."""
    out: list[Message] = []
    for m in messages:
        if out and out[-1]["role"] == m["role"]:
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n\n" + m["content"]}
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


# Used only when a GGUF carries no chat template (rare; old conversions): ChatML.
_FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
