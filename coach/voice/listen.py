"""Speech to text on this machine. A recognizer is one method, `transcribe(samples) -> Transcript`, with
each word's start and end; a registry names them. PocketSphinx ships its English model inside its wheel,
so it is the default out of the box; a pulled whisper.cpp model (`coach voice pull whisper-base.en`) is
used instead when there is one. Loaded once, lazily."""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from coach.errors import ConfigError, InvalidModelFile
from coach.voice.audio import RATE


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the recording
    end: float


@dataclass
class Transcript:
    words: list[Word]
    audio_s: float  # length of the recording
    elapsed_s: float  # time the recognizer took
    recognizer: str  # what heard it, as the UI names it
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def rtf(self) -> float:
        """Real-time factor: recognizer seconds per second of audio (under 1 keeps up with speech)."""
        return self.elapsed_s / self.audio_s if self.audio_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Transcript:
        return cls([Word(**w) for w in d["words"]], d["audio_s"], d["elapsed_s"], d["recognizer"],
                   d.get("extra", {}))


class Recognizer(Protocol):
    name: str

    def transcribe(self, samples: np.ndarray) -> Transcript: ...


RECOGNIZERS: dict[str, Callable[..., Recognizer]] = {}


def register(kind: str) -> Callable[[Callable[..., Recognizer]], Callable[..., Recognizer]]:
    def add(factory: Callable[..., Recognizer]) -> Callable[..., Recognizer]:
        if kind in RECOGNIZERS:
            raise ValueError(f"recognizer {kind!r} is already registered")
        RECOGNIZERS[kind] = factory
        return factory
    return add


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def word_error_rate(ref: str, hyp: str) -> float:
    """Word-level edit distance over the reference's length (case and punctuation ignored): the tests and
    the voice benchmark print it for each recognizer."""
    r, h = re.findall(r"[a-z0-9']+", ref.lower()), re.findall(r"[a-z0-9']+", hyp.lower())
    d = list(range(len(h) + 1))
    for i, a in enumerate(r, 1):
        prev, d[0] = d[:], i
        for j, b in enumerate(h, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (a != b))
    return d[-1] / max(1, len(r))


# ---------------------------------------------------------------- PocketSphinx (embedded)

_SPHINX_MARK = re.compile(r"^(<s>|</s>|<sil>|\[\w+\]|\+\+\w+\+\+)$")


@register("pocketsphinx")
class Sphinx:
    """CMU PocketSphinx with the US English model its wheel carries: small (about 40 MB resident), fast,
    and much less accurate than whisper; every word comes with its frame times."""

    name = "PocketSphinx en-us (embedded)"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=RATE, loglevel="FATAL")
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
        t0 = time.perf_counter()
        with self._lock:  # one decoder, one utterance at a time
            d = self._decoder
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            fps = 100.0  # PocketSphinx's default frame rate
            words = [Word(re.sub(r"\(\d+\)$", "", s.word), s.start_frame / fps, (s.end_frame + 1) / fps)
                     for s in d.seg() if not _SPHINX_MARK.match(s.word)]
        return Transcript(words, len(samples) / RATE, time.perf_counter() - t0, self.name)


# ---------------------------------------------------------------- whisper.cpp (pulled)

_GGML_MAGIC = 0x67676D6C
_FTYPES = {0, 1, 2, 3, 7, 8, 9, 10, 11, 12, 13, 14, 15}  # f32, f16, q4_0, q4_1, q5..q8 and the k-quants


def check_whisper_file(path: Path) -> dict[str, int]:
    """The hyperparameters of a whisper.cpp GGML file, or a clear error: whisper.cpp aborts the whole
    process on a damaged header, so nothing reaches it unchecked."""
    names = ("n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
             "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype")
    try:
        with path.open("rb") as f:
            head = f.read(4 + 4 * len(names))
    except OSError as exc:
        raise InvalidModelFile(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(head) < 4 + 4 * len(names) or struct.unpack("<I", head[:4])[0] != _GGML_MAGIC:
        raise InvalidModelFile(f"{path.name} is not a whisper.cpp model (no GGML header); pull one with "
                               "`coach voice pull whisper-base.en`")
    hp = dict(zip(names, struct.unpack(f"<{len(names)}i", head[4:]), strict=True))
    sane = (50_000 <= hp["n_vocab"] <= 60_000 and hp["n_mels"] in (80, 128) and hp["n_audio_ctx"] == 1500
            and 0 < hp["n_audio_layer"] <= 64 and 0 < hp["n_text_layer"] <= 64 and hp["ftype"] % 1000 in _FTYPES)
    if not sane:
        raise InvalidModelFile(f"{path.name} has a damaged whisper header ({hp}); delete it and pull it again")
    return hp


@register("whisper")
class Whisper:
    """whisper.cpp through pywhispercpp, with word timestamps (one word per segment)."""

    def __init__(self, path: Path, *, label: str | None = None, threads: int | None = None) -> None:
        from pywhispercpp.model import Model

        self.hparams = check_whisper_file(path)
        self.english_only = self.hparams["n_vocab"] == 51864
        self.name = label or f"whisper.cpp {path.stem.removeprefix('ggml-')}"
        self._model = Model(str(path), redirect_whispercpp_logs_to=None, print_progress=False,
                            print_realtime=False, n_threads=threads or _threads())
        if getattr(self._model, "_ctx", None) is None:
            raise InvalidModelFile(f"whisper.cpp could not load {path.name}; delete it and pull it again")
        self._lock = threading.Lock()

    def transcribe(self, samples: np.ndarray) -> Transcript:
        t0 = time.perf_counter()
        with self._lock:
            segs = self._model.transcribe(samples.astype(np.float32), token_timestamps=True, max_len=1,
                                          split_on_word=True, language="en" if self.english_only else "auto",
                                          no_context=True)  # "auto": detect, then transcribe in that language
        words = [Word(s.text.strip(), s.t0 / 100.0, s.t1 / 100.0) for s in segs
                 if s.text.strip() and not re.fullmatch(r"\[.*\]|\(.*\)", s.text.strip())]
        return Transcript(words, len(samples) / RATE, time.perf_counter() - t0, self.name)

    def decode(self, samples: np.ndarray, tokens: int) -> None:
        """Decode exactly `tokens` tokens from `samples`, whatever they say: a random-weight file of a real
        model's shape (`whisper_shape`) then costs what the real words would (the voice benchmark)."""
        with self._lock:
            self._model.transcribe(samples.astype(np.float32), language="en", no_context=True,
                                   single_segment=True, no_timestamps=True, suppress_regex=r"\[_EOT_\]",
                                   max_tokens=tokens, temperature_inc=0.0, entropy_thold=100.0,
                                   logprob_thold=-1000.0)


# ---------------------------------------------------------------- which one runs

_loaded: dict[str, Recognizer] = {}
_load_lock = threading.Lock()


def recognizer(kind: str, path: Path | None = None) -> Recognizer:
    """The named recognizer, loaded once per (kind, file)."""
    if kind not in RECOGNIZERS:
        raise ConfigError(f"unknown recognizer {kind!r}; choose one of: {', '.join(RECOGNIZERS)}")
    key = f"{kind}:{path or ''}"
    with _load_lock:
        if key not in _loaded:
            _loaded[key] = RECOGNIZERS[kind](path) if path is not None else RECOGNIZERS[kind]()
        return _loaded[key]
