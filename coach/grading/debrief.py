"""The hiring-committee debrief: per-panelist verdicts with quoted evidence, one decision (its reports:
`coach.report.debrief`).

Each panelist weighs the criteria by what they care about. The committee rule follows the loops this
product rehearses: an offer needs no sustained objection, and a plain Yes is not enough — at least two
panelists must be a Strong Yes and none may say No.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from coach.grading.grader import Grade, split_sentences
from coach.grading.levels import Placement
from coach.grading.reveal import Reveal
from coach.grading.rubrics import LABELS

YES = 3.4  # a panelist's score from which its verdict is Yes
STRONG = 4.2  # ... and a Strong Yes: what a gap is measured against

# What each panelist weighs (persona files may override). Criteria absent from a turn are skipped.
PANELIST_WEIGHTS: dict[str, dict[str, float]] = {
    "researcher": {"technical_accuracy": 0.6, "narrative_coherence": 0.15, "stakeholder_alignment": 0.1,
                   "tension_handling": 0.15},
    "gtm": {"technical_accuracy": 0.25, "narrative_coherence": 0.3, "stakeholder_alignment": 0.35,
            "tension_handling": 0.1},
    "pm": {"technical_accuracy": 0.3, "narrative_coherence": 0.2, "stakeholder_alignment": 0.25,
           "tension_handling": 0.25},
}


@dataclass
class Turn:
    panelist: str
    question_id: str
    question: str
    answer: str
    grade: Grade
    idx: int = -1  # the stored turn's index (what a retry names)
    retry: Grade | None = None  # the latest answer given again from History, if any


@dataclass
class PanelistVerdict:
    panelist: str
    verdict: str
    score: float
    criteria: dict[str, float]
    evidence_for: str
    evidence_against: str
    weakest: str
    turns: int
    name: str = ""  # how the report names this panelist (persona name and role); the id when unknown

    def __post_init__(self) -> None:
        self.name = self.name or self.panelist


@dataclass
class Debrief:
    decision: str
    reason: str
    verdicts: list[PanelistVerdict]
    lost: str | None
    weak_answers: list[dict[str, Any]] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # session, scenario, model, date, complete
    reveal: list[Reveal] = field(default_factory=list)  # what each panelist was really testing
    placement: Placement | None = None  # the level the committee would place the candidate at (estimate)
    stories: list[tuple[int, str]] = field(default_factory=list)  # (answer number, the story of yours it told)

    @property
    def names(self) -> dict[str, str]:
        """Each panelist's name as the report shows it ("Dr. Ines Marchal"), by id."""
        return {v.panelist: v.name.split(" (")[0] for v in self.verdicts}

    @property
    def heading(self) -> str:
        """What the session was: scenario, date, model, and whether it was finished."""
        m = self.meta
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m["created"])) if m.get("created") else ""
        mode = "practice mode (hints and strong answers were on)" if m.get("mode") == "practice" else ""
        parts = [m.get("scenario", ""), when, m.get("model", ""), m.get("session", ""), mode]
        head = " · ".join(p for p in parts if p)
        return head + ("" if m.get("complete", True) else " · incomplete: the panel did not finish")

    def questions(self) -> list[dict[str, Any]]:
        """Each answered question with its score, criteria, delivery and the fix: the report's core."""
        out = []
        for i, t in enumerate(self.turns, 1):
            d = t.grade.delivery
            if t.grade.voice:  # spoken: measured from the recording, not estimated from the words
                from coach.grading.delivery import VoiceDelivery

                v = VoiceDelivery.from_dict(t.grade.voice)
                delivery = f"spoken (heard by {v.recognizer}): {v.summary()}"
            else:
                delivery = (f"typed, estimated: {d.words} words, about {d.spoken_s // 60}:{d.spoken_s % 60:02d} "
                            f"spoken of a {d.time_box_s // 60}:{d.time_box_s % 60:02d} box"
                            + (" (over time)" if d.over_time else "") + f", {d.fillers} filler(s), {d.hedges} hedge(s)")
            out.append({"n": i, "idx": t.idx, "panelist": t.panelist, "who": self.names.get(t.panelist, t.panelist),
                        "question": t.question, "answer": t.answer, "score": t.grade.total,
                        "criteria": t.grade.criteria, "delivery": delivery, "improvement": t.grade.improvement,
                        "retry": t.retry.total if t.retry is not None else None})
        return out

    def costliest(self, n: int = 3) -> list[dict[str, Any]]:
        """Fix these first: the answers furthest below a Strong Yes across the whole panel, the panelist
        who blocks an offer first among equals (what each costs, who asked it, and its fix)."""
        blocker = self.lost
        gaps = [{**q, "cost": round(STRONG - q["score"], 2)} for q in self.questions() if q["score"] < STRONG]
        gaps.sort(key=lambda q: (-q["cost"] - (0.25 if q["panelist"] == blocker else 0.0), q["n"]))
        return gaps[:n]


