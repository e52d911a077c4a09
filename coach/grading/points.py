"""Which key point each sentence of an answer makes, and which it reverses.

A point is judged on the answer's best-matching sentence alone (never on the whole answer): the sentence's
similarity to the point plus the share of the point's key terms (or their common variants) it uses. A
sentence that matches a point (or a reference sentence) closely but flips its polarity (a negation the
point does not have, or the other half of an antonym pair: faster/slower, more/less, ...) reverses it:
the point is not made, and the sentence is a false claim even where the rubric lists no `wrong:` version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from coach.grading.answer import STOPWORDS, split_sentences
from coach.grading.exemplars import QuestionVectors, goods
from coach.grading.rubrics import Question

# Thresholds (provenance in docs/grader.md): chosen on SemEval-2013's training part and on the built-in
# COVERED examples of tests/test_grader.py, never on the held-out truthfulness or adversarial sets.
MADE_AT = 0.62  # support at or above which a sentence makes the point
MISSING_BELOW = 0.32  # support under which no sentence makes it: only then is the point called missing
FIRM_AT, FIRM_ABSENCE = 3.5, 0.25  # an answer scoring FIRM_AT or more misses a point only under this support:
# the higher it scores, the likelier a low match is a paraphrase (the dev truthfulness set) ...
FIRM_SENTENCES = 3  # an answer shorter than this misses every point none of its claims is about (`claimed`)
TERM_WEIGHT = 0.30  # how much the point's key terms add to a sentence's similarity
REVERSE_NEAR = 0.55  # a claim this close to a key point's clause, with the opposite polarity, reverses it

NEGATORS = {"not", "no", "never", "none", "nothing", "neither", "nor", "without", "cannot", "can't", "won't",
            "isn't", "aren't", "wasn't", "weren't", "doesn't", "don't", "didn't", "shouldn't", "wouldn't",
            "couldn't", "hasn't", "haven't", "hadn't", "unable"}
NEG_REACH = 3  # a negator governs the content words up to this many words after it
ANTONYMS = [("increase", "decrease"), ("increase", "reduce"), ("more", "less"), ("more", "fewer"),
            ("higher", "lower"), ("faster", "slower"), ("larger", "smaller"), ("bigger", "smaller"),
            ("grow", "shrink"), ("rise", "fall"), ("raise", "lower"), ("gain", "lose"), ("add", "remove"),
            ("open", "closed"), ("connected", "separated"), ("connected", "disconnected"), ("same", "different"),
            ("positive", "negative"), ("high", "low"),
            ("cheaper", "expensive"), ("always", "never"), ("include", "exclude"),
            ("accept", "reject"), ("true", "false"), ("correct", "incorrect"), ("safe", "unsafe"),
            ("better", "worse"), ("strong", "weak"), ("early", "late"),
            ("private", "public"), ("separate", "combine"), ("stable", "unstable"),
            ("bounded", "unbounded"), ("limit", "unlimited"),
            ("conductor", "insulator"), ("series", "parallel"), ("attract", "repel"), ("heat", "cool"),
            ("absorb", "reflect"), ("dissolve", "precipitate"), ("expand", "contract"), ("damaged", "working")]


def stem(w: str) -> str:
    """A crude stem, the same for a word's common forms: caps/capped/capping -> cap, rises/rising -> ris."""
    w = w.lower().strip("'")
    for suf in ("ing", "ed", "es", "ly", "s"):
        if len(w) > len(suf) + 2 and w.endswith(suf):
            if suf == "es" and not w[:-2].endswith(("s", "x", "z", "ch", "sh")):
                suf = "s"
            w = w[: -len(suf)]
            if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]
            break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


def terms(text: str) -> set[str]:
    """The content words of a text, stemmed (numbers kept: "58%" is a term)."""
    return {stem(w) for w in re.findall(r"[a-z0-9][a-z0-9'%-]*", text.lower()) if w not in STOPWORDS and len(w) > 2}


_ANT: dict[str, set[str]] = {}
for _a, _b in ANTONYMS:
    _ANT.setdefault(stem(_a), set()).add(stem(_b))
    _ANT.setdefault(stem(_b), set()).add(stem(_a))


IMPLICIT_NEGATIVE = {stem(w) for w in ("withhold", "withholding", "avoid", "prevent", "refuse", "omit", "hide",
                                       "instead", "rather", "exclude")}
AFFIRMING = {"just", "only", "merely", "simply"}  # "not just tokens per second": tokens per second still count
SCOPE_SKIP = {"be", "been", "being", "always", "really", "very", "actually", "even", "necessarily", "just", "only",
              "quite", "entirely", "fully", "directly", "yet", "ever", "much", "too", "get", "got"}


