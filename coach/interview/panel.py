"""Who speaks, when to contradict, when to follow up, when a time box ends, when the panel closes.

A pure state machine over a scenario: the model only voices what this decides, so the flow never
depends on what the model or the candidate writes. The same seed gives the same order, and the same
answers give the same path.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from coach.grading.rubrics import Bank
from coach.grading.tips import follow_up, follow_up_line
from coach.interview.prompts import Persona, Scenario, TensionPair

Kind = Literal["ask", "contradict", "follow_up", "close"]
FOLLOW_UP_BELOW = 3.2  # a weighted total under this earns a probe on the weakest part
MAX_FOLLOW_UPS_PER_SEGMENT = 2
WARN_AT = 0.8  # share of a segment's time box after which the UI warns
# A segment ends on its clock (no room left for half of the next question's time box), when its questions
# run out, or on coverage: after COVERAGE_AFTER questions, every criterion the panelist has graded has
# been shown at COVERED_AT or above in some answer, so the panelist has heard what they came for.
COVERAGE_AFTER = 3
COVERED_AT = 4.0
QUICK_ROUND_S = 15 * 60  # `--short` / "Quick round": every time box scaled so the panel fits in this
# The written follow-up for each criterion: it names the weak area, never the missing answer.
PROBES = {
    "technical_accuracy": "Let me push on the technical side. Walk me through the mechanism you are relying on: what "
                          "exactly happens, and how would you check it?",
    "narrative_coherence": "Let me push on the story. If you had to explain that to a customer in three sentences, what "
                           "would you say, and in what order?",
    "stakeholder_alignment": "Let me push on the people. Who has to agree to this, what does each of them need to hear, "
                             "and how do you get them there?",
    "tension_handling": "Let me push on the disagreement in that question: what do you give each side, and what do "
                        "you refuse?",
}


@dataclass(frozen=True)
class Action:
    kind: Kind
    panelist: str
    question_id: str | None
    canonical: str  # what is said when the model's wording is unusable
    instruction: str  # what the model is asked to do, in role
    segment: int


class GradeLike(Protocol):
    total: float
    criteria: dict[str, float]
    missed: list[str]


class FollowUpPolicy(Protocol):
    """The seam for the follow-up decision: return the probe's subject, or None for no follow-up."""

    def probe(self, grade: GradeLike | None, answer: str) -> str | None: ...


class GraderFollowUp:
    """Probe the weakest part of a weak answer: the first key point it missed, else its weakest criterion."""

    def probe(self, grade: GradeLike | None, answer: str) -> str | None:
        if grade is None or grade.total >= FOLLOW_UP_BELOW:
            return None
        spot = follow_up(getattr(grade, "weak_spots", None) or {})  # a named weak spot first (`tips.follow_up`)
        if spot:
            return spot
        if grade.missed:
            return grade.missed[0]
        weakest = min(grade.criteria, key=lambda c: grade.criteria[c])
        return weakest.replace("_", " ")


@dataclass
class PanelState:
    order: list[int]  # segment indices in speaking order (seeded, never shown)
    seg_pos: int = 0
    q_pos: int = 0
    seg_spent_s: float = 0.0
    follow_ups_in_seg: int = 0
    contradictions: int = 0
    turn: int = 0
    pending_follow_up: str | None = None
    done: bool = False
    pace: float = 1.0  # segment time boxes are scaled by this (below 1 for a quick round)
    invited: bool = False  # the panel has asked whether the candidate has questions for it
    seg_best: dict[str, float] = field(default_factory=dict)  # this segment's best score per criterion
    log: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PanelState:
        return cls(**d)


