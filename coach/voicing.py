"""Only what will stand is shown: a panelist's wording passes its checks word by word as it streams.

A word is shown once it is whole and the text so far is still in role, repeats no instruction and quotes
no long run of what the panelist was given to read (the candidate's answer, its own instructions, the
record). The first word that fails ends the model's wording there; nothing shown is ever taken back.
When the wording that stood does not ask the question (no question, off the question, too short), the
written question follows it, so the candidate always gets the question the panel decided on.
"""

from __future__ import annotations

import re

from coach.panel import Action

# ---------------------------------------------------------------- the checks

_OUT_OF_ROLE = re.compile(r"\b(as an ai|language model|i'?m an ai|assistant|chatgpt|openai|smollm|hugging ?face)\b", re.I)


_LEAK = re.compile(r"\b(instructions?|canonical|in your own voice|hidden priorit|privately you want|never reveal|"
                   r"persona|system prompt)\b", re.I)


_WORDS = re.compile(r"[a-z]{4,}")


_RECORD = re.compile(r"\basked:|\(quoted|\bgrader:|panel's record|\bturn by turn\b", re.I)


def usable(voiced: str, action: Action) -> tuple[bool, str]:
    """Whether the model's wording can stand in for the canonical question; why not otherwise."""
    text = voiced.strip()
    n = len(text.split())
    if not text:
        return False, "empty"
    if _OUT_OF_ROLE.search(text):
        return False, "out of role"
    if _LEAK.search(text):
        return False, "repeats its instructions"
    if action.kind == "close":
        return (n <= 60, "too long" if n > 60 else "")
    if "?" not in text:
        return False, "no question"
    if n < 6 or n > 90:
        return False, "length"
    # The wording must carry the question's substance: most of its content words. A follow-up is about
    # the point the answer missed (named in its instruction, never in its written probe), and may only
    # touch it: one of its words.
    if action.kind == "follow_up" and "left out:" in action.instruction:
        want = set(_WORDS.findall(action.instruction.split("left out:")[-1].lower())) - _COMMON
        need = 1
    else:
        want = set(_WORDS.findall(action.canonical.lower())) - _COMMON
        need = max(3, int(0.4 * len(want) + 0.999))
    have = set(_WORDS.findall(text.lower()))
    if want and len(want & have) < need:
        return False, "off the question"
    return True, ""


def usable_note(text: str) -> tuple[bool, str]:
    """Whether the committee chair's summary (so far) can be shown: in role, no instructions, not endless."""
    if _OUT_OF_ROLE.search(text):
        return False, "out of role"
    if _LEAK.search(text) or _RECORD.search(text):
        return False, "repeats its instructions or the record"
    if len(text.split()) > 160:
        return False, "too long"
    words = [_norm(w) for w in text.split()]
    runs = [tuple(words[i:i + 6]) for i in range(len(words) - 5)]
    if len(runs) != len(set(runs)):
        return False, "repeats itself"
    return True, ""


_COMMON = set("that this with what your have about would there their they them then when which while where "
              "from into just like make more most only over some such than very will does tell give".split())


# ---------------------------------------------------------------- checking as it streams

ECHO_WORDS = 5  # this many words in a row from what the panelist read is a quote, not its own words
MAX_WORDS = 90
SENTENCES = {"ask": 2, "follow_up": 2, "contradict": 3, "close": 2}  # as the instructions ask, a goodbye 2
LEAD_IN_WORDS = 30  # words without a question mark: the written question takes over
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


