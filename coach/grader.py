"""Score an answer against a question's exemplars, per criterion, with the evidence.

Not a raw cosine. Per criterion we combine: how much closer the answer sits to the good exemplars than
to the bad ones, soft coverage of that criterion's key points (matched sentence by sentence, so a long
answer earns nothing for its length), specificity (numbers, mechanisms), red flags, an off-topic floor,
and delivery. Keyword stuffing, rambling, repeating the question and instructions aimed at the grader
earn nothing. Same answer, same score: everything here is deterministic.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coach.config import Settings
from coach.embedder import Embedder, MiniLMEmbedder
from coach.rubrics import LABELS, Bank, Question

log = logging.getLogger("coach.grader")

MAX_WORDS = 800  # what a spoken answer can hold; the rest is not read (and is flagged)
MAX_CHARS = 20_000  # cut before any work (about 3,000 words, twenty minutes spoken): a pasted book costs nothing
WPM = 150  # speaking rate used to turn words into minutes
# Calibration (see `coach grader-eval`): the raw blend a strong answer reaches, and the similarity under
# which an answer relates to nothing in the rubric. Held-out good exemplars land near 4.5 with these.
FULL_MARKS = 0.72
OFF_TOPIC = 0.2

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
UNSURE_CAP = 3.4  # an honest gap with a plan to close it is worth something, not full marks
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


@dataclass
class Grade:
    question_id: str
    criteria: dict[str, float]  # criterion -> 1..5
    weights: dict[str, float]  # criterion -> share of the total
    total: float  # weighted, 1..5
    nearest_good: tuple[str, float]
    nearest_bad: tuple[str, float]
    missed: list[str]
    improvement: str
    delivery: Delivery
    notes: list[str] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    strongest: str = ""  # the answer's sentence closest to the good exemplars (evidence for)
    weakest: str = ""  # the sentence closest to the bad ones, or furthest from the rubric (evidence against)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grade:
        """Rebuild a stored grade (the store keeps `as_dict()`)."""
        dl = {k: v for k, v in d["delivery"].items() if k != "over_time"}
        return cls(d["question_id"], d["criteria"], d["weights"], d["total"],
                   (d["nearest_good"]["text"], d["nearest_good"]["similarity"]),
                   (d["nearest_bad"]["text"], d["nearest_bad"]["similarity"]), d["missed"], d["improvement"],
                   Delivery(**dl), d.get("notes", []), d.get("features", {}), d.get("strongest", ""),
                   d.get("weakest", ""))

    def summary(self) -> str:
        """The total and each criterion in words: the one line the UI, the CLI and a retry all show."""
        crit = " · ".join(f"{LABELS.get(c, c)} {s:.1f}" for c, s in self.criteria.items())
        return f"{self.total:.2f}/5 — {crit}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["delivery"]["over_time"] = self.delivery.over_time
        d["nearest_good"] = {"text": self.nearest_good[0], "similarity": self.nearest_good[1]}
        d["nearest_bad"] = {"text": self.nearest_bad[0], "similarity": self.nearest_bad[1]}
        return d


@dataclass
class _QuestionVectors:
    question: np.ndarray
    good: np.ndarray
    bad: np.ndarray
    key_points: np.ndarray
    red_flags: np.ndarray


def split_sentences(text: str, max_words: int = 40) -> list[str]:
    parts = [p.strip() for p in re.split(r"(?<=[.!?;])\s+|\n+", text) if p.strip()]
    out: list[str] = []
    for p in parts:
        words = p.split()
        for i in range(0, len(words), max_words):
            out.append(" ".join(words[i:i + max_words]))
    return out[:60]


def _gaps(q: Question, weights: dict[str, float], coverage: np.ndarray) -> list[tuple[float, str, float]]:
    """(what the gap costs, key point, its coverage), costliest first; the order of the rubric breaks ties.
    The follow-up, the "Next time" tip and the debrief all name the first of these that was missed."""
    rows = [(weights.get(k.criterion, 0.0) * (1 - float(c)), i, k.text, float(c))
            for i, (k, c) in enumerate(zip(q.key_points, coverage, strict=True))]
    rows.sort(key=lambda r: (-round(r[0], 6), r[1]))
    return [(g, t, c) for g, _, t, c in rows]


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


OVER_TIME_CAP = 2.5


def _joined_list(content: list[str]) -> bool:
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


class Grader:
    """Grades answers for any bank. Exemplar vectors are cached on disk by content hash."""

    def __init__(self, embedder: Embedder | None = None, cache_dir: Path | None = None) -> None:
        self.embedder = embedder or MiniLMEmbedder()
        self.cache_dir = cache_dir  # None: exemplar vectors are kept in memory only
        self._mem: dict[str, _QuestionVectors] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Grader:
        """The front ends' grader: the settings' torch threads, vectors cached in the data home."""
        return cls(MiniLMEmbedder(settings.grader_threads), cache_dir=settings.home / "cache" / "embeddings")

    # -------------------------------------------------------------- exemplar vectors

    def _vectors(self, q: Question) -> _QuestionVectors:
        texts = [q.text, *q.good, *q.bad, *(k.text for k in q.key_points), *q.red_flags]
        key = hashlib.sha256("\x1f".join([self.embedder.name, *texts]).encode()).hexdigest()[:24]
        if key in self._mem:
            return self._mem[key]
        path = self.cache_dir / f"{key}.npy" if self.cache_dir is not None else None
        vecs: np.ndarray | None = None
        if path is not None and path.exists():
            try:
                vecs = np.load(path)
                if vecs.shape[0] != len(texts):
                    vecs = None
            except (OSError, ValueError):
                vecs = None  # a torn cache file: recompute
        if vecs is None:
            vecs = self.embedder.embed(texts)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
                    np.save(tmp, vecs)
                    os.replace(tmp, path)
                except OSError as exc:  # a full or read-only disk: the cache is only a speed-up
                    log.info("exemplar vectors not cached: %s", exc)
        i = 1
        ng, nb, nk = len(q.good), len(q.bad), len(q.key_points)
        qv = _QuestionVectors(vecs[0], vecs[i:i + ng], vecs[i + ng:i + ng + nb], vecs[i + ng + nb:i + ng + nb + nk],
                              vecs[i + ng + nb + nk:])
        self._mem[key] = qv
        return qv

    def warm(self, bank: Bank) -> None:
        for q in bank.questions:
            self._vectors(q)

    # -------------------------------------------------------------- grading

    def grade(self, bank: Bank, q: Question, answer: str) -> Grade:
        weights = bank.weights_for(q)
        notes: list[str] = []
        text, note = clean_answer(answer)
        if note:
            notes.append(note)
        text = text.strip()
        # Sentences addressed to the grader are dropped before anything is measured, delivery included,
        # so an injected answer scores exactly what the same answer without the injection scores.
        parts = [p for p in re.split(r"(?<=[.!?;])\s+|\n+", text) if p.strip()]
        clean = [p for p in parts if not INJECTION.search(p)]
        if len(clean) < len(parts):
            notes.append("instructions addressed to the grader were ignored and earn nothing")
            text = " ".join(clean)
        words_all = text.split()
        n_words = len(words_all)
        if isinstance(answer, str) and len(answer) > MAX_CHARS:  # cut: count the whole (cheaply), for delivery
            n_words = len(answer.split()) if len(answer) <= 2_000_000 else round(n_words * len(answer) / max(1, len(text)))
        delivery = Delivery(n_words, len(FILLERS.findall(text)), len(HEDGES.findall(text)),
                            round(n_words / WPM * 60), q.time_box_s)
        qv = self._vectors(q)
        if len(words_all) > MAX_WORDS:
            text = " ".join(words_all[:MAX_WORDS])
            notes.append(f"only the first {MAX_WORDS} words were graded; an interview answer is far shorter")
        sentences = split_sentences(text)
        body = " ".join(sentences)
        words = body.split()
        if not words:
            notes.append("empty answer" if not (answer or "").strip() else "nothing left to grade")
            return self._floor(q, weights, qv, delivery, notes, body)

        vecs = self.embedder.embed([body, *sentences])
        a, s = vecs[0], vecs[1:]
        sim_good, sim_bad = qv.good @ a, qv.bad @ a
        g = float(np.mean(np.sort(sim_good)[-2:]))
        b = float(np.mean(np.sort(sim_bad)[-2:]))
        sim_q = float(qv.question @ a)
        kp_sim = (qv.key_points @ s.T).max(axis=1) if len(s) else np.zeros(len(q.key_points))
        coverage = np.array([_ramp(x, 0.30, 0.62) for x in kp_sim])
        # rambling: sentences that relate to nothing in the rubric
        anchors = np.vstack([qv.question[None, :], qv.good, qv.key_points])
        relevant = (anchors @ s.T).max(axis=0)
        off_share = float(np.mean(relevant < 0.25))
        content = [w for w in re.findall(r"[a-z']+", body.lower())]
        stop_share = sum(w in STOPWORDS for w in content) / max(1, len(content))
        n_spec = len(NUMBER.findall(body)) + len(MECHANISM.findall(body))
        spec = min(1.0, n_spec / 5.0)
        flags = [f for f, v in zip(q.red_flags, qv.red_flags, strict=True)
                 if f.lower() in body.lower() or (len(s) and float((s @ v).max()) >= 0.75)]
        overlap = len(set(content) & set(re.findall(r"[a-z']+", q.text.lower()))) / max(1, len(set(content)))

        feats = {"good": round(g, 4), "bad": round(b, 4), "question": round(sim_q, 4),
                 "coverage": round(float(coverage.mean()), 4), "off_topic_share": round(off_share, 4),
                 "stopword_share": round(stop_share, 4), "specificity": round(spec, 4), "red_flags": len(flags)}

        if max(g, sim_q, float(kp_sim.max(initial=0.0))) < OFF_TOPIC:
            notes.append("off topic: the answer does not address the question")
            return self._floor(q, weights, qv, delivery, notes, body, feats)
        if (sim_q > 0.9 or overlap > 0.85) and len(words) < len(q.text.split()) * 1.5:
            notes.append("the answer only repeats the question")
            return self._floor(q, weights, qv, delivery, notes, body, feats)

        contrast = _ramp(g - b, -0.06, 0.14)
        closeness = _ramp(g, 0.30, 0.72)
        exemplar = 0.6 * contrast + 0.4 * closeness
        focus = 1.0 - 0.6 * off_share
        damp = 1.0
        if len(words) >= 6 and (stop_share < 0.18 or _joined_list(content)):
            damp = 0.25
            notes.append("reads as a list of keywords, not an answer: it earns little")
        length = _ramp(len(words), 8, 45)  # a one-liner cannot carry an argument

        def cov(criterion: str) -> float:
            idx = [i for i, k in enumerate(q.key_points) if k.criterion == criterion]
            return float(coverage[idx].mean()) if idx else float(coverage.mean())

        flag_pen = 0.22 * len(flags)
        filler_pen = min(0.3, (delivery.fillers + 0.5 * delivery.hedges) / max(1, len(words)) * 8)
        over = 0.15 if delivery.spoken_s > 1.5 * q.time_box_s else 0.0
        raw = {
            "technical_accuracy": 0.45 * cov("technical_accuracy") + 0.35 * exemplar + 0.20 * spec - flag_pen,
            "narrative_coherence": 0.30 * float(coverage.mean()) + 0.45 * exemplar + 0.25 * focus - filler_pen - over,
            "stakeholder_alignment": 0.45 * cov("stakeholder_alignment") + 0.45 * exemplar + 0.10 * spec - flag_pen,
            "tension_handling": 0.55 * cov("tension_handling") + 0.45 * exemplar - 0.5 * flag_pen,
        }
        scores = {c: round(1 + 4 * min(1.0, max(0.0, raw[c] * focus * damp * (0.35 + 0.65 * length) / FULL_MARKS)), 2)
                  for c in weights}
        if UNSURE.search(body):
            for c in ("technical_accuracy", "tension_handling"):
                if c in scores:
                    scores[c] = min(scores[c], UNSURE_CAP)
            notes.append("admits a gap: honest, and it caps technical accuracy until the gap is closed")
        if delivery.spoken_s > 2 * q.time_box_s:  # the panel stops listening: length cannot buy a score
            for c in scores:
                scores[c] = min(scores[c], OVER_TIME_CAP)
            notes.append(f"about {delivery.spoken_s} s spoken against a {q.time_box_s} s time box: over twice "
                         f"the box caps every criterion at {OVER_TIME_CAP}")
        total = round(float(sum(weights[c] * scores[c] for c in weights)), 2)
        missed = [text for _, text, c in _gaps(q, weights, coverage) if c < 0.5]  # the costliest gap first
        lean = (s @ qv.good.T).max(axis=1) - (s @ qv.bad.T).max(axis=1)
        return Grade(q.id, scores, {c: round(w, 4) for c, w in weights.items()}, total,
                     *self._nearest(q, sim_good, sim_bad), missed,
                     self._improvement(q, weights, coverage, flags, len(words), delivery), delivery, notes, feats,
                     strongest=sentences[int(np.argmax(lean))], weakest=sentences[int(np.argmin(lean))])

    def _nearest(self, q: Question, sim_good: np.ndarray, sim_bad: np.ndarray
                 ) -> tuple[tuple[str, float], tuple[str, float]]:
        ig, ib = int(np.argmax(sim_good)), int(np.argmax(sim_bad))
        return (q.good[ig], round(float(sim_good[ig]), 4)), (q.bad[ib], round(float(sim_bad[ib]), 4))

    def _floor(self, q: Question, weights: dict[str, float], qv: _QuestionVectors, delivery: Delivery,
               notes: list[str], body: str, feats: dict[str, float] | None = None) -> Grade:
        sims_g = qv.good @ self.embedder.embed([body])[0] if body else np.zeros(len(q.good))
        sims_b = qv.bad @ self.embedder.embed([body])[0] if body else np.zeros(len(q.bad))
        return Grade(q.id, {c: 1.0 for c in weights}, {c: round(w, 4) for c, w in weights.items()}, 1.0,
                     *self._nearest(q, sims_g, sims_b), [k.text for k in q.key_points],
                     f"Answer the question itself. A strong answer covers: {q.key_points[0].text}", delivery, notes,
                     feats or {})

    @staticmethod
    def _improvement(q: Question, weights: dict[str, float], coverage: np.ndarray, flags: list[str], n_words: int,
                     delivery: Delivery) -> str:
        if flags:
            return f"Drop \"{flags[0]}\": the panel hears it as a red flag. Say what you would do yourself, with a number."
        missed = [text for _, text, c in _gaps(q, weights, coverage) if c < 0.5]  # as in Grade.missed
        if n_words < 30:
            return f"Develop it: one sentence cannot carry the argument. Start with: {(missed or [q.key_points[0].text])[0]}"
        if missed:  # the point a follow-up probes
            return f"Add what is missing: {missed[0]}"
        gap, text, _ = _gaps(q, weights, coverage)[0]
        if gap > 0.05:
            return f"Make this point fully: {text}"
        if delivery.over_time:
            return f"Tighten it: about {delivery.spoken_s} s spoken against a {delivery.time_box_s} s time box."
        return "Strong. To go further, put one number on the trade-off and name who in the room it serves."
