"""Stored sessions as the front ends show them: the list, a transcript, a debrief, and one question
answered again. The UI's History tab and `coach sessions` read sessions only through this."""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coach.errors import CoachError
from coach.grading.debrief import Debrief, Turn, build_debrief
from coach.grading.embedder import Embedder, MiniLMEmbedder
from coach.grading.grader import Grade, Grader
from coach.grading.levels import estimate
from coach.grading.reveal import Answered, reveal
from coach.interview.custom import session_parts
from coach.interview.prompts import Persona, load_personas, load_scenarios
from coach.prep import stories
from coach.store import Store

CANDIDATE = "candidate"


@dataclass(frozen=True)
class Line:
    """One line of a transcript: a panelist's id (or "candidate") and what was said."""

    speaker: str
    text: str


@dataclass(frozen=True)
class Retry:
    """A stored answer's grade and the grade of a new answer to the same question."""

    before: float
    grade: Grade

    @property
    def change(self) -> str:
        return "better" if self.grade.total > self.before else "worse" if self.grade.total < self.before else "the same"


def transcript(turns: list[dict[str, Any]]) -> list[Line]:
    """What the candidate saw and said, from stored turns: questions that were answered, then the goodbye."""
    lines: list[Line] = []
    for t in turns:
        if t["answer"] is not None or t["kind"] == "close":
            lines.append(Line(t["panelist"], t["spoken"]))
            if t["answer"]:
                lines.append(Line(CANDIDATE, t["answer"]))
    return lines


def debrief_for(store: Store, session_id: str, personas: dict[str, Persona] | None = None,
                embedder: Embedder | None = None, *, reveal_too: bool = True) -> Debrief:
    """The committee's debrief of a stored session: verdicts, the decision, what each panelist was really
    testing (the reveal, read with `embedder`: the grader's own where given) and the estimated level.
    `reveal_too=False`: the decision alone (a list of sessions embeds no answers)."""
    personas = personas or load_personas()
    retries = store.retries(session_id)
    # the written question names what was asked (the spoken one may open with the panelist's own words)
    turns = [Turn(t["panelist"], t["question_id"] or "", t["canonical"] or t["spoken"], t["answer"] or "",
                  Grade.from_dict(t["grade"]), t["idx"],
                  Grade.from_dict(retries[t["idx"]][-1]["grade"]) if t["idx"] in retries else None)
             for t in store.turns(session_id) if t["grade"]]
    weights = {k: p.criteria_weights for k, p in personas.items() if p.criteria_weights}
    names = {k: f"{p.name} ({p.role})" for k, p in personas.items()}
    row = store.session(session_id) or {}
    scenario = row.get("scenario", "")
    meta = {"session": session_id, "scenario": title_of(row),
            "model": row.get("model", ""), "created": row.get("created"), "complete": row.get("status") == "finished",
            "mode": (row.get("options") or {}).get("mode", "live")}
    d = build_debrief(turns, weights or None, names, meta)
    if not reveal_too:
        return d
    embedder = embedder or MiniLMEmbedder()
    d.reveal = reveal(personas, [Answered(i, t.panelist, t.answer, t.grade.total) for i, t in enumerate(turns, 1)],
                      embedder, {k: p.name for k, p in personas.items()})
    d.placement = estimate(scenario, [(t.answer, t.grade.criteria, t.grade.total) for t in turns])
    yours = stories.load(store.path.parent)  # the data home the store lives in holds the story bank
    d.stories = [(n, s.title) for n, s in enumerate(stories.told([t.answer for t in turns], yours, embedder), 1)
                 if s is not None]
    return d


def title_of(row: dict[str, Any]) -> str:
    """What a stored session is called: its scenario's title, or a built panel's own (a drill, your job)."""
    scenario = row.get("scenario", "")
    return (row.get("options") or {}).get("title") or _titles().get(scenario, scenario.replace("_", " "))


@lru_cache(maxsize=1)
def _titles() -> dict[str, str]:
    """Each packaged scenario's title, by id (what reports and lists call a session)."""
    return {k: s.title for k, s in load_scenarios().items()}


