"""Sessions as a person keeps them: a browser's own lease, its settings back on resume, readable names,
abandon and delete, and retries saved and shown as before -> after in History and every report. Stored
turns are graded by the real grader; no model speaks (the wording is not what is tested here)."""

from __future__ import annotations

import json

import pytest

from coach.errors import CoachError, SessionBusy
from coach.interview.history import History
from coach.interview.prompts import scenario_parts
from coach.report.debrief import as_html, as_json, as_markdown, debrief_details, debrief_markdown
from coach.report.views import session_rows
from coach.store import Store
from tests.test_session import STRONG, WEAK


def stored_session(store: Store, grader, answers: list[str], holder: str | None = "browser:abc12345",
                   options: dict | None = None) -> str:
    """A PMM final panel with `answers` stored as the panel would store them (questions from its bank)."""
    sc, bank, _ = scenario_parts("pmm_final_panel")
    sid = store.create_session(sc.id, 7, "test-model", {"order": [0, 1, 2]}, holder=holder,
                               options=options or {"coach": True})
    seg = sc.segments[0]
    for i, text in enumerate(answers):
        q = bank.get(seg.questions[i])
        store.save_question(sid, i, kind="ask", panelist=seg.panelist, question_id=q.id, canonical=q.text,
                            spoken=f"Hello. {q.text}", fallback=None, timings=None, holder=holder)
        g = grader.grade(bank, q, text)
        store.save_answer(sid, i, answer=text, grade=g.as_dict(), spent_s=30, state={"order": [0, 1, 2]},
                          holder=holder)
    return sid


def test_a_browser_takes_its_own_session_back_and_its_settings_come_with_it(grader, tmp_path):
    store = Store(tmp_path / "s.db")
    sid = stored_session(store, grader, [WEAK], options={"coach": True})
    assert store.held_by("browser:abc12345") == [sid] and store.held_by("browser:other999") == []
    assert store.session(sid)["options"] == {"coach": True}
    store.acquire(sid, "browser:abc12345")  # the same browser after a reload: no take-over needed
    with pytest.raises(SessionBusy, match="take it over"):
        store.acquire(sid, "browser:other999")  # another browser still asks
    store.set_status(sid, "abandoned")
    assert store.session(sid)["status"] == "abandoned"
    with pytest.raises(CoachError, match="not 'finished'"):
        store.set_status(sid, "finished")


def test_history_names_abandons_deletes_and_keeps_retries(grader, tmp_path):
    store = Store(tmp_path / "h.db")
    sid = stored_session(store, grader, [WEAK, WEAK, STRONG])
    h = History(store, grader)
    row = h.sessions()[0]
    assert row["label"].startswith("PMM final panel · ") and row["retries"] == ""
    questions = h.graded_questions(sid)
    assert [q[1].split(".")[0] for q in questions] == ["1", "2", "3"]  # numbered from 1, as the debrief
    assert "Dr. Ines Marchal: Explain how a sliding-window" in questions[0][1]  # the question, not the greeting
    idx = questions[0][0]
    r = h.retry(sid, idx, STRONG)
    assert r.grade.total > r.before
    row = h.sessions()[0]
    assert row["retries"] == f"Q1 {r.before:.1f} → {r.grade.total:.1f}"
    table = session_rows([row])[0]
    assert table["session"] == row["label"] and table["retried"] == row["retries"] and table["id"] == sid
    d = h.debrief(sid)
    assert d.questions()[0]["retry"] == r.grade.total and d.questions()[1]["retry"] is None
    details = debrief_details(d)
    assert "| 1 | Dr. Ines Marchal |" in details and f"{r.before:.1f} → {r.grade.total:.1f}" in details
    assert "answered again" in as_markdown(d) and "answered again" in as_html(d)
    assert json.loads(as_json(d))["turns"][0]["retry"]["total"] == r.grade.total
    with pytest.raises(CoachError, match="type the new answer first"):
        h.retry(sid, idx, "  ")
    h.abandon(sid)
    assert h.sessions()[0]["status"] == "abandoned"
    h.delete(sid)
    assert h.sessions() == [] and store.turns(sid) == [] and store.retries(sid) == {}
    with pytest.raises(CoachError, match="no session"):
        h.delete(sid)


def test_the_debrief_opens_with_the_three_costliest_gaps(grader, tmp_path):
    store = Store(tmp_path / "d.db")
    sid = stored_session(store, grader, [WEAK, STRONG, WEAK, "We would run a survey."])
    d = History(store, grader).debrief(sid)
    gaps = d.costliest()
    scores = sorted(q["score"] for q in d.questions())
    assert len(gaps) == 3 and [g["score"] for g in gaps] == scores[:3]  # the lowest three, lowest first
    assert all(g["who"] == "Dr. Ines Marchal" and g["idx"] >= 0 for g in gaps)
    md = debrief_markdown(d)
    assert md.index("Fix these three first") < md.index("- **Dr. Ines Marchal (Senior research scientist)**")
    assert "PMM final panel · " in d.heading  # the scenario by its title
    assert f"**Question {gaps[0]['n']}**" in md and gaps[0]["improvement"] in md
    assert "Fix these first" in as_html(d) and json.loads(as_json(d))["fix_first"][0]["n"] == gaps[0]["n"]