def _norm(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def _ngrams(sources: list[str], n_max: int) -> set[tuple[str, ...]]:
    grams: set[tuple[str, ...]] = set()
    for src in sources:
        words = [w for w in (_norm(x) for x in src.split()) if w]
        for n in range(2, n_max + 1):
            grams.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return grams


class Voicing:
    """Feed it the model's chunks; it returns what may be shown now. `stopped` says the model's wording
    ended early: at a word that failed a check (`why` says which), or when the instruction's sentence
    budget was spent. Afterwards `text` is everything shown and `verdict()` the whole-text check."""

    def __init__(self, action: Action, sources: list[str], max_words: int = MAX_WORDS) -> None:
        self.action = action
        self.max_words = max_words
        self._grams = _ngrams(sources, ECHO_WORDS)
        self._words = {w for g in self._grams for w in g}
        self.text = ""  # shown so far
        self._partial = ""  # the word being written
        self._held: list[str] = []  # whole words held while they might be the start of a quote
        self._last: str | None = None  # the last word shown, normalised
        self.stopped = False
        self.why: str | None = None

    def feed(self, chunk: str) -> list[str]:
        if self.stopped:
            return []
        self._partial += chunk
        out: list[str] = []
        # whole words are the text up to the last whitespace; the rest may still grow
        m = re.search(r"\s(?=\S*$)", self._partial)
        if m is None:
            return out
        whole, self._partial = self._partial[:m.end()], self._partial[m.end():]
        for word in re.findall(r"\S+\s*", whole):
            out += self._word(word)
            if self.stopped:
                break
        return out

    def finish(self) -> list[str]:
        """The end of the stream: the last word and any words held as a possible quote."""
        out = []
        if not self.stopped and self._partial.strip():
            out += self._word(self._partial)
        if not self.stopped and self._held:
            out += self._release(len(self._held))
        self._partial = ""
        return out

    def _word(self, word: str) -> list[str]:
        """Hold words only while they continue, from the last word shown, a run of what the panelist read.
        At the very start a word from what it read is held too, so a turn never opens with a stray word of
        a quote; later a quote may show its first word and is cut from its second."""
        self._held.append(word)
        key = [self._last, *(_norm(w) for w in self._held)]
        run = 0  # the longest tail of (last shown word + held words) that appears, in order, in what it read
        shortest = 1 if self._last is None else 2  # the very first word is held too if a quote could start there
        for n in range(min(len(key), ECHO_WORDS), shortest - 1, -1):
            if None not in key[-n:] and (tuple(key[-n:]) in self._grams or n == 1 and key[-1] in self._words):
                run = n
                break
        if run >= ECHO_WORDS:
            return self._stop("quotes what it was given to read")
        if self._last is None:
            keep = run  # nothing shown yet: a possible quote waits whole
        else:
            keep = min(len(self._held), max(0, run - 1))  # the held part of the run waits for the next word
        return self._release(len(self._held) - keep)

    def _release(self, n: int) -> list[str]:
        words, self._held = self._held[:n], self._held[n:]
        out: list[str] = []
        for w in words:
            candidate = self.text + w
            if _OUT_OF_ROLE.search(candidate):
                return out + self._stop("out of role")
            if _LEAK.search(candidate) or _RECORD.search(candidate):
                return out + self._stop("repeats its instructions")
            if len(candidate.split()) > self.max_words or self._over_budget():
                self.stopped, self._held, self._partial = True, [], ""  # the wording so far is judged whole
                return out
            self.text = candidate
            self._last = _norm(w)
            out.append(w)
        return out

    def _over_budget(self) -> bool:
        """The instruction's sentence budget is spent and the next word would begin another sentence, or the
        wording has gone on for LEAD_IN_WORDS without reaching a question."""
        ends = len(_SENTENCE_END.findall(self.text))
        starts_sentence = not self.text.strip() or bool(_SENTENCE_END.search(self.text[-2:] if self.text else ""))
        if starts_sentence and ends >= SENTENCES.get(self.action.kind, 2):
            return True
        return self.action.kind != "close" and "?" not in self.text and len(self.text.split()) >= LEAD_IN_WORDS

    def _stop(self, why: str) -> list[str]:
        self.stopped, self.why, self._held, self._partial = True, why, [], ""
        return []

    def verdict(self) -> tuple[bool, str]:
        """Whether the wording that stood is the whole turn; why not otherwise (the written line follows)."""
        if self.why:
            return False, self.why
        return usable(self.text, self.action)


def joined(said: str, written: str) -> str:
    """What follows the wording that stood when the written line is needed: nothing shown is replaced."""
    if not said.strip():
        return written
    cut = "" if said.rstrip().endswith((".", "?", "!", ":")) else "…" if said[-1:].isspace() else " …"
    return cut + "\n\n" + written
