"""Score an answer against a question's exemplars, per criterion, with the evidence.

Not a raw cosine. Per criterion we combine: how much closer the answer sits to the good exemplars than
to the bad ones, soft coverage of that criterion's key points (matched sentence by sentence, so a long
answer earns nothing for its length), specificity (numbers, mechanisms), red flags, an off-topic floor,
and delivery. Keyword stuffing, rambling, repeating the question and instructions aimed at the grader
earn nothing. Each question's own exemplars then decide how much plain similarity to its good answers
counts beside that blend, and a claim near what the rubric holds false caps the answer (`exemplars.py`);
what is read in the answer itself lives in `answer.py`. Same answer, same score: everything here is
deterministic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coach.config import Settings
from coach.grading import answer as said  # the patterns the grader reads in an answer
from coach.grading.answer import Delivery, claims, clean_answer, keyword_list, split_sentences
from coach.grading.embedder import Embedder, MiniLMEmbedder
from coach.grading.exemplars import (
    FALSE_CAP,
    SIM_HI,
    SIM_LO,
    Calibration,
    QuestionVectors,
    find_false_claim,
    fit,
    goods,
    positions,
    without,
)
from coach.grading.points import (
    FIRM_ABSENCE,
    FIRM_AT,
    FIRM_SENTENCES,
    MADE_AT,
    Words,
    claimed,
    clauses,
    find_reversal,
    match_points,
    support,
    term_share,
    terms,
)
from coach.grading.rubrics import LABELS, Bank, Question
from coach.grading.tips import tip, weak_spots

__all__ = ["Calibration", "Delivery", "Grade", "Grader", "clean_answer", "goods", "split_sentences"]

log = logging.getLogger("coach.grading.grader")

# Calibration (see `coach grader-eval`): the raw blend a strong answer reaches, and the similarity under
# which an answer relates to nothing in the rubric. Held-out good exemplars land near 4.5 with these.
FULL_MARKS = 0.72
OFF_TOPIC = 0.2

UNSURE_CAP = 3.4  # an honest gap with a plan to close it is worth something, not full marks
HONEST_FLOOR = 2.8  # ... and more than a confident wrong answer (capped at REVERSED_CAP or FALSE_CAP)
NO_PLAN_CAP = 2.5  # a gap admitted with no way to close it
REVERSED_CAP = 2.0  # says the opposite of a key point or of a good answer's sentence
CONTRADICTION_CAP = 3.0  # says a point and its opposite

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
    voice: dict[str, Any] | None = None  # delivery measured from the recording (`voice.delivery`), if spoken
    weak_spots: dict[str, str] = field(default_factory=dict)  # what a follow-up can probe (`tips.weak_spots`)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Grade:
        """Rebuild a stored grade (the store keeps `as_dict()`)."""
        dl = {k: v for k, v in d["delivery"].items() if k != "over_time"}
        return cls(d["question_id"], d["criteria"], d["weights"], d["total"],
                   (d["nearest_good"]["text"], d["nearest_good"]["similarity"]),
                   (d["nearest_bad"]["text"], d["nearest_bad"]["similarity"]), d["missed"], d["improvement"],
                   Delivery(**dl), d.get("notes", []), d.get("features", {}), d.get("strongest", ""),
                   d.get("weakest", ""), d.get("voice"), d.get("weak_spots", {}))

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


# Cached calibrations are keyed by the scoring code's own bytes: any change to it recomputes them.
CAL_VERSION = hashlib.sha256(b"".join((Path(__file__).parent / f).read_bytes()
                                      for f in ("grader.py", "answer.py", "exemplars.py", "points.py", "tips.py"))
                       ).hexdigest()[:12]


def _gaps(q: Question, weights: dict[str, float], coverage: np.ndarray) -> list[tuple[float, str, float]]:
    """(what the gap costs, key point, its coverage), costliest first; the order of the rubric breaks ties.
    The follow-up, the "Next time" tip and the debrief all name the first of these that was missed."""
    rows = [(weights.get(k.criterion, 0.0) * (1 - float(c)), i, k.text, float(c))
            for i, (k, c) in enumerate(zip(q.key_points, coverage, strict=True))]
    rows.sort(key=lambda r: (-round(r[0], 6), r[1]))
    return [(g, t, c) for g, _, t, c in rows]


def _soft(x: float) -> float:
    """0-1, linear in the middle and bending smoothly into both ends, so answers beyond full marks (or
    below nothing) keep their order instead of tying at 5 (or 1)."""
    if x > 0.9:
        return 0.9 + 0.1 * (1 - float(np.exp(-(x - 0.9) / 0.1)))
    if x < 0.1:
        return 0.1 * float(np.exp((x - 0.1) / 0.1))
    return float(x)


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


OVER_TIME_CAP = 2.5
W_CONTRAST = 0.6  # "nearer the good exemplars than the bad ones" against plain closeness to the good ones
TERM_W = 0.3  # how much a good answer's key terms add to closeness in meaning (SemEval-2013 training AUC)
CLOSE_LO, CLOSE_HI = 0.35, 0.85  # closeness: about where held-out bad and good exemplars sit, terms included
NO_CAL_ALPHA = 0.5  # a rubric with no bad exemplar cannot calibrate: the blend and closeness count alike
LENGTH_LO, LENGTH_HI = 0.15, 1.0  # share of the good answers' median length where the length ramp starts, ends



class Grader:
    """Grades answers for any bank. Exemplar vectors are cached on disk by content hash."""

    def __init__(self, embedder: Embedder | None = None, cache_dir: Path | None = None) -> None:
        self.embedder = embedder or MiniLMEmbedder()
        self.cache_dir = cache_dir  # None: exemplar vectors are kept in memory only
        self._mem: dict[str, QuestionVectors] = {}
        self._cal: dict[str, Calibration] = {}
        self.words = Words(self.embedder)  # single words embedded once: synonyms when reading a negation

    @classmethod
    def from_settings(cls, settings: Settings) -> Grader:
        """The front ends' grader: the settings' torch threads, vectors cached in the data home (or the
        shared cache COACH_GRADER_CACHE names)."""
        cache = settings.grader_cache or settings.home / "cache" / "embeddings"
        return cls(MiniLMEmbedder(settings.grader_threads), cache_dir=cache)

    # -------------------------------------------------------------- exemplar vectors

    @staticmethod
    def _good_words(q: Question) -> float:
        """The median word count of the question's good answers (the length its answers are judged against)."""
        return max(4.0, float(np.median([len(t.split()) for t in goods(q)])))

    def _key(self, q: Question) -> str:
        texts = [q.text, *goods(q), *q.bad, *(k.text for k in q.key_points), *q.red_flags,
                 *(w for k in q.key_points for w in k.wrong)]
        return hashlib.sha256("\x1f".join([self.embedder.name, *texts]).encode()).hexdigest()[:24]

    def _vectors(self, q: Question) -> QuestionVectors:
        wrong = [(i, w) for i, k in enumerate(q.key_points) for w in k.wrong]
        good_sents = [x for t in goods(q) for x in split_sentences(t)]
        bad_sents = [x for t in q.bad for x in split_sentences(t)]
        kp_clauses = [(i, c) for i, k in enumerate(q.key_points) for c in clauses(k.text)]
        texts = [q.text, *goods(q), *q.bad, *(k.text for k in q.key_points), *q.red_flags, *(w for _, w in wrong),
                 *good_sents, *bad_sents, *(c for _, c in kp_clauses)]
        key = self._key(q)
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
        cuts = np.cumsum([1, len(goods(q)), len(q.bad), len(q.key_points), len(q.red_flags), len(wrong),
                          len(good_sents), len(bad_sents)])
        parts = np.split(vecs, cuts)
        qv = QuestionVectors(vecs[0], parts[1], parts[2], parts[3], parts[4], parts[5], [i for i, _ in wrong],
                              parts[6], parts[7], bad_sents,
                              [i for i, t in enumerate(goods(q)) for _ in split_sentences(t)],
                              [i for i, t in enumerate(q.bad) for _ in split_sentences(t)], parts[8], kp_clauses)
        self._mem[key] = qv
        return qv

    def held_out(self, q: Question, kind: str, i: int) -> Question:
        """`q` with its `kind` ("good" or "bad") exemplar `i` left out, its vectors sliced from `q`'s (nothing
        is embedded again): how calibration, grader-eval and rubric check grade an exemplar held out."""
        items = getattr(q, kind)
        held = q.model_copy(update={kind: [*items[:i], *items[i + 1:]]})
        key = self._key(held)
        if key not in self._mem:
            self._mem[key] = without(self._vectors(q), kind, i)
        return held

    def held_out_totals(self, bank: Bank, q: Question) -> tuple[list[float], list[float]]:
        """Each good and each bad exemplar graded with itself left out: grader-eval and rubric check."""
        scores: dict[str, list[float]] = {"good": [], "bad": []}
        for kind in scores:
            for i, text in enumerate(getattr(q, kind)):
                scores[kind].append(self.grade(bank, self.held_out(q, kind, i), text).total)
        return scores["good"], scores["bad"]

    def exemplar_vectors(self, q: Question) -> tuple[np.ndarray, np.ndarray]:
        """The good (with the reference, last) and bad exemplars' unit vectors, one row each."""
        qv = self._vectors(q)
        return qv.good, qv.bad

    def max_good_cosine(self, q: Question, answer: str) -> float:
        """The baseline every grader must beat: the answer's highest cosine to a good exemplar or the reference."""
        text = clean_answer(answer)[0].strip()
        if not text:
            return 0.0
        return float((self._vectors(q).good @ self.embedder.embed([text])[0]).max())

    def warm(self, bank: Bank) -> None:
        """Embed every question's exemplars and calibrate it, so no answer waits for either."""
        for q in bank.questions:
            self.calibration(bank, q)

    # -------------------------------------------------------------- grading

    def grade(self, bank: Bank, q: Question, answer: str, spoken_s: float | None = None) -> Grade:
        """The answer's grade, calibrated to this question's exemplars (see `calibration`). `spoken_s`: the
        time it took to say, measured from a recording; else estimated from its words."""
        return self._grade(bank, q, answer, calibrate=True, spoken_s=spoken_s)

    def calibration(self, bank: Bank, q: Question) -> Calibration:
        """How this question's own exemplars say to weigh the rubric blend against plain similarity to the
        good answers. Each exemplar is graded with itself left out (the rubric blend, and its similarity to
        the remaining good ones mapped onto 1-5 by where held-out goods and bads sit); the mix that best
        separates held-out goods from bads is kept, shrunk towards the rubric blend alone (there are few
        exemplars). Cached by the question's content, so the same answer always gets the same score."""
        qv = self._vectors(q)
        weights = json.dumps(sorted(bank.weights_for(q).items()))
        key = hashlib.sha256(f"{CAL_VERSION}\x1f{self._key(q)}\x1f{weights}".encode()).hexdigest()[:24]
        if key in self._cal:
            return self._cal[key]
        path = self.cache_dir / f"{key}.cal.json" if self.cache_dir is not None else None
        if path is not None and path.exists():
            try:
                self._cal[key] = Calibration(**json.loads(path.read_text()))
                return self._cal[key]
            except (OSError, ValueError, TypeError):
                pass  # a torn cache file: recompute
        if not len(q.bad) or len(q.good) < 2:  # nothing to calibrate on: the defaults, with a bad answer using
            # about a fifth of a good answer's key terms and a good one about three fifths (SemEval training)
            self._cal[key] = Calibration(SIM_LO + TERM_W * 0.2, SIM_HI + TERM_W * 0.6, NO_CAL_ALPHA)
            return self._cal[key]
        gt = [terms(x) for x in goods(q)]
        rec = lambda texts: np.array([[term_share(t, terms(x)) for t in gt] for x in texts])  # noqa: E731
        loo_good, loo_bad, placed = positions(qv, len(q.good), rec(goods(q)), rec(q.bad), TERM_W)
        rubric = [self._grade(bank, self.held_out(q, kind, i), text, calibrate=False).total
                  for kind, items in (("good", q.good), ("bad", q.bad)) for i, text in enumerate(items)]
        cal = fit(placed, rubric, [placed.similarity_score(s) for s in (*loo_good, *loo_bad)], len(q.good))
        self._cal[key] = cal
        if path is not None:
            try:
                tmp = path.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_text(json.dumps(asdict(cal)))
                os.replace(tmp, path)
            except OSError as exc:  # a full or read-only disk: the cache is only a speed-up
                log.info("calibration not cached: %s", exc)
        return cal

    def _grade(self, bank: Bank, q: Question, answer: str, *, calibrate: bool, spoken_s: float | None = None) -> Grade:
        weights = bank.weights_for(q)
        notes: list[str] = []
        text, note = clean_answer(answer)
        if note:
            notes.append(note)
        text = text.strip()
        # Sentences addressed to the grader are dropped before anything is measured, delivery included,
        # so an injected answer scores exactly what the same answer without the injection scores.
        parts = [p for p in re.split(r"(?<=[.!?;])\s+|\n+", text) if p.strip()]
        clean = [p for p in parts if not said.INJECTION.search(p)]
        if len(clean) < len(parts):
            notes.append("instructions addressed to the grader were ignored and earn nothing")
            text = " ".join(clean)
        words_all = text.split()
        n_words = len(words_all)
        if isinstance(answer, str) and len(answer) > said.MAX_CHARS:  # cut: count the whole (cheaply), for delivery
            n_words = len(answer.split()) if len(answer) <= 2_000_000 else round(n_words * len(answer) / max(1, len(text)))
        delivery = Delivery(n_words, len(said.FILLERS.findall(text)), len(said.HEDGES.findall(text)),
                            round(n_words / said.WPM * 60) if spoken_s is None else round(spoken_s), q.time_box_s)
        qv = self._vectors(q)
        if len(words_all) > said.MAX_WORDS:
            text = " ".join(words_all[:said.MAX_WORDS])
            notes.append(f"only the first {said.MAX_WORDS} words were graded; an interview answer is far shorter")
        sentences = split_sentences(text)
        body = " ".join(sentences)
        words = body.split()
        if not words:
            notes.append("empty answer" if not (answer or "").strip() else "nothing left to grade")
            return self._floor(q, weights, qv, delivery, notes, body)

        units = claims(sentences)
        vecs = self.embedder.embed([body, *units])
        a, s, u = vecs[0], vecs[1:1 + len(sentences)], vecs[1:]
        sim_good, sim_bad = qv.good @ a, qv.bad @ a
        g = float(np.mean(np.sort(sim_good)[-2:]))
        # a rubric with no bad exemplar (a user's first draft, a public question with a reference only): the
        # contrast with bad answers is unknown, so it neither helps nor hurts
        b = float(np.mean(np.sort(sim_bad)[-2:])) if len(sim_bad) else g - 0.04
        sim_q = float(qv.question @ a)
        kp_sim = (qv.key_points @ s.T).max(axis=1) if len(s) else np.zeros(len(q.key_points))
        sup = support([k.text for k in q.key_points], qv.key_points, units, u)  # points x claims, sentences first
        matches = match_points(sup[:, :len(sentences)])
        coverage = np.array([_ramp(x, 0.30, 0.62) for x in kp_sim])  # the score's; `matches` say what is missing
        # rambling: sentences that relate to nothing in the rubric
        anchors = np.vstack([qv.question[None, :], qv.good, qv.key_points])
        relevant = (anchors @ s.T).max(axis=0)
        off_share = float(np.mean(relevant < 0.25))
        content = [w for w in re.findall(r"[a-z']+", body.lower())]
        terms_a = terms(body)
        stop_share = sum(w in said.STOPWORDS for w in content) / max(1, len(content))
        n_spec = len(said.NUMBER.findall(body)) + len(said.MECHANISM.findall(body))
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

        contrast = _soft((g - b + 0.06) / 0.20)  # nearer the good exemplars than the bad ones
        # closeness to a good answer: in meaning (MiniLM) and in the good answer's own key terms, which
        # MiniLM blurs (a correct one-liner shares the reference's terms; a wrong one on the topic often not)
        recalls = np.array([term_share(terms(x), terms_a) for x in goods(q)])
        recall = float(recalls.max(initial=0.0))
        closeness = _soft((g + TERM_W * recall - CLOSE_LO) / (CLOSE_HI - CLOSE_LO))
        feats["term_recall"] = round(recall, 4)
        exemplar = W_CONTRAST * contrast + (1 - W_CONTRAST) * closeness
        focus = 1.0 - 0.6 * off_share
        damp = 1.0
        if keyword_list(body, sentences, content, stop_share):
            damp = 0.25
            notes.append("reads as a list of keywords, not an answer: it earns little")
        # a one-liner cannot carry an argument that the rubric's good answers need a paragraph for; where they
        # are one line themselves, neither need the answer be
        length = _ramp(len(words) / self._good_words(q), LENGTH_LO, LENGTH_HI)

        def cov(criterion: str) -> float:
            """The criterion's own key points; where it has none, the exemplars speak for it."""
            idx = [i for i, k in enumerate(q.key_points) if k.criterion == criterion]
            return float(coverage[idx].mean()) if idx else exemplar

        flag_pen = 0.22 * len(flags)
        filler_pen = min(0.3, (delivery.fillers + 0.5 * delivery.hedges) / max(1, len(words)) * 8)
        over = 0.15 if delivery.spoken_s > 1.5 * q.time_box_s else 0.0
        raw = {
            "technical_accuracy": 0.45 * cov("technical_accuracy") + 0.35 * exemplar + 0.20 * spec - flag_pen,
            "narrative_coherence": 0.30 * float(coverage.mean()) + 0.45 * exemplar + 0.25 * focus - filler_pen - over,
            "stakeholder_alignment": 0.45 * cov("stakeholder_alignment") + 0.45 * exemplar + 0.10 * spec - flag_pen,
            "tension_handling": 0.55 * cov("tension_handling") + 0.45 * exemplar - 0.5 * flag_pen,
        }
        scores = {c: round(1 + 4 * _soft(raw[c] * focus * damp * (0.35 + 0.65 * length) / FULL_MARKS), 2)
                  for c in weights}
        if calibrate:  # the mix this question's exemplars chose (1.0: the rubric blend alone)
            cal = self.calibration(bank, q)
            gmax = float((sim_good + TERM_W * recalls).max())  # the nearest good answer, its key terms included
            # closeness earns only what the blend's own modifiers allow: a keyword list, a ramble or an answer
            # far shorter than the good ones is no better for sitting near a good answer
            placed = _soft((1.5 + 3.0 * (gmax - cal.lo) / (cal.hi - cal.lo) - 1) / 4)  # a held-out good near 4.5
            sim_score = 1 + 4 * placed * focus * damp * (0.35 + 0.65 * length)
            scores = {c: round(cal.alpha * v + (1 - cal.alpha) * sim_score, 2) for c, v in scores.items()}
            feats.update(similarity_score=round(sim_score, 2), alpha=cal.alpha)
        false = find_false_claim(q, qv, units, u)
        reversal = (None if false is not None
                    else find_reversal(q, qv.kp_clauses, qv.kp_clause_text, qv, units, u, self.words))
        spots = weak_spots(q, body, sentences, matches)
        if reversal is not None and reversal.also_made is not None:  # says both: a contradiction, not a bluff
            spots["contradiction"] = f"{reversal.also_made} / {reversal.said}"
            for c in scores:
                scores[c] = min(scores[c], CONTRADICTION_CAP)
            notes.append(f"contradicts itself: \"{reversal.also_made}\" against \"{reversal.said}\"; every "
                         f"criterion is capped at {CONTRADICTION_CAP}")
            reversal = None
        elif reversal is not None:
            matches[reversal.point_index].reversed_by = reversal.why
        if said.UNSURE.search(body) or "not_done" in spots:
            approach = "approach" in spots
            cap = UNSURE_CAP if approach else NO_PLAN_CAP
            for c in scores:  # the gap is the answer's, not one criterion's
                scores[c] = min(max(scores[c], HONEST_FLOOR) if approach else scores[c], cap)
            notes.append(f"admits a gap{' and says how to close it' if approach else ''}: honest, and it caps every "
                         f"criterion at {cap} until the gap is closed")
        if delivery.spoken_s > 2 * q.time_box_s:  # the panel stops listening: length cannot buy a score
            for c in scores:
                scores[c] = min(scores[c], OVER_TIME_CAP)
            notes.append(f"about {delivery.spoken_s} s spoken against a {q.time_box_s} s time box: over twice "
                         f"the box caps every criterion at {OVER_TIME_CAP}")
        if false is not None:  # right words, false claim: the vocabulary earns nothing
            for c in scores:
                scores[c] = min(scores[c], FALSE_CAP)
            notes.append(f"states something false: \"{false.said}\" is close to \"{false.like}\", which the "
                         f"rubric holds wrong; every criterion is capped at {FALSE_CAP}")
            feats["false_claim"] = round(false.margin, 4)
        elif reversal is not None:  # says the opposite of what the rubric holds: caught without a `wrong:` entry
            for c in scores:
                scores[c] = min(scores[c], REVERSED_CAP)
            notes.append(f"reverses a point: \"{reversal.said}\" {reversal.why} of \"{reversal.point}\"; every "
                         f"criterion is capped at {REVERSED_CAP}")
            feats["reversed"] = 1.0
        total = round(float(sum(weights[c] * scores[c] for c in weights)), 2)
        # a point is called missing only when no sentence comes near it (judged sentence by sentence,
        # `points.py`), and in a short answer when none of its claims is about it; the higher an answer
        # scores, the clearer the absence must be (a weak match in a strong answer is likelier a paraphrase)
        about = claimed(sup)
        short = len(sentences) < FIRM_SENTENCES  # one sentence that makes one point does not make them all
        missing = {q.key_points[i].text for i, m in enumerate(matches)
                   if m.reversed_by is not None
                   or (short and i not in about)
                   or (m.missing and (total < FIRM_AT or m.support < FIRM_ABSENCE))}
        missed = [text for _, text, _ in _gaps(q, weights, coverage) if text in missing]  # the costliest first
        wrong_point = (q.key_points[false.point].text if false is not None
                       else reversal.point if reversal is not None else None)
        if wrong_point is not None:  # the point it got wrong comes first: the follow-up and the tip name it
            missed = [wrong_point, *(m for m in missed if m != wrong_point)]
        lean = (s @ qv.good.T).max(axis=1) - ((s @ qv.bad.T).max(axis=1) if len(qv.bad) else 0.0)
        best = sup[:, :len(sentences)].max(axis=0, initial=0.0)  # each sentence's best-supported point
        making = {j for j, x in enumerate(best) if x >= MADE_AT}  # they make a key point: never evidence against
        against = [int(j) for j in np.argsort(lean) if int(j) not in making]
        weakest = (false.said if false is not None else reversal.said if reversal is not None
                   else sentences[against[0]] if against and len(sentences) > 1 else "")
        if false is not None or reversal is not None:
            spots["false_claim"] = false.said if false is not None else reversal.said  # type: ignore[union-attr]
        grade = Grade(q.id, scores, {c: round(w, 4) for c, w in weights.items()}, total,
                      *self._nearest(q, sim_good, sim_bad), missed, "", delivery, notes, feats,
                      strongest=sentences[int(np.argmax(lean))], weakest=weakest, weak_spots=spots)
        grade.improvement = tip(q, grade, sentences, matches, flags, false, reversal, spots)
        return grade

    def _nearest(self, q: Question, sim_good: np.ndarray, sim_bad: np.ndarray
                 ) -> tuple[tuple[str, float], tuple[str, float]]:
        ig = int(np.argmax(sim_good))
        if not len(sim_bad):
            return (goods(q)[ig], round(float(sim_good[ig]), 4)), ("", 0.0)
        ib = int(np.argmax(sim_bad))
        return (goods(q)[ig], round(float(sim_good[ig]), 4)), (q.bad[ib], round(float(sim_bad[ib]), 4))

    def _floor(self, q: Question, weights: dict[str, float], qv: QuestionVectors, delivery: Delivery,
               notes: list[str], body: str, feats: dict[str, float] | None = None) -> Grade:
        sims_g = qv.good @ self.embedder.embed([body])[0] if body else np.zeros(len(qv.good))
        sims_b = qv.bad @ self.embedder.embed([body])[0] if body else np.zeros(len(q.bad))
        return Grade(q.id, {c: 1.0 for c in weights}, {c: round(w, 4) for c, w in weights.items()}, 1.0,
                     *self._nearest(q, sims_g, sims_b), [k.text for k in q.key_points],
                     f"Answer the question itself. A strong answer covers: {q.key_points[0].text}", delivery, notes,
                     feats or {})
