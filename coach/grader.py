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
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coach import answer as said  # the patterns the grader reads in an answer
from coach.answer import Delivery, claims, clean_answer, joined_list, split_sentences
from coach.config import Settings
from coach.embedder import Embedder, MiniLMEmbedder
from coach.exemplars import FALSE_CAP, Calibration, QuestionVectors, find_false_claim, goods, positions, without
from coach.points import MADE_AT, TERM_WEIGHT, Words, clauses, find_reversal, match_points, sentence_support
from coach.points import coverage as point_coverage
from coach.rubrics import LABELS, Bank, Question
from coach.tips import APPROACH, NOT_DONE, tip, weak_spots

__all__ = ["Calibration", "Delivery", "Grade", "Grader", "clean_answer", "goods", "split_sentences"]

log = logging.getLogger("coach.grader")

# The core (provenance of every number: docs/grader.md). Chosen on SemEval-2013's training part and the
# built-in exemplars; never on the held-out truthfulness and adversarial sets (tests/data/grader/).
W_POINTS = 0.5  # key-point coverage's share of a criterion; the rest is closeness to the good exemplars
W_CONTRAST = 0.4  # where the rubric has bad exemplars: how much "nearer good than bad" counts in closeness
FULL_MARKS = 0.9  # the raw blend that earns 5: every point made, as close to a good answer as one gets
OFF_TOPIC = 0.2  # the similarity under which an answer relates to nothing in the rubric

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




def _gaps(q: Question, weights: dict[str, float], coverage: np.ndarray) -> list[tuple[float, int, float]]:
    """(what the gap costs, key point's index, its coverage), costliest first; the order of the rubric breaks
    ties. The follow-up, the "Next time" tip and the debrief all name the first of these that was missed."""
    rows = [(weights.get(k.criterion, 0.0) * (1 - float(c)), i, float(c))
            for i, (k, c) in enumerate(zip(q.key_points, coverage, strict=True))]
    rows.sort(key=lambda r: (-round(r[0], 6), r[1]))
    return rows


def _soft(x: float) -> float:
    """0-1, linear in the middle and bending smoothly into both ends, so answers beyond full marks (or
    below nothing) keep their order instead of tying at 5 (or 1)."""
    if x > 0.9:
        return 0.9 + 0.1 * (1 - float(np.exp(-(x - 0.9) / 0.1)))
    if x < 0.1:
        return 0.1 * float(np.exp((x - 0.1) / 0.1))
    return x


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(min(1.0, max(0.0, (x - lo) / (hi - lo))))


OVER_TIME_CAP = 2.5



