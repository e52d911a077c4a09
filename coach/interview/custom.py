"""A panel of chosen questions from any bank (a drill of your weak spots, a panel for your job): its
scenario and bank, built from the question ids stored with the session, so a resume rebuilds the same one.

Each question is asked by the panelist who asks it in its own scenario, keeps its contradiction when the
colleague it contradicts is on the panel, and is graded exactly as in its own bank (its bank's weights go
with it, so the calibration, and the score of the same answer, do not change).
"""

from __future__ import annotations

from typing import Any

from coach.errors import ConfigError
from coach.grading.rubrics import Bank, Question, find_question, load_all
from coach.interview.prompts import Persona, Scenario, Segment, TensionPair, load_personas, load_scenarios, scenario_parts

KINDS = ("drill", "job")  # the stored `scenario` of a panel built here
FOLLOW_UP_ROOM = 1.5  # a segment's time box: its questions' own, and half as much again for follow-ups
MAX_QUESTIONS = 12


def custom_parts(question_ids: list[str], *, kind: str, title: str, brief: str | None = None,
                 ) -> tuple[Scenario, Bank, dict[str, Persona]]:
    """The scenario, merged bank and personas of a panel asking `question_ids` in this order (consecutive
    questions of one panelist make one segment). `brief`: what the panelists are told the interview is for;
    by default the brief of the questions' own scenario when they share one."""
    if kind not in KINDS:
        raise ConfigError(f"a built panel is a {' or a '.join(KINDS)}, not {kind!r}")
    if not question_ids:
        raise ConfigError("a panel needs at least one question")
    if len(question_ids) > MAX_QUESTIONS:
        raise ConfigError(f"{len(question_ids)} questions; a built panel asks at most {MAX_QUESTIONS}")
    personas = load_personas()
    banks = load_all()
    scenarios = load_scenarios(personas=personas, banks=banks)
    by_bank = {s.rubric: s for s in scenarios.values()}
    questions: list[Question] = []
    asker: dict[str, str] = {}
    homes: list[Scenario] = []
    for qid in dict.fromkeys(question_ids):
        bank, q = find_question(qid, banks)
        home = by_bank.get(bank.bank)
        seg = next((s for s in home.segments if qid in s.questions), None) if home else None
        asker[qid] = seg.panelist if seg else q.asked_by if q.asked_by in personas else next(iter(personas))
        # the bank's default weights travel with the question: graded and calibrated as at home
        questions.append(q.model_copy(update={"weights": q.weights or dict(bank.default_weights)}))
        if home is not None and home not in homes:
            homes.append(home)
    segments: list[Segment] = []
    for q in questions:
        if segments and segments[-1].panelist == asker[q.id]:
            segments[-1].questions.append(q.id)
            segments[-1].time_box_s += round(q.time_box_s * FOLLOW_UP_ROOM)
        else:
            box = min(7200, max(30, round(q.time_box_s * FOLLOW_UP_ROOM)))
            segments.append(Segment(panelist=asker[q.id], time_box_s=box, questions=[q.id]))
    on_panel = {s.panelist for s in segments}
    pairs = [t for h in homes for t in h.tension_pairs
             if t.question in asker and asker[t.question] == t.by and t.against in on_panel]
    probes = {k: v for h in homes for k, v in h.probes.items() if k in asker}
    if brief is None:
        brief = homes[0].brief if len(homes) == 1 else (
            "A product-role interview loop at an AI lab, drawn from several rounds: technical depth, "
            "go-to-market judgement and product sense, each judged on evidence, numbers and trade-offs.")
    bank = Bank(bank=kind, title=title, questions=questions)
    summary = f"{len(questions)} question{'s' * (len(questions) != 1)} chosen for you"
    sc = Scenario.model_validate({
        "id": kind, "title": title, "summary": summary, "rubric": kind,
        "brief": brief, "segments": [s.model_dump() for s in segments],
        "tension_pairs": [TensionPair.model_dump(t) for t in pairs], "probes": probes})
    return sc, bank, personas


def session_parts(row: dict[str, Any]) -> tuple[Scenario, Bank, dict[str, Persona]]:
    """A stored session's scenario, bank and personas: a packaged scenario by id, or the built panel its
    options describe."""
    opts = row.get("options") or {}
    if row["scenario"] in KINDS and opts.get("questions"):
        return custom_parts(list(opts["questions"]), kind=row["scenario"], title=opts.get("title") or row["scenario"],
                            brief=opts.get("brief"))
    return scenario_parts(row["scenario"])


def options_for(sc: Scenario, brief: str | None = None) -> dict[str, Any]:
    """What a built panel stores with its session so `session_parts` can rebuild it."""
    out: dict[str, Any] = {"questions": [q for s in sc.segments for q in s.questions], "title": sc.title}
    if brief is not None:
        out["brief"] = brief
    return out


def askers() -> dict[str, str]:
    """Who asks each question in its own packaged scenario, by question id."""
    return {q: seg.panelist for s in load_scenarios().values() for seg in s.segments for q in seg.questions}