class Panel:
    def __init__(self, scenario: Scenario, bank: Bank, personas: dict[str, Persona],
                 policy: FollowUpPolicy | None = None) -> None:
        self.scenario, self.bank, self.personas = scenario, bank, personas
        self.policy = policy or GraderFollowUp()
        # Replay: each decision passes through `steer` (the wording corpus replays recorded turns as recorded).
        self.steer: Callable[[Action], Action] | None = None

    # ---------------------------------------------------------------- state

    def start(self, seed: int, *, quick: bool = False) -> PanelState:
        """A new panel's state: the seeded speaking order and, for a quick round, the pace that fits the
        whole panel into QUICK_ROUND_S."""
        order = list(range(len(self.scenario.segments)))
        if self.scenario.shuffle_segments:
            random.Random(seed).shuffle(order)
        full = sum(seg.time_box_s for seg in self.scenario.segments)
        return PanelState(order=order, pace=min(1.0, QUICK_ROUND_S / full) if quick and full else 1.0)

    def time_box(self, st: PanelState, seg_index: int) -> int:
        """Segment `seg_index`'s time box at this panel's pace, in seconds."""
        return max(1, round(self.scenario.segments[seg_index].time_box_s * st.pace))

    def question_box(self, st: PanelState, qid: str) -> int:
        """Question `qid`'s time box at this panel's pace, in seconds (what its answer is measured against)."""
        return max(15, round(self.bank.get(qid).time_box_s * st.pace))

    def segment_questions(self, seg_index: int) -> list[str]:
        """The segment's questions with its contradiction (if any) moved first: at least one per round."""
        seg = self.scenario.segments[seg_index]
        pair = self._pair(seg_index)
        qs = list(seg.questions)
        if pair is not None:
            qs.remove(pair.question)
            qs.insert(0, pair.question)
        return qs

    def _pair(self, seg_index: int) -> TensionPair | None:
        seg = self.scenario.segments[seg_index]
        return next((t for t in self.scenario.tension_pairs if t.by == seg.panelist and t.question in seg.questions),
                    None)

    def time_left(self, st: PanelState) -> tuple[int, int]:
        """(seconds used, time box) of the current segment, for the visible timer."""
        if st.done or st.seg_pos >= len(st.order):
            return 0, 0
        return int(st.seg_spent_s), self.time_box(st, st.order[st.seg_pos])

    def questions_left(self, st: PanelState) -> int:
        """Written questions of the current segment not yet asked (the open one counts as asked)."""
        if st.done or st.seg_pos >= len(st.order):
            return 0
        return max(0, len(self.segment_questions(st.order[st.seg_pos])) - st.q_pos)

    def questions_coming(self, st: PanelState, used_s: float, open_question: bool) -> tuple[int, bool]:
        """How many written questions of this segment follow the open one if its answer were sent after
        `used_s` seconds of the segment, by the same rule that ends segments (`segment_end`), and whether
        the coverage rule may still end it sooner (then it is "up to" that many)."""
        if st.done or st.seg_pos >= len(st.order):
            return 0, False
        seg_index = st.order[st.seg_pos]
        qs = self.segment_questions(seg_index)
        nxt = st.q_pos + (1 if open_question else 0)
        box = self.time_box(st, seg_index)
        if nxt >= len(qs) or used_s >= box or box - used_s < 0.5 * self.question_box(st, qs[nxt]):
            return 0, False
        return len(qs) - nxt, nxt >= COVERAGE_AFTER

    def upcoming(self, st: PanelState) -> list[str]:
        """Who may speak next: this segment's panelist (a follow-up or its next question) and the next one's."""
        if st.done or st.seg_pos >= len(st.order):
            return []
        out = [self.scenario.segments[st.order[st.seg_pos]].panelist]
        if st.seg_pos + 1 < len(st.order):
            out.append(self.scenario.segments[st.order[st.seg_pos + 1]].panelist)
        return out

    # ---------------------------------------------------------------- decisions

    def next_action(self, st: PanelState) -> Action:
        """What the panel does next in state `st`: a query, `st` is left as it is (`record` moves it on)."""
        action = self._decide(st)
        return self.steer(action) if self.steer is not None else action

    def _decide(self, st: PanelState) -> Action:
        if st.done or st.seg_pos >= len(st.order):
            return self._close(st) if st.invited else self._invite(st)
        seg_index = st.order[st.seg_pos]
        seg = self.scenario.segments[seg_index]
        if st.pending_follow_up:
            subject = st.pending_follow_up
            qid = st.log[-1]["question_id"] if st.log else None
            # the written probe asks about the weak area without saying what the answer should have been
            criterion = self._criterion_of(qid, subject)
            voice = self.personas[seg.panelist].follow_ups  # the panelist's own words for the weak area
            written = voice.get(criterion, PROBES[criterion])  # type: ignore[call-overload]
            if criterion == "tension_handling" and st.log and st.log[-1]["kind"] != "contradict":
                written = PROBES[criterion]  # no colleague was contradicted: the panelist's "my colleague and I" is hearsay
            written = self.scenario.probes.get(qid or "", written)  # a question the usual words do not fit
            spot = follow_up_line(subject)  # a weak spot (no example, a false claim...) names itself
            if spot:
                return Action("follow_up", seg.panelist, qid, spot,
                              f"Probe, in one or two sentences and without giving the answer away, this weak spot "
                              f"of that answer: {spot}", seg_index)
            return Action("follow_up", seg.panelist, qid, written,
                          f"Probe, in one or two sentences and without giving the answer away, what that answer "
                          f"left out: {subject}", seg_index)
        return self.question_action(seg_index, st.q_pos, _spoken(st))

    def _criterion_of(self, qid: str | None, subject: str) -> str:
        """The criterion a follow-up's subject belongs to: its key point's, or the subject itself."""
        if qid:
            for k in self.bank.get(qid).key_points:
                if k.text == subject:
                    return k.criterion
        name = subject.replace(" ", "_")
        return name if name in PROBES else "technical_accuracy"

    def question_action(self, seg_index: int, q_pos: int, spoken: set[str] | None = None) -> Action:
        """The action for question `q_pos` of segment `seg_index` (no follow-up involved). Its tension
        pair is a contradiction only once the colleague it contradicts has spoken (`spoken`: who has
        asked so far; None: assume everyone); before that it is asked plainly."""
        seg = self.scenario.segments[seg_index]
        persona = self.personas[seg.panelist]
        qid = self.segment_questions(seg_index)[q_pos]
        q = self.bank.get(qid)
        pair = self._pair(seg_index)
        if pair is not None and pair.question == qid and (spoken is None or pair.against in spoken):
            against = self.personas[pair.against]
            canonical = f"{pair.framing} {q.text}"
            return Action("contradict", seg.panelist, qid, canonical,
                          f"Push back on {against.name} ({against.role.lower()})'s framing, then ask. Keep the "
                          f"substance, in your own voice, in at most three sentences: {canonical}", seg_index)
        # a panelist introduces itself at its first question (a built panel may give it a second segment)
        first = not q_pos and (spoken is None or seg.panelist not in spoken)
        opener = f"Introduce yourself in a few words as {persona.name}, then ask. " if first else ""
        return Action("ask", seg.panelist, qid, q.text,
                      f"{opener}Ask this question in your own voice, in at most two sentences: {q.text}", seg_index)

    def may_follow_up(self, st: PanelState, current: Action) -> bool:
        """Whether the answer to `current` can still earn a follow-up in this segment."""
        return current.kind in ("ask", "contradict") and st.follow_ups_in_seg < MAX_FOLLOW_UPS_PER_SEGMENT

    def planned(self, st: PanelState, current: Action) -> list[Action]:
        """What each possible next speaker will do if the answer to `current` earns no follow-up: this
        segment's next question and the next segment's opening. Known before the answer, so the engine
        can read them while the candidate types; only a follow-up is decided after it."""
        if st.done or st.seg_pos >= len(st.order) or current.kind == "close":
            return []
        out = []
        seg_index = st.order[st.seg_pos]
        nxt = st.q_pos + (0 if current.kind == "follow_up" else 1)
        spoken = _spoken(st) | {current.panelist}
        if nxt < len(self.scenario.segments[seg_index].questions):
            out.append(self.question_action(seg_index, nxt, spoken))
        if st.seg_pos + 1 < len(st.order):
            out.append(self.question_action(st.order[st.seg_pos + 1], 0, spoken))
        return out

    def record(self, st: PanelState, action: Action, grade: GradeLike | None, answer: str, spent_s: float) -> None:
        """Advance after the candidate answered `action` (the grade drives follow-ups)."""
        st.turn += 1
        st.log.append({"kind": action.kind, "panelist": action.panelist, "question_id": action.question_id,
                       "total": getattr(grade, "total", None), "spent_s": round(spent_s, 1)})
        if action.kind == "close":
            st.done = True
            return
        if action.segment < 0:  # the candidate's questions for the panel: nothing is graded or timed
            st.invited = st.done = True
            return
        seg_index = st.order[st.seg_pos]
        st.seg_spent_s += max(0.0, spent_s)
        if action.kind == "contradict":
            st.contradictions += 1
        for c, v in (getattr(grade, "criteria", None) or {}).items():
            st.seg_best[c] = max(v, st.seg_best.get(c, 0.0))
        st.pending_follow_up = None
        if action.kind != "follow_up":
            st.q_pos += 1
            subject = self.policy.probe(grade, answer)
            if subject and st.follow_ups_in_seg < MAX_FOLLOW_UPS_PER_SEGMENT:
                st.pending_follow_up = subject
                st.follow_ups_in_seg += 1
        end = self.segment_end(st, seg_index)
        if end:
            st.log[-1]["segment_end"] = end
            st.seg_pos += 1
            st.q_pos = 0
            st.seg_spent_s = 0.0
            st.follow_ups_in_seg = 0
            st.pending_follow_up = None
            st.seg_best = {}
            if st.seg_pos >= len(st.order):
                st.done = True

    def segment_end(self, st: PanelState, seg_index: int) -> str | None:
        """Why the current segment ends after the answer just recorded, or None while it goes on."""
        box, qs = self.time_box(st, seg_index), self.segment_questions(seg_index)
        if st.seg_spent_s >= box:
            return "time box"
        if st.pending_follow_up:  # a probe is owed and there is time for it
            return None
        if st.q_pos >= len(qs):
            return "questions done"
        if box - st.seg_spent_s < 0.5 * self.question_box(st, qs[st.q_pos]):
            return "time box"  # no room for the next question: the panelist wraps up
        if st.q_pos >= COVERAGE_AFTER and st.seg_best and min(st.seg_best.values()) >= COVERED_AT:
            return "covered"
        return None

    def _invite(self, st: PanelState) -> Action:
        """Before the goodbye, as in a real loop: the candidate's own questions (an answer nobody grades)."""
        return Action("ask", self._last(st), None, "That is all from our side. Before we finish: do you have any "
                      "questions for us?", "The questions are over. In at most two sentences, thank the candidate "
                      "and ask whether they have any questions for the panel.", -1)

    def _close(self, st: PanelState) -> Action:
        return Action("close", self._last(st), None, "Thank you. Anything we could not answer today, the recruiter "
                      "will follow up on. We will share a decision soon.",
                      "The interview is over. Thank the candidate in one sentence. Do not ask anything.", -1)

    def _last(self, st: PanelState) -> str:
        return self.scenario.segments[st.order[-1] if st.order else -1].panelist  # whoever spoke last


def _spoken(st: PanelState) -> set[str]:
    """The panelists who have asked the candidate something so far."""
    return {e["panelist"] for e in st.log}


@dataclass(frozen=True)
class Clock:
    """The current segment's time: seconds used (including the open question's) against its time box."""

    used: int
    box: int
    questions_left: int = 0  # written questions of this segment still to come (by the segment-end rule)
    up_to: bool = False  # the coverage rule may end the segment before all of them

    @property
    def warn(self) -> bool:
        return self.box > 0 and self.used >= WARN_AT * self.box

    @property
    def over(self) -> bool:
        return self.box > 0 and self.used >= self.box

    def __str__(self) -> str:
        return f"{self.used // 60}:{self.used % 60:02d} of {self.box // 60}:{self.box % 60:02d}"