class Grader:
    """Grades answers for any bank. Exemplar vectors are cached on disk by content hash."""

    def __init__(self, embedder: Embedder | None = None, cache_dir: Path | None = None) -> None:
        self.embedder = embedder or MiniLMEmbedder()
        self.cache_dir = cache_dir  # None: exemplar vectors are kept in memory only
        self._mem: dict[str, QuestionVectors] = {}
        self._cal: dict[str, Calibration] = {}
        self.words = Words(self.embedder)  # single words, for negation around matched content

    @classmethod
    def from_settings(cls, settings: Settings) -> Grader:
        """The front ends' grader: the settings' torch threads, vectors cached in the data home."""
        return cls(MiniLMEmbedder(settings.grader_threads), cache_dir=settings.home / "cache" / "embeddings")

    # -------------------------------------------------------------- exemplar vectors

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
        return self._grade(bank, q, answer, spoken_s=spoken_s)

    def calibration(self, bank: Bank, q: Question) -> Calibration:
        """Where this question's held-out exemplars sit: each good exemplar's similarity to its nearest other
        good one, each bad one's to its nearest good one, shrunk towards defaults (there are few exemplars).
        An answer's closeness is read on that scale. Pure arithmetic on the exemplar vectors: the same
        answer always gets the same score."""
        key = self._key(q)
        if key not in self._cal:
            self._cal[key] = positions(self._vectors(q), len(q.good))[2]
        return self._cal[key]

    def _grade(self, bank: Bank, q: Question, answer: str, *, spoken_s: float | None = None) -> Grade:
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
        g = float(sim_good.max())
        b = float(sim_bad.max()) if len(sim_bad) else float("nan")
        sim_q = float(qv.question @ a)
        matches = match_points([k.text for k in q.key_points], qv.key_points, sentences, s)
        coverage = np.array([point_coverage(m) for m in matches])
        # rambling: sentences that relate to nothing in the rubric
        anchors = np.vstack([qv.question[None, :], qv.good, qv.key_points])
        relevant = (anchors @ s.T).max(axis=0)
        off_share = float(np.mean(relevant < 0.25))
        content = [w for w in re.findall(r"[a-z']+", body.lower())]
        stop_share = sum(w in said.STOPWORDS for w in content) / max(1, len(content))
        flags = [f for f, v in zip(q.red_flags, qv.red_flags, strict=True)
                 if f.lower() in body.lower() or (len(s) and float((s @ v).max()) >= 0.75)]
        overlap = len(set(content) & set(re.findall(r"[a-z']+", q.text.lower()))) / max(1, len(set(content)))
        kp_max = float(max((m.support for m in matches), default=0.0))

        feats = {"good": round(g, 4), "question": round(sim_q, 4), "coverage": round(float(coverage.mean()), 4),
                 "off_topic_share": round(off_share, 4), "stopword_share": round(stop_share, 4),
                 "red_flags": len(flags)}
        if len(sim_bad):
            feats["bad"] = round(b, 4)

        honest_plan = bool((said.UNSURE.search(body) or NOT_DONE.search(body)) and APPROACH.search(body))
        if max(g, sim_q, kp_max - TERM_WEIGHT) < OFF_TOPIC and not honest_plan:  # a plan to find out is on topic
            notes.append("off topic: the answer does not address the question")
            return self._floor(q, weights, qv, delivery, notes, body, feats)
        if (sim_q > 0.9 or overlap > 0.85) and len(words) < len(q.text.split()) * 1.5:
            notes.append("the answer only repeats the question")
            return self._floor(q, weights, qv, delivery, notes, body, feats)

        cal = self.calibration(bank, q)
        closeness = (0.5 + 3.0 * (g - cal.lo) / (cal.hi - cal.lo)) / 4  # held-out bad near 0.12, good near 0.88
        closeness = closeness if closeness <= 1 else 1 + 0.1 * (closeness - 1)  # past a good answer: order, not marks
        contrast = _ramp(g - b, -0.06, 0.14) if len(sim_bad) else closeness
        exemplar = (1 - W_CONTRAST) * closeness + W_CONTRAST * contrast
        focus = 1.0 - 0.6 * off_share
        damp = 1.0
        if len(words) >= 6 and ((stop_share < 0.18 and (len(sentences) == 1 or stop_share < 0.10))
                                or joined_list(content)):
            damp = 0.25
            notes.append("reads as a list of keywords, not an answer: it earns little")
        kp_mean = float(coverage.mean())

        def cov(criterion: str) -> float:
            """The criterion's own key points; where it has none, all of them."""
            idx = [i for i, k in enumerate(q.key_points) if k.criterion == criterion]
            return float(coverage[idx].mean()) if idx else kp_mean

        flag_pen = 0.22 * len(flags)
        filler_pen = min(0.3, (delivery.fillers + 0.5 * delivery.hedges) / max(1, len(words)) * 8)
        over = 0.15 if delivery.spoken_s > 1.5 * q.time_box_s else 0.0
        raw = {c: W_POINTS * cov(c) + (1 - W_POINTS) * exemplar - (flag_pen if c != "tension_handling" else flag_pen / 2)
               for c in ("technical_accuracy", "stakeholder_alignment", "tension_handling")}
        raw["narrative_coherence"] = (W_POINTS * kp_mean + (1 - W_POINTS) * exemplar) - filler_pen - over
        scores = {c: round(1 + 4 * _soft(raw[c] * focus * damp / FULL_MARKS), 2) for c in weights}
        feats.update(closeness=round(closeness, 4), contrast=round(contrast, 4), exemplar=round(exemplar, 4),
                     focus=round(focus, 4), damp=damp)

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
            coverage[reversal.point_index] = 0.0
        honest = said.UNSURE.search(body) or "not_done" in spots
        if honest:
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
        order = _gaps(q, weights, coverage)
        missing = {i for i, m in enumerate(matches) if m.missing}
        missed = [q.key_points[i].text for _, i, _ in order if i in missing]  # the costliest gap first
        wrong_point = (q.key_points[false.point].text if false is not None
                       else reversal.point if reversal is not None else None)
        if wrong_point is not None:  # the point it got wrong comes first: the follow-up and the tip name it
            missed = [wrong_point, *(m for m in missed if m != wrong_point)]
        lean = (s @ qv.good.T).max(axis=1) - ((s @ qv.bad.T).max(axis=1) if len(qv.bad) else 0.0)
        support = sentence_support([k.text for k in q.key_points], qv.key_points, sentences, s)
        making = {j for j, x in enumerate(support) if x >= MADE_AT}  # they make a key point: never evidence against
        against = [j for j in np.argsort(lean) if int(j) not in making]
        weakest = (false.said if false is not None else reversal.said if reversal is not None
                   else sentences[int(against[0])] if against and len(sentences) > 1 else "")
        grade = Grade(q.id, scores, {c: round(w, 4) for c, w in weights.items()}, total,
                      *self._nearest(q, sim_good, sim_bad), missed, "", delivery, notes, feats,
                      strongest=sentences[int(np.argmax(lean))], weakest=weakest)
        if false is not None or reversal is not None:
            spots["false_claim"] = false.said if false is not None else reversal.said  # type: ignore[union-attr]
        grade.weak_spots = spots
        grade.improvement = tip(q, grade, sentences, matches, flags, false, reversal, spots)
        return grade

    def _nearest(self, q: Question, sim_good: np.ndarray, sim_bad: np.ndarray
                 ) -> tuple[tuple[str, float], tuple[str, float]]:
        ig = int(np.argmax(sim_good))
        if not len(sim_bad):  # a question without bad exemplars (a public set's)
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