def polarity(text: str) -> dict[str, bool]:
    """Each content word (stemmed) of a text and whether a negator governs it: the first content word
    after "not", "no", "never", "n't", ... ("does not cap that memory": "cap" only)."""
    words = re.findall(r"[a-z0-9][a-z0-9'%-]*", re.sub(r"^\s*(no|yes)\b[,.;:!]?", " ", text.lower()))
    out: dict[str, bool] = {}
    pending = False
    for i, w in enumerate(words):
        if w in NEGATORS or w.endswith("n't"):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            # "not just X", "not only X" affirm X; "without it" governs nothing that follows
            pending = nxt not in AFFIRMING and not (w == "without" and nxt in STOPWORDS)
            continue
        if w in STOPWORDS or len(w) <= 2 or w in SCOPE_SKIP:
            continue
        t = stem(w)
        out[t] = out.get(t, False) or pending
        pending = False
    return out


WORD_SAME = 0.72  # two words this similar (MiniLM on the words alone) name the same thing: "cap" and "bound"


class Words:
    """Single words embedded once (the embedder on one word at a time is a fair synonym test), remembered."""

    def __init__(self, embedder: Any) -> None:
        self.embedder, self.memo = embedder, {}  # type: ignore[var-annotated]

    def same(self, a: set[str], b: set[str]) -> dict[str, str]:
        """For each word of `a`, a word of `b` that names the same thing (itself where shared)."""
        out = {w: w for w in a & b}
        rest_a, rest_b = sorted(a - b), sorted(b - a)
        if not rest_a or not rest_b or self.embedder is None:
            return out
        todo = [w for w in (*rest_a, *rest_b) if w not in self.memo]
        if todo:
            for w, v in zip(todo, self.embedder.embed(todo), strict=True):
                self.memo[w] = v
        sims = np.stack([self.memo[w] for w in rest_a]) @ np.stack([self.memo[w] for w in rest_b]).T
        for i, w in enumerate(rest_a):
            j = int(np.argmax(sims[i]))
            if sims[i, j] >= WORD_SAME and rest_b[j] not in _ANT.get(w, set()):  # antonyms share contexts too
                out[w] = rest_b[j]
        return out


def reverses(point: str, sentence: str, words: Words | None = None, antonyms: bool = True) -> str | None:
    """Why `sentence` says the opposite of `point` (assumed to be about the same thing), or None: a word
    negated in one and not the other where both name the same thing (the same stem, or a synonym by the
    embedder's word vectors), or the other half of an antonym pair, not negated."""
    pp, sp = polarity(point), polarity(sentence)
    negated = {w for w, n in sp.items() if n} | {w for w, n in pp.items() if n}
    if negated and not (set(pp) & IMPLICIT_NEGATIVE):  # "withhold details" agrees with "no details"
        pairs = words.same(set(sp), set(pp)) if words is not None else {w: w for w in set(sp) & set(pp)}
        for w, v in pairs.items():
            if (w in negated or v in negated) and sp[w] != pp[v]:
                said = w if w == v else f"{w}\" (the point's \"{v}"
                return f"negates \"{said}\"" if sp[w] else f"drops the point's \"not\" before \"{v}\""
    if not antonyms:
        return None
    for w, neg in sp.items():
        if w in pp:
            continue
        for other in _ANT.get(w, set()):
            if other in pp and other not in sp and pp[other] == neg:
                return f"says \"{w}\" where the point says \"{other}\""
    return None


DISCOURSE = {"becaus", "also", "then", "well", "just", "therefore", "thus", "since", "answer", "think"}


def claim_overlap(target: str, claim: str, words: Words | None = None) -> float:
    """The share of the claim's key terms that the target says too (same stem or, by word vectors, the same
    thing): a flipped claim about something else ("connected to the positive terminal" against "not
    connected to the negative one") is no reversal."""
    ct = {t for t in terms(claim) if t not in DISCOURSE}
    if not ct:
        return 0.0
    tt = terms(target)
    same = words.same(ct, tt) if words is not None else {w: w for w in ct & tt}
    return len(same) / len(ct)


def term_share(point_terms: set[str], sentence_terms: set[str]) -> float:
    return len(point_terms & sentence_terms) / len(point_terms) if point_terms else 0.0


@dataclass
class PointMatch:
    support: float  # the best sentence's similarity plus its share of the point's key terms
    sentence: int  # index of that sentence
    reversed_by: str | None  # why that sentence reverses the point, if it does
    contradicted_by: int | None = None  # another sentence that reverses a point this answer also makes

    @property
    def made(self) -> bool:
        return self.reversed_by is None and self.support >= MADE_AT

    @property
    def missing(self) -> bool:
        return self.reversed_by is not None or self.support < MISSING_BELOW


def support(points: list[str], kp_vecs: np.ndarray, texts: list[str], t_vecs: np.ndarray) -> np.ndarray:
    """Points x texts: each text's similarity to each point plus TERM_WEIGHT times the share of the point's
    key terms it uses. Computed once a grade, over the answer's claims (its sentences come first)."""
    if not texts or not points:
        return np.zeros((len(points), len(texts)))
    pts, tts = [terms(p) for p in points], [terms(x) for x in texts]
    return kp_vecs @ t_vecs.T + TERM_WEIGHT * np.array([[term_share(pt, tt) for tt in tts] for pt in pts])


