"""Only what will stand is shown: a panelist's wording reaches the screen a whole sentence at a time.

The model's text is held until a sentence is finished, the sentence is judged (`checks.Judge`), and only
then shown, whole. The first sentence that fails ends the model's wording there, and nothing of it is
shown, so nothing on screen is ever taken back or cut off mid-sentence. When what stood has not asked
the question (a lead-in alone, or nothing), the written question follows it; when it has, the written
question never does, so the candidate never reads the same question twice.
"""

from __future__ import annotations

import re

from coach.wording.checks import Judge, Verdict
from coach.wording.sentences import asks, complete, ends

# sentences and words a turn may take; the instructions ask for two or three, a real model often adds one
SENTENCES = {"ask": 4, "opener": 5, "follow_up": 3, "contradict": 6, "close": 3}  # contradict: the written one takes 6
MAX_WORDS = 110
AFTER_QUESTION = 1  # sentences that may follow the one that asked (a second, linked question; "Take your time.")
# ... and only if it asks too, or is a courtesy or a clarification of the ask: a statement after the question
# is the model answering it, grading, or adding what was not asked (59 of 349 bad voicings of the seen sets
# had one, 3 of 461 good ones: those lose only their last sentence)
_CLARIFIES = re.compile(r"^\W*(?:i (?:don'?t |do not )?mean\b|i(?:'m| am) after\b|i want (?:the|a|an|one|your|specifics|"
                        r"numbers|detail)\b|not (?:the|a|an|just)\b|then\b|and then\b|no (?:more|longer) than\b)", re.I)
_GOODBYE = re.compile(r"\b(thank|thanks|bye|goodbye|appreciat|pleasure|good luck|take care|be in touch|"
                      r"hear from|next steps?|decision|follow up|wrap)", re.I)


class Voicing:
    """Feed it the model's chunks; it returns the sentences that may be shown now. `stopped` says the
    model's wording ended early: a sentence failed its check (`why` says which) or the turn's sentence
    budget was spent. Afterwards `text` is everything shown and `verdict()` says whether it is the turn."""

    def __init__(self, kind: str, judge: Judge, *, opener: bool = False, max_words: int = MAX_WORDS) -> None:
        self.kind, self.judge, self.max_words = kind, judge, max_words
        self.sentences = SENTENCES["opener" if opener else kind] if kind in SENTENCES else 4
        self.text = ""  # shown so far
        self._buf = ""  # the sentence being written
        self.asked = False  # a sentence that stood asked the question
        self._after = 0  # sentences shown after the one that asked
        self._count = 0
        self.stopped = False
        self.why: str | None = None
        self.refused: tuple[str, Verdict] | None = None  # the sentence that ended the wording, and why

    def feed(self, chunk: str) -> list[str]:
        if self.stopped:
            return []
        self._buf += chunk
        out: list[str] = []
        while not self.stopped:
            cuts = ends(self._buf)
            if not cuts:
                break
            sentence, self._buf = self._buf[:cuts[0]], self._buf[cuts[0]:]
            out += self._sentence(sentence)
        return out

    def finish(self, complete_stream: bool = True) -> list[str]:
        """The end of the stream. `complete_stream`: the model ended its turn (not cut by the token
        budget), so a last sentence without a full stop is still whole."""
        out: list[str] = []
        tail, self._buf = self._buf, ""
        if not self.stopped and tail.strip():
            if complete_stream or complete(tail):
                out += self._sentence(tail)
            else:
                self.stopped = True  # cut off by the budget: never shown half
        return out

    def _sentence(self, sentence: str) -> list[str]:
        if not sentence.strip():
            return [sentence] if self.text else []
        short = len(sentence.split()) <= 3  # "Thanks." and "Decide." take no sentence of the budget
        if (self._count >= self.sentences and not short) or (self.asked and self._after >= AFTER_QUESTION) or \
                len((self.text + sentence).split()) > self.max_words:
            self.stopped = True  # the budget is spent: what stood is judged whole
            return []
        if self.asked and len(sentence.split()) > 4 and not asks(sentence) and not _CLARIFIES.match(sentence) \
                and self.kind != "close":
            self.stopped = True  # a statement after the question: the turn ends with its question
            return []
        v = self.judge.judge(sentence, self.text, self.asked)
        if not v.ok:
            self.stopped, self.why, self.refused = True, v.why, (sentence, v)
            return []
        if self.asked:
            self._after += 1
        self.asked = self.asked or v.asks
        self._count += not short
        self.text += sentence
        return [sentence]

    def verdict(self) -> tuple[bool, str]:
        """Whether the wording that stood is the whole turn; why not otherwise (the written line follows)."""
        said = self.text.strip()
        if self.kind == "close":
            if said and _GOODBYE.search(said):
                return True, ""
            return False, self.why or ("empty" if not said else "no goodbye")
        if self.asked:
            return True, ""
        return False, self.why or ("empty" if not said else "no question")


def joined(said: str, written: str) -> str:
    """What follows the wording that stood when the written line is needed: nothing shown is replaced.
    What stood always ends with a whole sentence."""
    if not said.strip():
        return written
    return ("" if said.endswith("\n\n") else "\n\n" if not said.endswith("\n") else "\n") + written


class Note:
    """The committee chair's summary, gated the same way: whole sentences, each judged before it shows;
    the first that fails ends the note."""

    MAX_WORDS = 160

    def __init__(self, judge: Judge) -> None:
        self.voice = Voicing("note", judge, max_words=self.MAX_WORDS)
        self.voice.sentences = 4  # as its instruction asks

    def feed(self, chunk: str) -> list[str]:
        return self.voice.feed(chunk)

    def finish(self, complete_stream: bool = True) -> list[str]:
        return self.voice.finish(complete_stream)

    @property
    def text(self) -> str:
        return self.voice.text

    @property
    def stopped(self) -> bool:
        return self.voice.stopped
