"""Text to speech for the panel, sentence by sentence while the model is still writing. A synthesizer is
one method, `say(text, voice) -> float32 samples at 16 kHz`; espeak-ng is the fallback that needs no
download, piper is used for a panelist whose piper voice was pulled (`coach voice pull`)."""

from __future__ import annotations

import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from coach.errors import CoachError
from coach.voice.audio import RATE, resample


class SpeechUnavailable(CoachError):
    """No synthesizer can run here (no espeak-ng, no pulled voice)."""

    exit_code = 7


@dataclass(frozen=True)
class VoiceSpec:
    """How one panelist sounds: an espeak-ng voice (+variant), pitch 0-99 and words a minute, and the piper
    voice used instead once it is pulled."""

    espeak: str = "en-us"
    pitch: int = 50
    rate: int = 165
    piper: str | None = None


class Synthesizer(Protocol):
    name: str

    def say(self, text: str, voice: VoiceSpec) -> np.ndarray: ...


class Espeak:
    name = "espeak-ng"

    def __init__(self) -> None:
        exe = shutil.which("espeak-ng") or shutil.which("espeak")
        if exe is None:
            raise SpeechUnavailable("no speech voice here: install espeak-ng (apt install espeak-ng, brew install "
                                    "espeak-ng) or pull a piper voice with `coach voice pull`")
        self.exe = exe

    def say(self, text: str, voice: VoiceSpec) -> np.ndarray:
        from coach.voice.audio import read_wav_bytes

        out = subprocess.run([self.exe, "-v", voice.espeak, "-p", str(voice.pitch), "-s", str(voice.rate),
                              "--stdout"], input=text.encode(), capture_output=True, timeout=60)
        if out.returncode != 0 or not out.stdout:
            raise SpeechUnavailable(f"espeak-ng failed: {out.stderr.decode(errors='replace')[:160]}")
        return read_wav_bytes(out.stdout)


class Piper:
    """A pulled piper voice (ONNX, run on the CPU by onnxruntime)."""

    def __init__(self, model: Path) -> None:
        from piper import PiperVoice

        try:
            self._voice = PiperVoice.load(str(model))
        except Exception as exc:  # onnxruntime's own errors: a damaged or partial file
            raise SpeechUnavailable(f"cannot load the piper voice {model.name} ({type(exc).__name__}); delete it "
                                    "and pull it again") from None
        self.name = f"piper {model.stem}"
        self._lock = threading.Lock()

    def say(self, text: str, voice: VoiceSpec) -> np.ndarray:
        with self._lock:
            chunks = list(self._voice.synthesize(text))
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        x = np.concatenate([c.audio_int16_array.astype(np.float32) / 32768.0 for c in chunks])
        return resample(x, chunks[0].sample_rate)


# ---------------------------------------------------------------- sentences as they stream

class SentenceCutter:
    """Feed streamed text; get back each sentence once it is whole (the rest waits for more text). With
    `clauses`, a comma, semicolon or colon after six words or more also ends a piece: a slow model's long
    sentence is then heard clause by clause instead of after a silence."""

    CLAUSE_WORDS = 6

    def __init__(self, clauses: bool = False) -> None:
        self.held = ""
        self.ends = r"[.!?,;:]" if clauses else r"[.!?]"
        self.least = {True: self.CLAUSE_WORDS, False: 2}

    def feed(self, chunk: str) -> list[str]:
        self.held += chunk
        out = []
        while True:
            # the first end followed by more text, with enough words before it (a lone "No." waits for the
            # sentence after it; a clause needs six words)
            cut = next((m.end() for m in re.finditer(self.ends + r"(?=\s+\S)", self.held)
                        if len(self.held[:m.end()].split()) >= self.least[m.group(0) in ",;:"]), None)
            if cut is None:
                break
            out.append(self.held[:cut].strip())
            self.held = self.held[cut:].lstrip()
        return out

    def flush(self) -> list[str]:
        rest, self.held = self.held.strip(), ""
        return [rest] if rest else []


@dataclass
class Clip:
    text: str
    samples: np.ndarray
    made_s: float  # when it was ready, from the start of the question
    speak_s: float  # how long it takes to say


class Speaker:
    """Turns one panelist's streamed question into clips on a worker thread, so the model never waits for
    the voice. `feed` text as it streams, `close` at the end; `ready()` gives the clips made so far."""

    def __init__(self, synth_for: Callable[[VoiceSpec], Synthesizer], voice: VoiceSpec,
                 clauses: bool = False) -> None:
        self._synth_for, self.voice = synth_for, voice
        self._cut = SentenceCutter(clauses)
        self._todo: queue.Queue[str | None] = queue.Queue()
        self._done: queue.Queue[Clip | CoachError] = queue.Queue()
        self._t0 = time.perf_counter()
        self.spoken = ""  # the text handed to the voice so far
        self.closed = False
        self.error: CoachError | None = None  # why the voice stopped, if it did
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while (text := self._todo.get()) is not None:
            try:
                x = self._synth_for(self.voice).say(text, self.voice)
                self._done.put(Clip(text, x, time.perf_counter() - self._t0, len(x) / RATE))
            except CoachError as exc:
                self._done.put(exc)
                return

    def feed(self, chunk: str) -> None:
        for s in self._cut.feed(chunk):
            self.spoken += s + " "
            self._todo.put(s)

    def close(self, final_text: str | None = None) -> None:
        """No more text. `final_text` is the whole question as shown: what was not yet fed is said too.
        Closing twice is harmless (a front end closes again when the question's stream is abandoned)."""
        if self.closed:
            return
        self.closed = True
        if final_text is not None:
            fed = self.spoken + self._cut.held
            rest = final_text[len(fed.strip()):] if final_text.startswith(fed.strip()) else ""
            self.feed(rest)
        for s in self._cut.flush():
            self.spoken += s + " "
            self._todo.put(s)
        self._todo.put(None)

    def through(self, chunks: Iterable[str], final: Callable[[], str | None]) -> Iterator[tuple[str, list[Clip]]]:
        """Pass a question's chunks through with the clips made so far after each, then ("", the rest)
        once `final()` (the whole question as shown) is said. The UI and the terminal both speak through
        this; it always closes, so an abandoned stream (a closed tab) leaves no voice thread waiting."""
        try:
            for chunk in chunks:
                self.feed(chunk)
                yield chunk, list(self.ready())
            self.close(final())
            yield "", list(self.ready(wait=True))
        finally:
            self.close()

    def ready(self, wait: bool = False) -> Iterator[Clip]:
        """The clips finished since the last call (with `wait`, every clip, once the worker is done). A voice
        that fails stops here and keeps its reason in `error`; the question itself goes on."""
        if wait:
            self._worker.join(timeout=120)
        while True:
            try:
                item = self._done.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, CoachError):  # the voice failed: the question goes on, silent
                self.error = item
                return
            yield item
