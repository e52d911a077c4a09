"""An answer before it is scored: cleaned text, its sentences and claims, delivery, and the patterns the
grader reads in it (fillers, hedges, numbers, mechanisms, instructions aimed at the grader, admitted gaps)."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WORDS = 800  # what a spoken answer can hold; the rest is not read (and is flagged)
MAX_CHARS = 20_000  # cut before any work (about 3,000 words, twenty minutes spoken): a pasted book costs nothing
WPM = 150  # speaking rate used to turn words into minutes

FILLERS = re.compile(r"\b(um+|uh+|erm|you know|basically|literally|kind of|sort of|i mean)\b", re.I)
HEDGES = re.compile(r"\b(i think|i guess|maybe|perhaps|probably|possibly|might|i feel like|hopefully)\b", re.I)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?\s*(?:%|x|ms|s|gb|mb|k|m|b|tokens?|tok/s|ms/token|p\d\d)?", re.I)
MECHANISM = re.compile(
    r"\b(because|so that|which means|therefore|trade-?off|versus|vs\.?|instead of|at the cost of|in exchange|"
    r"if we|unless|bottleneck|latency|throughput|cost per|per token|memory|bandwidth|kv cache|quantiz\w*|"
    r"sparsity|active parameters|benchmark|eval\w*|baseline|rollback|canary|p95|p99)\b", re.I)
INJECTION = re.compile(
    r"(ignore (all |any |your |the )?(previous |prior |above )?(instructions|rules|rubric)|disregard (the|your) "
    r"(rubric|instructions)|you are now|system prompt|as the grader|dear grader|give (me|this( answer)?) (a )?"
    r"(strong (yes|hire)|5|five|full marks|top score)|(score|rate|grade|mark) (this|me|my|the)( answer| response)? "
    r"(a |as |at |with )?(5|five|10|ten|full|maximum|top|strong))", re.I)
UNSURE = re.compile(r"\b(i don'?t know|i'?m not (sure|certain)|not sure|i can'?t tell|i don'?t remember)\b", re.I)
STOPWORDS = set(
    "a an the and or but if then so of to in on at for with by from as is are was were be been it its this that "
    "these those i we you they he she our my your their not no do does did can could would should will what "
    "which who how why when where there here than also just very about into over more most".split())


@dataclass
class Delivery:
    words: int
    fillers: int
    hedges: int
    spoken_s: int
    time_box_s: int

    @property
    def over_time(self) -> bool:
        return self.spoken_s > self.time_box_s



def split_sentences(text: str, max_words: int = 40) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?;])\s+|\n+", text) if p.strip()]
    out: list[str] = []
    for p in parts:
        words = p.split()
        for i in range(0, len(words), max_words):
            out.append(" ".join(words[i:i + max_words]))
    return out[:60]



CLAUSE = re.compile(r",\s+(?:and|but|so|because|while|which)\s+|;\s+|\s+because\s+|\s+so that\s+", re.I)


def claims(sentences: list[str]) -> list[str]:
    """The sentences, and the clauses of those that join several claims ("X, and Y", "X because Y"): a false
    clause inside a long sentence is heard on its own, as a panel would."""
    out = list(sentences)
    for s in sentences:
        parts = [p.strip() for p in CLAUSE.split(s) if len(p.split()) >= 4]
        if len(parts) > 1:
            out += parts
    return out



def joined_list(content: list[str]) -> bool:
    """Keywords strung together with one repeated joiner ("latency and the throughput and the batching
    and the ..."): the stopword share of a sentence, with none of its variety. Prose uses many different
    function words between its content words; a padded list repeats one run of them."""
    runs: list[str] = []
    cur: list[str] = []
    for w in content:
        if w in STOPWORDS:
            cur.append(w)
        elif cur:
            runs.append(" ".join(cur))
            cur = []
    if len(runs) < 4:
        return False
    top = max(runs.count(r) for r in set(runs))
    return top / len(runs) >= 0.6 and len({w for w in content if w in STOPWORDS}) <= 3


def clean_answer(answer: object) -> tuple[str, str | None]:
    """An answer as text the grader and the store can hold: characters that cannot be encoded (a lone
    surrogate from a broken paste) and NULs replaced, and cut at MAX_CHARS. Returns (text, what was done)."""
    text = answer if isinstance(answer, str) else ""
    notes = []
    fixed = text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", " ")
    if fixed != text:
        notes.append("unreadable characters were replaced")
    if len(fixed) > MAX_CHARS:
        cut = fixed.rfind(" ", 0, MAX_CHARS)
        fixed = fixed[:cut if cut > MAX_CHARS // 2 else MAX_CHARS]
        notes.append(f"cut at {MAX_CHARS:,} characters of {len(text):,}")
    return fixed, "; ".join(notes) or None


def keyword_list(body: str, sentences: list[str], content: list[str], stop_share: float) -> bool:
    """Keywords, not an answer: almost no function words over eight words or more, a comma-separated run
    of terms, fragments of three words or fewer, or one joiner repeated (`joined_list`). A short sentence
    with few function words ("C++ programs begin execution at main.") is an answer, not a list."""
    n = len(body.split())
    if n < 6:
        return False
    if n >= 8 and stop_share < 0.10:
        return True
    if body.count(",") >= max(3, n // 4) and stop_share < 0.18:
        return True
    if len(sentences) >= 3 and sum(len(x.split()) <= 3 for x in sentences) / len(sentences) >= 0.6:
        return True
    return joined_list(content)