def _quote(text: str, limit: int = 30) -> str:
    sents = split_sentences(text) or [text]
    words = sents[0].split()
    return " ".join(words[:limit]) + ("…" if len(words) > limit else "")


def _verdict(score: float) -> str:
    return "Strong Yes" if score >= 4.2 else "Yes" if score >= YES else "No" if score >= 2.5 else "Strong No"


def build_debrief(turns: list[Turn], panelist_weights: dict[str, dict[str, float]] | None = None,
                  names: dict[str, str] | None = None, meta: dict[str, Any] | None = None) -> Debrief:
    weights = panelist_weights or PANELIST_WEIGHTS
    names = names or {}
    by_panelist: dict[str, list[Turn]] = {}
    for t in turns:
        by_panelist.setdefault(t.panelist, []).append(t)
    verdicts = []
    for name, ts in by_panelist.items():
        w = weights.get(name, {c: 1.0 for c in LABELS})
        per_turn = []
        for t in ts:
            crit = {c: s for c, s in t.grade.criteria.items() if w.get(c, 0) > 0} or t.grade.criteria
            tot = sum(w.get(c, 1.0) for c in crit)
            per_turn.append(sum(w.get(c, 1.0) * s for c, s in crit.items()) / tot)
        criteria: dict[str, float] = {}
        for c in LABELS:
            vals = [t.grade.criteria[c] for t in ts if c in t.grade.criteria]
            if vals:
                criteria[c] = round(sum(vals) / len(vals), 2)
        score = round(sum(per_turn) / len(per_turn), 2)
        best, worst = ts[per_turn.index(max(per_turn))], ts[per_turn.index(min(per_turn))]
        verdicts.append(PanelistVerdict(name, _verdict(score), score, criteria,
                                        _quote(best.grade.strongest or best.answer),
                                        _quote(worst.grade.weakest or worst.answer),
                                        min(criteria, key=lambda c: criteria[c]),
                                        len(ts), names.get(name, name)))
    objections = [v for v in verdicts if v.verdict in ("No", "Strong No")]
    strong = [v for v in verdicts if v.verdict == "Strong Yes"]
    lost = min(verdicts, key=lambda v: v.score) if verdicts else None
    if not verdicts:
        decision, reason = "No decision", "No graded answers yet."
    elif objections:
        o = min(objections, key=lambda v: v.score)
        decision = "No offer"
        reason = (f"Blocked: {o.name} says {o.verdict} ({o.score:.2f}/5), weakest on "
                  f"{LABELS.get(o.weakest, o.weakest).lower()}. One sustained objection is enough to stop an offer.")
    elif len(strong) >= min(2, len(verdicts)):
        decision, reason = "Offer", "No objection, and at least two panelists are a Strong Yes."
    else:
        decision = "No offer"
        reason = ("No one objected, but a plain Yes is not enough: the committee wants at least two Strong Yes "
                  f"verdicts and has {len(strong)}.")
    meta = meta or {}
    if verdicts and not meta.get("complete", True):
        reason = (f"The session stopped after {len(turns)} answer(s), before the panel finished; the committee would "
                  f"say {decision} on what it has heard so far. {reason}")
        decision = "Incomplete"
    weak = [{"question": t.question, "answer": _clip(t.answer, 120), "score": t.grade.total,
             "exemplar": t.grade.nearest_good[0], "improvement": t.grade.improvement}
            for t in turns if t.grade.total < 3.0]
    return Debrief(decision, reason, verdicts, lost.panelist if lost and decision != "Offer" else None, weak, turns,
                   meta)


def _clip(text: str, words: int) -> str:
    w = text.split()
    return " ".join(w[:words]) + (" …" if len(w) > words else "")