def match_points(sup: np.ndarray) -> list[PointMatch]:
    """Each point's best sentence in the answer, judged on its own (`sup`: points x sentences, `support`)."""
    if not sup.shape[1]:
        return [PointMatch(0.0, -1, None) for _ in range(sup.shape[0])]
    return [PointMatch(float(row[int(np.argmax(row))]), int(np.argmax(row)), None) for row in sup]


def claimed(sup: np.ndarray) -> set[int]:
    """The points some claim (a sentence or a clause of one) is about: its best-supported point, or within
    CLAIM_TIE of it, at MISSING_BELOW or more (`sup`: points x claims, `support`). One sentence that makes
    one point is not every point its topic brushes: a point no claim is about is missing, however close the
    topic sits."""
    if not sup.size:
        return set()
    top = sup.max(axis=0)
    return {int(i) for i, j in zip(*np.nonzero((sup >= top - CLAIM_TIE) & (sup >= MISSING_BELOW)), strict=True)}


CLAIM_TIE = 0.05  # a claim is about every point it supports within this of its best one


@dataclass
class Reversal:
    said: str  # the answer's sentence or clause
    why: str  # "negates \"gap\"", ...
    point: str  # the key point it reverses (or the one nearest the good answer's sentence it reverses)
    point_index: int
    also_made: str | None = None  # another part of the answer that says the opposite: a contradiction


LOOSE_NEAR = 0.35  # ... or this close and sharing two of its key terms
CLAIM_OVERLAP = 0.6  # the share of the claim's own key terms the point (or sentence) also says: the same claim
ANTONYM_NEAR = 0.60  # an antonym pair needs a closer match than a negation: antonyms share contexts
NOT_A_CLAIM = re.compile(r"\?\s*$|\b(i'?d|i would|i will|i'?ll|i'?m going to|let me|we could|we should|should we|"
                         r"i don'?t know|not sure|i'?m not certain|i haven'?t|i have not|i'?ve never|if )\b", re.I)
GOOD_REVERSE_NEAR = 0.65  # a claim this close to a good answer's sentence, flipped, reverses it


def clauses(text: str) -> list[str]:
    """A point or a sentence, and its clauses ("X; Y", "X, so Y", "X because Y")."""
    from coach.grading.answer import claims

    return claims(split_sentences(text))


def find_reversal(q: Question, kp_clause_vecs: np.ndarray, kp_clause_texts: list[tuple[int, str]],
                  qv: QuestionVectors, units: list[str], u_vecs: np.ndarray, words: Words | None = None
                  ) -> Reversal | None:
    """The answer's claim that says the opposite of a key point's clause (or of a good answer's sentence it
    sits very close to): a shared content word negated in one and not the other, or the other half of an
    antonym pair. Where another claim of the answer agrees with the same clause, the two contradict."""
    if not units:
        return None
    targets = [(i, t, REVERSE_NEAR) for i, t in kp_clause_texts]
    vecs = [kp_clause_vecs]
    good_texts = [x for t in goods(q) for x in split_sentences(t)]
    if len(qv.good_sents) == len(good_texts):
        targets += [(-1, t, GOOD_REVERSE_NEAR) for t in good_texts]
        vecs.append(qv.good_sents)
    tv = np.vstack(vecs) if any(len(v) for v in vecs) else np.zeros((0, u_vecs.shape[1]))
    if not len(tv):
        return None
    sims = tv @ u_vecs.T  # targets x units
    best: tuple[float, Reversal] | None = None
    for ti, (ki, text, near) in enumerate(targets):
        for j in np.argsort(-sims[ti])[:4]:
            j = int(j)
            sim = float(sims[ti, j])
            if sim < LOOSE_NEAR:
                break
            shared = len(terms(text) & terms(units[j]))
            if (sim < near and shared < 3) or shared < 2:  # about the same thing: two key terms shared, or three
                continue
            if len(units[j].split()) < 4 or NOT_A_CLAIM.search(units[j]):  # a plan, a question, a hedge: no claim
                continue
            why = reverses(text, units[j], words, antonyms=sim >= ANTONYM_NEAR)
            if why is None or claim_overlap(text, units[j], words) < CLAIM_OVERLAP:
                continue
            # a claim as close to another true statement that it does not flip is that statement, said right
            if any(o != ti and sims[o, j] >= sim - 0.02 and reverses(targets[o][1], units[j], words) is None
                   for o in (int(x) for x in np.argsort(-sims[:, j])[:5])):
                continue
            agree = [int(o) for o in np.argsort(-sims[ti])[:4] if int(o) != j and sims[ti, o] >= near
                     and reverses(text, units[int(o)], words) is None and units[int(o)] not in units[j]
                     and units[j] not in units[int(o)]]
            k = ki if ki >= 0 else int(np.argmax(qv.key_points @ u_vecs[j]))
            rev = Reversal(units[j], why, q.key_points[k].text, k, units[agree[0]] if agree else None)
            if best is None or sim > best[0]:
                best = (sim, rev)
    return best[1] if best else None
