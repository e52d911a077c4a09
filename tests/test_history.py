"""`History`: stored sessions as the front ends read them, on a real session."""

from __future__ import annotations

import pytest

from tests.test_session import STRONG, WEAK, scripted


def test_history_reads_retries_and_refuses_what_is_not_there(tiny_backend, grader, tmp_path):
    from coach.errors import CoachError
    from coach.interview.history import History
    from coach.store import Store

    store = Store(tmp_path / "h.db")
    iv, _ = scripted(tiny_backend, grader, store, 11, [WEAK])  # the flow: what the model says does not matter
    h = History(store, grader)
    assert [r["id"] for r in h.sessions()] == [iv.session_id]
    questions = h.graded_questions(iv.session_id)
    idx, text = questions[0]
    stored = next(t for t in store.turns(iv.session_id) if t["idx"] == idx)
    r = h.retry(iv.session_id, idx, STRONG)
    assert r.before == stored["grade"]["total"] and r.grade.total > r.before and r.change == "better"
    assert h.retry(iv.session_id, idx, WEAK).change == "the same"  # same answer, same score
    # each graded question and its answer, the panel's "any questions for us?" and the reply, then the goodbye
    assert len(h.transcript(iv.session_id)) == 2 * len(questions) + 3
    assert h.debrief(iv.session_id).decision == iv.debrief().decision
    close = store.turns(iv.session_id)[-1]["idx"]
    with pytest.raises(CoachError, match="no graded question"):
        h.retry(iv.session_id, close, STRONG)
    with pytest.raises(CoachError, match="no session 'nope'"):
        h.transcript("nope")
