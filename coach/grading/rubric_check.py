"""`coach rubric check FILE`: can the grader be trusted on a rubric? Where it cannot, what to add.

The grader learns a question from its exemplars, so a rubric is only as good as they are. Per question
this checks: exemplars that say nearly the same thing (the grader learns a phrasing, not an idea); a good
and a bad exemplar the grader hears as one text; held-out exemplars the grader cannot put in order (each
exemplar graded with itself left out, as `grader-eval` does); red flags that a good exemplar contains; and
criteria with no key point of their own (scored from the exemplars alone, with no specific feedback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from coach.grading.grader import Grader, goods
from coach.grading.rubrics import LABELS, Bank, Question

SAME = 0.92  # two exemplars of one kind this close say the same thing to the grader
CROSS = 0.86  # a good and a bad exemplar this close are one text to it
MIN_GAP = 0.75  # held-out good exemplars must average this much above held-out bad ones
MIN_PAIRS = 0.75  # ... and beat them in this share of (good, bad) pairs (7 of 9 with three of each)


@dataclass
class QuestionCheck:
    question: str
    good_mean: float = 0.0
    bad_mean: float = 0.0
    pairs: float = 0.0  # share of (held-out good, held-out bad) pairs the good one wins
    alpha: float = 1.0  # the rubric blend's share after calibration (the rest: similarity)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_question(grader: Grader, bank: Bank, q: Question) -> QuestionCheck:
    out = QuestionCheck(q.id)
    good_v, bad_v = grader.exemplar_vectors(q)
    good_v = good_v[:len(q.good)]  # the reference answer is not an exemplar to compare
    for kind, vecs in (("good", good_v), ("bad", bad_v)):
        sims = vecs @ vecs.T
        for i in range(len(vecs)):
            for j in range(i + 1, len(vecs)):
                if sims[i, j] >= SAME:
                    out.problems.append(f"{kind} exemplars {i + 1} and {j + 1} say nearly the same thing (cosine "
                                        f"{sims[i, j]:.2f}): rewrite one in other words, so the grader learns the "
                                        f"idea and not one phrasing")
    cross = good_v @ bad_v.T
    for i, j in zip(*np.nonzero(cross >= CROSS), strict=True):
        out.problems.append(f"good exemplar {i + 1} and bad exemplar {j + 1} are nearly one text to the grader "
                            f"(cosine {cross[i, j]:.2f}): make the bad one wrong or vague where the good one is not")
    g_s, b_s = grader.held_out_totals(bank, q)
    out.good_mean, out.bad_mean = float(np.mean(g_s)), float(np.mean(b_s))
    out.pairs = float(np.mean([a > b for a in g_s for b in b_s]))
    if out.good_mean - out.bad_mean < MIN_GAP or out.pairs < MIN_PAIRS:
        worst_g, worst_b = int(np.argmin(g_s)), int(np.argmax(b_s))
        out.problems.append(
            f"held out, good exemplars score {out.good_mean:.1f} and bad ones {out.bad_mean:.1f} (good wins "
            f"{out.pairs:.0%} of pairs; the weakest good is #{worst_g + 1} at {g_s[worst_g]:.1f}, the strongest bad "
            f"#{worst_b + 1} at {b_s[worst_b]:.1f}): the grader cannot tell them apart here. Add good exemplars that "
            f"state the key points in other words, and bad ones that miss or contradict them")
    for flag in q.red_flags:
        for i, text in enumerate(goods(q)):
            if flag.lower() in text.lower():
                out.problems.append(f"red flag {flag!r} appears in good exemplar {i + 1}: drop one of them")
    tagged = {k.criterion for k in q.key_points}
    for crit, w in bank.weights_for(q).items():
        if crit != "narrative_coherence" and crit not in tagged:  # coherence is read from the whole answer
            out.notes.append(f"{LABELS.get(crit, crit)} ({w:.0%} of the total) has no key point: it is scored from "
                             f"similarity to the exemplars alone, and its feedback cannot name what is missing. "
                             f"Add a key point tagged {crit}, or drop its weight")
    out.alpha = grader.calibration(bank, q).alpha
    return out


def check_bank(grader: Grader, bank: Bank,
               progress: Callable[[int, int, str], None] | None = None) -> list[QuestionCheck]:
    """Every question checked in turn; `progress(done, total, question id)` after each (about 20 s each)."""
    out = []
    for i, q in enumerate(bank.questions, 1):
        out.append(check_question(grader, bank, q))
        if progress is not None:
            progress(i, len(bank.questions), q.id)
    return out


def render(path: str, bank: Bank, checks: list[QuestionCheck]) -> str:
    lines = [f"rubric check: {path} (bank {bank.bank}, {len(checks)} questions)"]
    width = max(len(c.question) for c in checks)
    for c in checks:
        verdict = "PROBLEM" if c.problems else "ok"
        lines.append(f"  {c.question:{width}}  {verdict:7}  held-out good {c.good_mean:.1f} vs bad {c.bad_mean:.1f}, "
                     f"good wins {c.pairs:.0%} of pairs; similarity share {1 - c.alpha:.0%}")
        lines += [f"      problem: {p}" for p in c.problems]
        lines += [f"      note: {n}" for n in c.notes]
    bad = [c.question for c in checks if c.problems]
    notes = sum(len(c.notes) for c in checks)
    if bad:
        lines.append(f"{sum(len(c.problems) for c in checks)} problem(s), {notes} note(s): do not trust the grader on "
                     f"{', '.join(bad)} until they are fixed")
    else:
        lines.append(f"passed: no problems, {notes} note(s)")
    return "\n".join(lines)
