"""Practice mode: a hint that never gives a key point away, a strong answer only after a draft, the grade
after each answer, and the mode kept with the session (History's list, the debrief's heading)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from coach.grading.hints import content_words, hint, leaked, strong_answer
from coach.grading.rubrics import load_all
from tests.conftest import COACH


def secret_words(q) -> set[str]:  # noqa: ANN001
    """A key point's words the question itself does not show: what a hint must never say."""
    return set().union(*(content_words(k.text) for k in q.key_points)) - content_words(q.text)


class Missed:
    """A draft's grade, as far as a hint reads one: which key points it did not make (pure logic)."""

    def __init__(self, missed: list[str]) -> None:
        self.missed = missed


def test_no_hint_on_any_built_in_question_contains_a_key_points_words():
    drafts = ["", "I would ask the team, and for example we shipped it in 2023 with a 20 percent gain."]
    for bank in load_all().values():
        for q in bank.questions:
            secret = secret_words(q)
            assert secret, q.id  # the check below can fail: every question has words to give away
            points = [k.text for k in q.key_points]
            for missed in ([], points, points[:1], points[1:]):
                for text in drafts:
                    h = hint(q, Missed(missed) if text else None, text)  # type: ignore[arg-type]
                    assert not content_words(h) & secret, (q.id, h)
                    assert "point" in h, h
            assert strong_answer(q) in (q.reference, q.good[0])


def test_the_check_catches_a_hint_that_quotes_a_key_point():
    q = load_all()["tpm-onsite"].questions[0]
    assert leaked(q, f"Think about this: {q.key_points[0].text}")


def test_a_draft_that_makes_a_point_is_told_what_is_still_missing(grader):
    bank = load_all()["pmm-final-panel"]
    q = next(q for q in bank.questions if q.id == "fp-speed-pushback")
    blank = hint(q)
    assert blank.startswith(f"The panel listens for {len(q.key_points)} points here:")
    draft = q.good[0]  # a good exemplar makes most points: fewer areas are left than in the blank hint
    h = hint(q, grader.grade(bank, q, draft), draft)
    assert h.startswith("Your draft makes ") and not leaked(q, h), h
    made = points_made(h, q)
    assert made >= 2, h
    weak = "We should tell sales to keep going."
    h_weak = hint(q, grader.grade(bank, q, weak), weak)
    assert points_made(h_weak, q) < made and "Not there yet: " in h_weak, h_weak


def points_made(h: str, q) -> int:  # noqa: ANN001
    word = h.split("Your draft makes ")[1].split()[0]
    return len(q.key_points) if word == "all" else int(word)


def test_rehearse_in_practice_mode_gives_a_hint_then_a_strong_answer_and_keeps_the_mode():
    feed = (b"?\n"  # a hint before any draft
            b"??\n"  # refused: nothing drafted yet
            b"I would reproduce the customer's numbers on their own hardware first.\n"
            b"?\n"  # a hint on the draft so far
            b"??\n"  # now the strong answer
            b"\n")
    p = subprocess.run([COACH, "rehearse", "--scenario", "pm_loop", "--practice"], input=feed,
                       capture_output=True, timeout=600)
    out = p.stdout.decode()
    assert p.returncode == 130 and "Traceback" not in p.stderr.decode(), p.stderr.decode()[-2000:]
    assert "Practice mode: a line with ? gives a hint" in out
    assert "[The panel listens for " in out
    assert "[draft your own answer first" in out
    assert "[Your draft makes " in out or "[The panel listens for " in out.split("draft your own answer first")[1]
    assert "[A strong answer: " in out
    assert "[score " in out  # the grade after the answer
    from coach.store import Store

    st = Store.open_default(Path(os.environ["COACH_HOME"]), readonly=True)
    row = st.sessions()[0]
    assert row["options"]["mode"] == "practice"
    answer = st.turns(row["id"])[0]["answer"]
    assert answer == "I would reproduce the customer's numbers on their own hardware first."  # no ? lines in it
    from coach.grading.grader import Grader
    from coach.interview.history import History, debrief_for

    assert History(st, Grader()).label(row).endswith(" · practice")
    assert "practice mode" in debrief_for(st, row["id"], reveal_too=False).heading


def test_a_live_panel_refuses_hints(grader, backend, tmp_path: Path):
    from coach.errors import CoachError
    from coach.interview.session import Interview
    from coach.store import Store

    store = Store.open_default(tmp_path)
    iv = Interview.start("pm_loop", backend=backend, grader=grader, store=store, seed=3)
    for _ in iv.ask():
        pass
    try:
        iv.hint("")
    except CoachError as exc:
        assert "practice mode" in str(exc)
    else:
        raise AssertionError("a live panel gave a hint")
    iv.release()
