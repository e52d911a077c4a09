"""The Quick round keeps its own clock: every time box scales, and the clock's "N more question(s)" is what
the panel then does (pure logic over the panel; the browser journey shows the same on screen)."""

from __future__ import annotations

from coach.interview.panel import Clock, Panel
from coach.report.views import segment_note
from tests.test_citations import Grade


def test_every_time_box_scales_and_n_more_questions_is_kept(world):
    personas, banks, scenarios = world
    kept = 0
    for sc in scenarios.values():
        panel = Panel(sc, banks[sc.rubric], personas)
        for seed in range(6):
            for spent in (20.0, 45.0, 70.0, 95.0):
                st = panel.start(seed, quick=True)
                assert st.pace < 1
                while True:
                    a = panel.next_action(st)
                    if a.kind == "close" or a.question_id is None:
                        break
                    assert panel.question_box(st, a.question_id) < banks[sc.rubric].get(a.question_id).time_box_s
                    used = st.seg_spent_s + spent  # the clock as the candidate sees it when pressing Send
                    n, up_to = panel.questions_coming(st, used, a.kind != "follow_up")
                    seg = st.seg_pos
                    panel.record(st, a, Grade(4.6, {"technical_accuracy": 4.6}), "ok", spent)
                    if n and not up_to:  # "1 more question": this panelist asks again (a probe may come first)
                        assert st.seg_pos == seg, (sc.id, seed, spent, a.question_id, n)
                        kept += 1
                    elif n == 0 and a.kind != "follow_up" and not st.pending_follow_up:
                        assert st.seg_pos != seg or st.done, (sc.id, seed, spent, a.question_id)  # "last question"
    assert kept > 50


def test_the_segment_note_says_what_comes():
    assert segment_note(Clock(60, 300, 1)) == " · 1 more question"
    assert segment_note(Clock(250, 300, 0)) == " — nearly out of time, wrap up · last question of this segment"
    assert segment_note(Clock(60, 300, 2, up_to=True)) == " · up to 2 more questions"
    assert Clock(245, 300).warn and not Clock(235, 300).warn