class History:
    def __init__(self, store: Store, grader: Grader | None = None,
                 personas: dict[str, Persona] | None = None, owner: str | None = None) -> None:
        self.store, self.grader = store, grader
        self.personas = personas or load_personas()
        self.owner = owner  # None: every session (the CLI on its own data); else only this user's

    def scoped(self, owner: str) -> History:
        """The same history as one user sees it: their sessions only; another's id reads as unknown."""
        return History(self.store, self.grader, self.personas, owner)

    @property
    def titles(self) -> dict[str, str]:
        return _titles()

    def label(self, row: dict[str, Any]) -> str:
        """A session as a person names it: its scenario's title and when it started ("PMM final panel ·
        3 Dec 08:36")."""
        t = time.localtime(row["created"])
        when = f"{t.tm_mday} {time.strftime('%b %H:%M', t)}"
        practice = " · practice" if (row.get("options") or {}).get("mode") == "practice" else ""
        return f"{title_of(row)} · {when}{practice}"

    def sessions(self) -> list[dict[str, Any]]:
        """Every stored session, newest first, with its readable name, answer count, mean score, the
        committee's decision (by the debrief's rule, so the list and the debrief never disagree) and its
        retries as before -> after."""
        rows = self.store.sessions(self.owner)
        for r in rows:
            d = debrief_for(self.store, r["id"], self.personas, reveal_too=False) if r["answered"] else None
            r["decision"] = d.decision if d else "No decision"
            r["title"] = title_of(r)
            r["label"] = self.label(r)
            r["retries"] = ", ".join(f"Q{q['n']} {q['score']:.1f} → {q['retry']:.1f}" for q in d.questions()
                                     if q["retry"] is not None) if d else ""
        return rows

    def abandon(self, session_id: str) -> None:
        """Mark an unfinished session abandoned (it can still be resumed)."""
        if self.require(session_id)["status"] == "finished":
            raise CoachError("that session is finished; only an unfinished one can be abandoned")
        self.store.set_status(session_id, "abandoned")

    def delete(self, session_id: str) -> None:
        """A session and everything stored with it, gone for good."""
        self.require(session_id)
        self.store.delete_session(session_id)

    def require(self, session_id: str) -> dict[str, Any]:
        row = self.store.session(session_id, self.owner)
        if row is None:
            raise CoachError(f"no session {session_id!r}; see `coach sessions list`")
        return row

    def turns(self, session_id: str) -> list[dict[str, Any]]:
        self.require(session_id)
        return self.store.turns(session_id)

    def transcript(self, session_id: str) -> list[Line]:
        return transcript(self.turns(session_id))

    def graded_questions(self, session_id: str) -> list[tuple[int, str]]:
        """(turn index, "n. who: the written question") for every graded answer, numbered from 1 as the
        debrief numbers them: what can be answered again."""
        graded = [t for t in self.turns(session_id) if t["grade"]]
        return [(t["idx"], f"{n}. {self.personas[t['panelist']].name}: {t['canonical'] or t['spoken']}")
                for n, t in enumerate(graded, 1)]

    def retry(self, session_id: str, idx: int, text: str, *, save: bool = True) -> Retry:
        """Grade a new answer to turn `idx`'s question with the rubric the session used, and (with `save`)
        keep it beside the stored answer: History and the debrief then show it as before -> after."""
        if self.grader is None:
            raise CoachError("no grader loaded to grade the new answer")
        t = next((t for t in self.turns(session_id) if t["idx"] == idx), None)
        if t is None or not t["question_id"] or not t["grade"]:
            raise CoachError("that turn has no graded question to retry")
        _, bank, _ = session_parts(self.require(session_id))
        if not text.strip():
            raise CoachError("type the new answer first")
        grade = self.grader.grade(bank, bank.get(t["question_id"]), text)
        if save:
            self.store.save_retry(session_id, idx, text, grade.as_dict())
        return Retry(t["grade"]["total"], grade)

    def debrief(self, session_id: str) -> Debrief:
        self.require(session_id)
        return debrief_for(self.store, session_id, self.personas,
                           self.grader.embedder if self.grader is not None else None)
