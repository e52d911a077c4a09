"""Delivery measured from the voice: pace, long pauses, fillers and hedges with the moment each was said,
and the time spoken against the question's time box. Typed answers keep the word-count estimate
(`coach.grading.answer.Delivery`); these figures exist only for an answer that was spoken."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from coach.grading.answer import FILLERS, HEDGES

PAUSE_S = 2.0  # a silence longer than this, between two words, is a pause a panel notices


class TimedWord(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


class Heard(Protocol):
    """What a recognizer heard (`coach.voice.listen.Transcript`): timed words, what heard them, the length."""

    @property
    def words(self) -> Sequence[TimedWord]: ...
    @property
    def recognizer(self) -> str: ...
    @property
    def audio_s(self) -> float: ...


@dataclass
class VoiceDelivery:
    recognizer: str
    words: int
    spoken_s: float  # first word to last word
    wpm: float
    pauses: list[tuple[float, float]] = field(default_factory=list)  # (at, seconds)
    fillers: list[tuple[str, float]] = field(default_factory=list)  # (what, at)
    hedges: list[tuple[str, float]] = field(default_factory=list)
    time_box_s: int = 0
    start_s: float = 0.0  # silence before the first word

    @property
    def over_time(self) -> bool:
        return bool(self.time_box_s) and self.spoken_s > self.time_box_s

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoiceDelivery:
        d = dict(d)
        for k in ("pauses", "fillers", "hedges"):
            d[k] = [tuple(x) for x in d.get(k, [])]
        return cls(**d)

    def summary(self) -> str:
        """One line for the grade's side and the debrief."""
        parts = [f"{self.wpm:.0f} words a minute", f"{_clock(self.spoken_s)} spoken"
                 + (f" of a {_clock(self.time_box_s)} time box" if self.time_box_s else "")
                 + (" (over)" if self.over_time else "")]
        parts.append(f"{len(self.pauses)} pause{'s' * (len(self.pauses) != 1)} over {PAUSE_S:.0f} s"
                     + (f" (at {', '.join(_clock(a) for a, _ in self.pauses[:4])})" if self.pauses else ""))
        for label, marks in (("filler", self.fillers), ("hedge", self.hedges)):
            parts.append(f"{len(marks)} {label}{'s' * (len(marks) != 1)}"
                         + (f" ({', '.join(f'“{w}” {_clock(t)}' for w, t in marks[:4])})" if marks else ""))
        return " · ".join(parts)

    def advice(self) -> str | None:
        """The one thing to change in how it was said, if anything stands out."""
        if self.over_time:
            return f"Say it in {_clock(self.time_box_s)}: you spoke for {_clock(self.spoken_s)}."
        if self.words >= 20 and self.wpm > 190:
            return f"Slow down: {self.wpm:.0f} words a minute is hard to follow; aim for 140-170."
        if self.words >= 20 and self.wpm < 100:
            return f"Pick up the pace: {self.wpm:.0f} words a minute sounds unsure; aim for 140-170."
        if len(self.pauses) >= 2:
            return f"{len(self.pauses)} silences over {PAUSE_S:.0f} s: pause before a point, not in the middle of one."
        if self.words and len(self.fillers) / self.words > 0.04:
            return f"{len(self.fillers)} fillers in {self.words} words: replace them with a short silence."
        return None


def _clock(s: float) -> str:
    s = int(round(s))
    return f"{s // 60}:{s % 60:02d}"


def measure(t: Heard, time_box_s: int = 0) -> VoiceDelivery:
    """Delivery from the timed words of one recording."""
    ws = t.words
    if not ws:
        return VoiceDelivery(t.recognizer, 0, 0.0, 0.0, time_box_s=time_box_s, start_s=round(t.audio_s, 2))
    spoken = max(0.0, ws[-1].end - ws[0].start)
    pauses = [(round(a.end, 2), round(b.start - a.end, 2)) for a, b in zip(ws, ws[1:], strict=False)
              if b.start - a.end > PAUSE_S]
    # fillers and hedges can span words ("you know", "i think"): match on the text, then find the word
    text, starts = "", []
    for w in ws:
        starts.append((len(text), w.start))
        text += w.text.lower() + " "

    def marks(pattern: Any) -> list[tuple[str, float]]:
        out = []
        for m in pattern.finditer(text):
            at = max((s for s in starts if s[0] <= m.start()), key=lambda s: s[0])[1]
            out.append((m.group(0), round(at, 2)))
        return out

    minutes = spoken / 60 if spoken > 0 else 0
    return VoiceDelivery(t.recognizer, len(ws), round(spoken, 2), round(len(ws) / minutes, 1) if minutes else 0.0,
                         pauses, marks(FILLERS), marks(HEDGES), time_box_s, round(ws[0].start, 2))
