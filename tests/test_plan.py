"""The plan for your weak spots: the questions scored lowest come back after 1, 3 and 7 days, a drill asks
the due ones weakest first (each by its own panelist, through the real Interview and engine), and a good
answer moves a question on."""

from __future__ import annotations

import subprocess
import time

from coach.config import Settings
from coach.grading.rubrics import find_question, load_all
from coach.interview.prompts import load_scenarios
from coach.interview.session import Interview
from coach.prep.plan import DAY_S, GOOD, build_plan
from coach.store import Store
from tests.conftest import COACH

# (scenario, question, answer): vague answers that miss the question, and one that makes its points
FIRST = ("pm_loop", [("pm-eval-regression", "I would trust the public benchmarks, they are standard."),
                     ("pm-rate-limits", None),
                     ("pm-canary-release", "Ship it Monday, sales knows the customers best.")])
SECOND = ("tpm_onsite", [("tpm-fp8-gradients", "FP8 is fine, it is just smaller numbers."),
                         ("tpm-risk-model", None)])


def stored_session(store: Store, grader, scenario: str, answers, when: float) -> str:  # noqa: ANN001
    """A finished session as the store keeps it, each answer graded by the real grader (a None answer is
    the question's strong answer)."""
    banks = load_all()
    sid = store.create_session(scenario, 1, "test", {}, options={"mode": "live"})
    for idx, (qid, text) in enumerate(answers):
        bank, q = find_question(qid, banks)
        text = text or q.reference or q.good[0]
        store.save_question(sid, idx, kind="ask", panelist=q.asked_by, question_id=qid, canonical=q.text,
                            spoken=q.text, fallback=None, timings=None)
        store.save_answer(sid, idx, answer=text, grade=grader.grade(bank, q, text).as_dict(), spent_s=60.0,
                          state={})
    with store.tx() as db:  # as if answered `when`
        db.execute("UPDATE turns SET asked = ?, answered = ? WHERE session_id = ?", (when, when, sid))
        db.execute("UPDATE sessions SET created = ? WHERE id = ?", (when, sid))
    return sid


def test_a_drill_after_two_sessions_asks_the_two_weakest_first_and_a_good_answer_moves_them_on(
        grader, backend, settings: Settings):
    store = Store.open_default(settings.home)
    start = time.time() - 2 * DAY_S
    stored_session(store, grader, *FIRST, when=start)
    stored_session(store, grader, *SECOND, when=start + 3600)
    plan = build_plan(store)
    weak = {qid for _, answers in (FIRST, SECOND) for qid, text in answers if text}
    assert {i.question_id for i in plan.planned} == weak  # strong answers are not in the plan
    assert all(i.last.total < GOOD for i in plan.planned)
    assert {c for c, _, _ in plan.criteria} >= {"technical_accuracy"} and len(plan.trend) == 2
    due = plan.due()
    assert [i.question_id for i in due] == [i.question_id for i in sorted(plan.planned, key=lambda i: i.last.total)]
    weakest = [i.question_id for i in due[:2]]

    items, early = plan.drill()
    assert not early and [i.question_id for i in items][:2] == weakest
    iv = Interview.start_built([i.question_id for i in items], kind="drill", title="Drill · 3 weak spots",
                               backend=backend, grader=grader, store=store, seed=3, options={"coach": True})
    written = [q for seg in iv.scenario.segments for q in seg.questions]
    assert written[:2] == weakest
    scenarios = load_scenarios()
    for qid in written:  # each asked by the panelist who asks it in its own scenario
        here = next(seg.panelist for seg in iv.scenario.segments if qid in seg.questions)
        assert here == next(seg.panelist for s in scenarios.values() for seg in s.segments if qid in seg.questions)
    said = "".join(iv.ask())
    assert said.strip() and iv.current is not None and iv.current.action.question_id == weakest[0]
    q = iv.bank.get(weakest[0])
    # graded exactly as in its own bank: the drill's merged bank keeps the question's weights
    home_bank, home_q = find_question(weakest[0], load_all())
    strong = q.reference or q.good[0]
    assert iv.answer(strong).total == grader.grade(home_bank, home_q, strong).total >= GOOD
    iv.stop_background()
    iv.release()

    # the second weakest, retried well from History
    from coach.interview.history import History

    sid, idx = next((r["id"], t["idx"]) for r in store.sessions() for t in store.turns(r["id"])
                    if t["question_id"] == weakest[1] and r["scenario"] != "drill")
    _, q2 = find_question(weakest[1], load_all())
    History(store, grader).retry(sid, idx, q2.reference or q2.good[0])

    after = build_plan(store)
    still_due = [i.question_id for i in after.due()]
    assert weakest[0] not in still_due and weakest[1] not in still_due
    moved = {i.question_id: i for i in after.planned}
    assert moved[weakest[0]].review == 1 and moved[weakest[0]].when(time.time()) == "in 3 days"
    assert set(still_due) == weak - set(weakest)
    # the drill is stored as one and resumes as the same panel
    row = store.session(iv.session_id)
    assert row is not None and row["scenario"] == "drill" and row["options"]["questions"] == written
    again = Interview.resume(iv.session_id, backend=backend, grader=grader, store=store)
    assert [q for seg in again.scenario.segments for q in seg.questions] == written
    again.release()
    store.close()


def test_coach_plan_lists_the_weak_spots_and_the_trend(grader, settings: Settings):
    store = Store.open_default(settings.home)
    start = time.time() - 2 * DAY_S
    stored_session(store, grader, *FIRST, when=start)
    stored_session(store, grader, *SECOND, when=start + 3600)
    store.close()
    p = subprocess.run([COACH, "plan"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "Your plan: 3 questions to work on, 3 due now" in out, out
    for qid in ("pm-eval-regression", "pm-canary-release", "tpm-fp8-gradients"):
        assert qid in out
    assert "pm-rate-limits" not in out.split("Criteria")[0]  # answered well: not in the plan
    assert "Criteria, lowest first: " in out and "By session, oldest first:" in out
    assert "coach plan --drill" in out


def test_coach_plan_with_nothing_stored_says_what_to_do():
    p = subprocess.run([COACH, "plan"], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and "Nothing graded yet" in p.stdout, p.stdout + p.stderr
