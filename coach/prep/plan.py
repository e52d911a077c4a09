"""A plan for your weak spots, from the grades you have stored: the questions and criteria you scored
lowest, each question due again 1, 3 and 7 days after a weak answer (moved on by a good one, out of the plan
after the 7-day review), the trend of each criterion across sessions, and the drill of what is due.

A question joins the plan when an answer to it (a first answer or a retry) scores under GOOD; an answer at
GOOD or more moves it to the next review; a weak one puts it back to the first. Follow-ups are not counted:
they are graded against the question they follow, but they ask about one gap, not the whole question.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from coach.errors import CoachError
from coach.grading.rubrics import LABELS, Bank, find_question, load_all
from coach.store import Store

GOOD = 3.5  # the debrief's "meets the bar" line: a total at or above it is a good answer
REVIEWS_D = (1, 3, 7)  # days after a weak answer, then after each good review
DRILL_SIZE = 5  # questions in one drill, weakest first
DAY_S = 86_400.0
COUNTED = ("ask", "contradict")  # turns whose answer answers the whole written question


@dataclass(frozen=True)
class Attempt:
    when: float
    session_id: str
    total: float
    criteria: dict[str, float]
    retry: bool = False


@dataclass
class Item:
    """One question you have answered, and where it stands in the plan."""

    question_id: str
    text: str
    panelist: str
    attempts: list[Attempt] = field(default_factory=list)
    review: int = 0  # index into REVIEWS_D of the next review
    due: float | None = None  # None: not in the plan (never weak, or learned)
    learned: bool = False  # was in the plan and passed its 7-day review

    @property
    def last(self) -> Attempt:
        return self.attempts[-1]

    @property
    def weakest_criterion(self) -> str:
        c = self.last.criteria
        return min(c, key=lambda k: c[k]) if c else ""

    def when(self, now: float) -> str:
        """When it is due, in words ("now", "tomorrow", "in 3 days")."""
        if self.due is None:
            return "-"
        days = (self.due - now) / DAY_S
        return "now" if days <= 0 else "tomorrow" if days <= 1 else f"in {int(days + 0.999)} days"


@dataclass(frozen=True)
class SessionTrend:
    session_id: str
    created: float
    criteria: dict[str, float]  # the session's mean per criterion


@dataclass
class Plan:
    items: list[Item]  # every question answered, in the plan or not
    criteria: list[tuple[str, float, int]]  # (criterion, mean score, answers), lowest first
    trend: list[SessionTrend]  # oldest first

    @property
    def planned(self) -> list[Item]:
        """The questions in the plan: the soonest due first, then the weakest."""
        return sorted((i for i in self.items if i.due is not None), key=lambda i: (i.due or 0.0, i.last.total))

    @property
    def learned(self) -> list[Item]:
        return [i for i in self.items if i.learned and i.due is None]

    def due(self, now: float | None = None) -> list[Item]:
        """The questions due by `now`, weakest first."""
        now = time.time() if now is None else now
        return sorted((i for i in self.planned if (i.due or 0.0) <= now), key=lambda i: i.last.total)

    def drill(self, now: float | None = None, size: int = DRILL_SIZE) -> tuple[list[Item], bool]:
        """The drill's questions, weakest first: the due ones; when none is due yet, the soonest (and True:
        drilled early)."""
        due = self.due(now)
        if due:
            return due[:size], False
        return sorted(self.planned[:size], key=lambda i: i.last.total), True


def build_plan(store: Store, owner: str | None = None, banks: dict[str, Bank] | None = None) -> Plan:
    """The plan from every stored session of `owner` (None: all of them) and their retries."""
    banks = banks if banks is not None else load_all()
    items: dict[str, Item] = {}
    trend: list[SessionTrend] = []
    sums: dict[str, list[float]] = {}
    for row in sorted(store.sessions(owner), key=lambda r: r["created"]):
        sid = row["id"]
        turns = store.turns(sid)
        per: dict[str, list[float]] = {}
        for t in turns:
            if not t["grade"]:
                continue
            for c, s in t["grade"]["criteria"].items():
                per.setdefault(c, []).append(s)
                sums.setdefault(c, []).append(s)
            if t["kind"] in COUNTED and t["question_id"]:
                _item(items, banks, t).attempts.append(
                    Attempt(t["answered"] or t["asked"], sid, t["grade"]["total"], t["grade"]["criteria"]))
        by_idx = {t["idx"]: t for t in turns}
        for idx, tries in store.retries(sid).items():
            turn = by_idx.get(idx)
            if turn is None or turn["kind"] not in COUNTED or not turn["question_id"]:
                continue
            for r in tries:
                _item(items, banks, turn).attempts.append(
                    Attempt(r["created"], sid, r["grade"]["total"], r["grade"]["criteria"], retry=True))
        if per:
            trend.append(SessionTrend(sid, row["created"], {c: sum(v) / len(v) for c, v in per.items()}))
    for item in items.values():
        item.attempts.sort(key=lambda a: a.when)
        _schedule(item)
    criteria = sorted(((c, sum(v) / len(v), len(v)) for c, v in sums.items()), key=lambda x: x[1])
    return Plan(sorted(items.values(), key=lambda i: i.last.total), criteria, trend)


def _item(items: dict[str, Item], banks: dict[str, Bank], turn: dict[str, Any]) -> Item:
    qid = turn["question_id"]
    if qid not in items:
        try:
            text = find_question(qid, banks)[1].text
        except CoachError:  # its rubric is gone: the question as it was asked
            text = turn["canonical"] or turn["spoken"]
        items[qid] = Item(qid, text, turn["panelist"])
    return items[qid]


def _schedule(item: Item) -> None:
    """Walk the attempts in time order: a weak one (re)starts the reviews, a good one moves to the next."""
    item.due, item.review, item.learned = None, 0, False
    for a in item.attempts:
        if a.total < GOOD:
            item.review, item.due = 0, a.when + REVIEWS_D[0] * DAY_S
        elif item.due is not None:
            item.review += 1
            if item.review >= len(REVIEWS_D):
                item.due, item.learned = None, True
            else:
                item.due = a.when + REVIEWS_D[item.review] * DAY_S


def criterion_label(c: str) -> str:
    return LABELS.get(c, c.replace("_", " ").capitalize())
