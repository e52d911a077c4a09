"""What a question's own exemplars say about an answer: the vectors of everything the rubric wrote, the
calibration (how much plain similarity to the good answers counts beside the grader's blend, chosen by
leave-one-out over the exemplars) and false claims (a sentence nearer what the rubric holds wrong than
anything it holds true)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from coach.grading.rubrics import Question


@dataclass
class QuestionVectors:
    question: np.ndarray
    good: np.ndarray  # the good exemplars, then the reference answer where the rubric has one
    bad: np.ndarray
    key_points: np.ndarray
    red_flags: np.ndarray
    wrong: np.ndarray  # every key point's false versions, in order
    wrong_of: list[int]  # the key point each false version belongs to
    good_sents: np.ndarray  # the good exemplars and the reference, sentence by sentence
    bad_sents: np.ndarray  # the bad exemplars, sentence by sentence
    bad_sent_text: list[str]
    good_sent_of: list[int]  # the exemplar each good sentence comes from
    bad_sent_of: list[int]
    kp_clauses: np.ndarray = field(default_factory=lambda: np.zeros((0, 384), np.float32))  # each point's clauses
    kp_clause_text: list[tuple[int, str]] = field(default_factory=list)  # (key point, clause)


SIM_LO, SIM_HI = 0.35, 0.75  # default similarity to the nearest good exemplar of a bad and of a good answer
SHRINK_SIM = 0.5  # how far the per-question positions are pulled towards those defaults
PRIOR_N = 6.0  # the rubric blend alone counts as this many exemplars' worth of evidence
FALSE_CAP = 1.3  # a confident wrong claim: every criterion at most this, whatever else the answer says
FALSE_NEAR = 0.70  # how close a claim must sit to a false version (or a bad exemplar's sentence) to count
FALSE_MARGIN = 0.10  # ... and how much closer than to anything true (a key point, a good sentence)
BAD_MARGIN = 0.15  # a bad exemplar's sentence is not always false, only weak: it needs a wider margin


@dataclass(frozen=True)
class Calibration:
    lo: float  # where a held-out bad exemplar sits: similarity to its nearest good one (shrunk)
    hi: float  # where a held-out good exemplar sits
    alpha: float  # the rubric blend's share of each criterion; the rest is similarity to the good answers

    def similarity_score(self, sim: float) -> float:
        """Similarity to the nearest good answer on 1-5: a held-out bad lands near 1.5, a good near 4.5."""
        return float(min(5.0, max(1.0, 1.5 + 3.0 * (sim - self.lo) / (self.hi - self.lo))))


def goods(q: Question) -> list[str]:
    """What the answer is compared with as good: the exemplars and the reference answer."""
    return [*q.good, q.reference] if q.reference else list(q.good)


@dataclass
class FalseClaim:
    said: str  # the answer's sentence or clause
    like: str  # the false version or bad exemplar sentence it is close to
    point: int  # the key point it contradicts
    margin: float


def positions(qv: QuestionVectors, n_good: int, recall_good: np.ndarray | None = None,
              recall_bad: np.ndarray | None = None, term_w: float = 0.0) -> tuple[list[float], list[float], Calibration]:
    """Each exemplar's closeness to its nearest good one with itself left out (goods, then bads): cosine plus
    `term_w` times the share of that good one's key terms it uses (`recall_*`: exemplar x good), and where
    held-out goods and bads of this question sit, shrunk towards the defaults (alpha not chosen yet)."""
    gg = qv.good @ qv.good.T + (term_w * recall_good if recall_good is not None else 0.0)
    np.fill_diagonal(gg, -1.0)
    loo_good = [float(gg[i].max()) for i in range(n_good)]  # the reference (if any) is never held out
    bg = qv.bad @ qv.good.T + (term_w * recall_bad if recall_bad is not None else 0.0)
    loo_bad = [float(row.max()) for row in bg]
    lo = SHRINK_SIM * SIM_LO + (1 - SHRINK_SIM) * float(np.mean(loo_bad))
    hi = SHRINK_SIM * SIM_HI + (1 - SHRINK_SIM) * float(np.mean(loo_good))
    if hi - lo < 0.05:
        lo, hi = SIM_LO, SIM_HI
    return loo_good, loo_bad, Calibration(lo, hi, 1.0)


def fit(placed: Calibration, rubric: list[float], similarity: list[float], n_good: int) -> Calibration:
    """The share of the rubric blend (against similarity) that best separates the held-out goods (the first
    `n_good` scores) from the bads, on a grid of eleven, shrunk towards the blend alone."""
    r, sm = np.array(rubric), np.array(similarity)
    yes = np.arange(len(r)) < n_good
    best, best_sep = 1.0, -np.inf
    for a in np.linspace(0, 1, 11):
        c = a * r + (1 - a) * sm
        sep = (c[yes].mean() - c[~yes].mean()) / (np.sqrt((c[yes].var() + c[~yes].var()) / 2) + 0.3)
        if sep > best_sep + 1e-9:
            best, best_sep = float(a), float(sep)
    n = len(r)
    return Calibration(placed.lo, placed.hi, round((n * best + PRIOR_N) / (n + PRIOR_N), 3))


def find_false_claim(q: Question, qv: QuestionVectors, units: list[str], u: np.ndarray) -> FalseClaim | None:
    """The answer's sentence or clause that sits nearest a false version of a key point (or a bad
    exemplar's sentence) and clearly nearer it than to anything true the rubric says, if any."""
    if not len(u):
        return None
    truth = np.vstack([qv.key_points @ u.T, qv.good_sents @ u.T]).max(axis=0)
    best: FalseClaim | None = None
    wrong = [w for k in q.key_points for w in k.wrong]
    for sims, texts, margin, src in ((qv.wrong @ u.T, wrong, FALSE_MARGIN, "wrong"),
                                     (qv.bad_sents @ u.T, qv.bad_sent_text, BAD_MARGIN, "bad")):
        if not len(texts):
            continue
        for j in range(len(units)):
            i = int(np.argmax(sims[:, j]))
            near, over = float(sims[i, j]), float(sims[i, j] - truth[j]) - margin
            if (near >= FALSE_NEAR and over >= 0 and len(units[j].split()) >= 6
                    and (best is None or over > best.margin)):
                point = qv.wrong_of[i] if src == "wrong" else int(np.argmax(qv.key_points @ u[j]))
                best = FalseClaim(units[j], texts[i], point, over)
    return best


def without(qv: QuestionVectors, kind: str, i: int) -> QuestionVectors:
    """The vectors with the `kind` ("good" or "bad") exemplar `i` and its sentences left out."""
    if kind == "good":
        keep = [j for j, e in enumerate(qv.good_sent_of) if e != i]
        return replace(qv, good=np.delete(qv.good, i, axis=0), good_sents=qv.good_sents[keep],
                       good_sent_of=[e - (e > i) for e in (qv.good_sent_of[j] for j in keep)])
    keep = [j for j, e in enumerate(qv.bad_sent_of) if e != i]
    return replace(qv, bad=np.delete(qv.bad, i, axis=0), bad_sents=qv.bad_sents[keep],
                   bad_sent_text=[qv.bad_sent_text[j] for j in keep],
                   bad_sent_of=[e - (e > i) for e in (qv.bad_sent_of[j] for j in keep)])
