"""One voice front for the UI and the CLI: hear a recording, speak a panelist, keep or drop the audio.
Models load once, on first use, so a typed-only session never loads any of them."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from coach.config import Settings
from coach.errors import CoachError
from coach.grading.delivery import VoiceDelivery, measure
from coach.interview.prompts import Persona
from coach.voice import catalog
from coach.voice.audio import read
from coach.voice.listen import Recognizer, Transcript, recognizer
from coach.voice.speak import Espeak, Piper, Speaker, Synthesizer, VoiceSpec

RECOGNIZER_TITLES = {"pocketsphinx": "PocketSphinx en-us (embedded; pull whisper-base.en for far better accuracy)"}


def spec_of(p: Persona) -> VoiceSpec:
    return VoiceSpec(p.speech.espeak, p.speech.pitch, p.speech.rate, p.speech.piper)


def still_spoken(sent: str, heard: Transcript) -> bool:
    """Whether the sent answer is (an edit of) what was heard: most of its words were in the transcript.
    A box cleared and retyped is a typed answer, and gets the typed estimate."""
    said = re.findall(r"[a-z0-9']+", sent.lower())
    words = set(re.findall(r"[a-z0-9']+", heard.text.lower()))
    return bool(said) and sum(w in words for w in said) >= 0.6 * len(said)


def time_box_of(iv: Any) -> int:
    """The open question's time box in seconds (0 when there is none)."""
    return int(iv.question_box()) if iv is not None else 0  # scaled for a quick round


class Voice:
    def __init__(self, settings: Settings, wanted: str | None = None) -> None:
        self.settings = settings
        self.wanted = wanted or settings.recognizer  # None: the best pulled whisper model, else PocketSphinx
        self._synths: dict[str, Synthesizer] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- in

    def recognizer_name(self) -> str:
        """What will hear the answer, without loading it."""
        kind, path = catalog.recognizer_choice(self.settings, self.wanted)
        return RECOGNIZER_TITLES.get(kind, f"whisper.cpp {path.stem.removeprefix('ggml-')}" if path else kind)

    def recognizer(self) -> Recognizer:
        kind, path = catalog.recognizer_choice(self.settings, self.wanted)
        return recognizer(kind, path)

    def hear(self, path: str | Path) -> Transcript:
        samples, _ = read(path)
        return self.recognizer().transcribe(samples)

    @staticmethod
    def delivery(heard: Transcript, time_box_s: int) -> VoiceDelivery:
        return measure(heard, time_box_s)

    def keep(self, src: str | Path, session_id: str, idx: int, owner: str = "") -> Path:
        """Copy a recording into COACH_HOME/recordings (per user, per session): only when the user asked."""
        who = hashlib.sha256(owner.encode()).hexdigest()[:12] if owner else "local"
        dest = self.settings.home / "recordings" / who / session_id / f"{idx:03d}{Path(src).suffix or '.wav'}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        except OSError as exc:
            raise CoachError(f"the recording was not kept ({exc.strerror or exc}); the answer itself is saved") from None
        return dest

    # ---------------------------------------------------------------- out

    def synth_for(self, spec: VoiceSpec) -> Synthesizer:
        """The panelist's piper voice when it is pulled, else espeak-ng."""
        path = catalog.installed(self.settings, spec.piper) if spec.piper else None
        key = str(path) if path else "espeak"
        with self._lock:
            if key not in self._synths:
                self._synths[key] = Piper(path) if path else Espeak()
            return self._synths[key]

    def synth_name(self, p: Persona) -> str:
        spec = spec_of(p)
        path = catalog.installed(self.settings, spec.piper) if spec.piper else None
        return f"piper {spec.piper}" if path else f"espeak-ng {spec.espeak}"

    def speaks(self, personas: dict[str, Persona]) -> str:
        """What will speak the panel, without loading anything."""
        names = sorted({self.synth_name(p) for p in personas.values()})
        if all(n.startswith("espeak") for n in names) and not (shutil.which("espeak-ng") or shutil.which("espeak")):
            return "nothing: install espeak-ng (apt install espeak-ng) or pull a piper voice"
        return ", ".join(names)

    def speaker(self, p: Persona, model_tps: float | None = None) -> Speaker:
        """`model_tps`: how fast the model wrote the last question (tokens/s). When the model writes slower
        than the panelist talks, the voice slows towards it (not under SLOWEST words a minute) and speaks
        clause by clause, so the question is heard with fewer silences waiting for the next sentence."""
        own = spec_of(p)
        spec = paced(own, model_tps)
        return Speaker(self.synth_for, spec, clauses=spec.rate < own.rate)  # a slow model: clause by clause


SLOWEST = 130  # words a minute: slower sounds like a recording played at the wrong speed
TOKENS_PER_WORD = 1.3  # English, in Mistral's and most tokenizers


def paced(spec: VoiceSpec, model_tps: float | None) -> VoiceSpec:
    if not model_tps:
        return spec
    writes_wpm = model_tps / TOKENS_PER_WORD * 60
    return replace(spec, rate=int(max(SLOWEST, min(spec.rate, writes_wpm))))
