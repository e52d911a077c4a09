"""After the round: what each panelist was really testing (the reveal) and the estimated level, on the real
grader and embedder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coach.errors import ConfigError
from coach.grading.levels import Ladder, estimate, ladder_for, load_ladders, modelled, place
from coach.grading.reveal import SPEAKS_AT, Answered, reveal
from coach.grading.rubrics import load_all
from coach.interview.prompts import load_personas

SET = Path(__file__).parent / "data" / "reveal" / "answers.yaml"


def _graded(grader, bank, which: str) -> list[tuple[str, dict[str, float], float]]:
    out = []
    for q in bank.questions:
        text = q.good[0] if which == "good" else q.bad[0]
        g = grader.grade(bank, q, text)
        out.append((text, g.criteria, g.total))
    return out


def test_a_tpm_session_of_strong_answers_is_placed_higher_than_one_of_weak_answers(grader):
    bank = load_all()["tpm-onsite"]
    strong = estimate("tpm_onsite", _graded(grader, bank, "good"))
    weak = estimate("tpm_onsite", _graded(grader, bank, "bad"))
    assert strong is not None and weak is not None
    rank = {lv.level: i for i, lv in enumerate(ladder_for("tpm_onsite").levels)}
    assert rank.get(strong.band, -1) > rank.get(weak.band, -1), (strong.summary(), weak.summary())
    assert strong.evidence and "mean answer" in strong.evidence[0]  # the evidence is named
    assert weak.next_level is not None and weak.move_up  # and what would move the weak one up
    assert "estimate" in weak.summary().lower() or "Estimated" in weak.summary()


def test_the_pm_loop_has_no_junior_track_and_other_scenarios_have_no_ladder():
    pm = ladder_for("pm_loop")
    assert pm is not None and pm.levels[0].level == "L5" and "no junior" in pm.below
    assert ladder_for("pmm_deep_dive") is None and estimate("pmm_deep_dive", [("x", {}, 3.0)]) is None
    low = place(pm, [("We would ship it.", {"technical_accuracy": 2.0}, 2.0)])
    assert low.band == pm.below and low.next_level == "L5" and len(low.move_up) == 2


def test_modelling_needs_a_figure_of_ones_own_and_sound_technique():
    sound = {"technical_accuracy": 4.3}
    assert modelled("At 4-bit the 8B weights need about 5 GB, so two replicas fit per GPU.", sound)
    assert not modelled("We would model the memory carefully before building.", sound)
    assert not modelled("At 4-bit the weights need about 5 GB.", {"technical_accuracy": 3.1})


def test_a_malformed_ladder_names_the_file_and_the_field(tmp_path):
    bad = tmp_path / "ladders.yaml"
    bad.write_text(yaml.safe_dump({"ladders": [{"scenarios": ["x"], "name": "X", "below": "b",
                                                "levels": [{"level": "L1", "owns": "o",
                                                            "needs": [{"charisma": 3, "says": "more"}]}]}]}))
    with pytest.raises(ConfigError, match="ladders.yaml.*charisma"):
        load_ladders(bad)
    assert all(isinstance(lad, Ladder) for lad in load_ladders())


def test_the_reveal_quotes_the_sentence_that_spoke_to_a_priority_and_says_not_shown_otherwise(grader):
    personas = load_personas()
    spoke = ("Our p95 latency budget is 800 ms, so we cache the system prompt. When sales asked me to say we beat "
             "the frontier model on every benchmark, I refused and gave them the two evals we can reproduce. "
             "We ship it to ten design partners first.")
    silent = "I would stage the rollout by region, gate each stage on error rate, and keep the old model warm."
    answers = [Answered(1, "researcher", spoke, 4.1), Answered(2, "pm", silent, 3.6)]
    out = {r.panelist: r for r in reveal(personas, answers, grader.embedder, {"researcher": "Dr. R"})}
    assert set(out) == {"researcher", "pm"}  # only panelists who asked something
    overclaim = next(s for s in out["researcher"].priorities if "overclaim" in s.priority)
    assert overclaim.quote is not None and overclaim.quote.startswith("When sales asked me")
    assert overclaim.quote in spoke and overclaim.n == 1 and overclaim.score == 4.1  # whole, with its grade
    assert out["researcher"].agenda == personas["researcher"].agenda
    calm = next(s for s in out["pm"].priorities if "calm" in s.priority)
    assert calm.quote is None and "not shown" in calm.line


def test_the_reveal_matches_the_kept_aside_part_of_a_labelled_set(grader):
    """Helper-written answers that speak to a hidden priority (or, on topic, do not): the threshold was chosen
    on the first four fifths; this is the fifth kept aside (docs/grader.md has both figures)."""
    items = yaml.safe_load(SET.read_text())["items"]
    held = items[4::5]
    personas = load_personas()
    right = 0
    for it in held:
        p = personas[it["panelist"]]
        r = reveal({it["panelist"]: p}, [Answered(1, it["panelist"], it["answer"], 3.0)], grader.embedder)[0]
        shown = next(s for s in r.priorities if s.priority == it["priority"])
        right += (shown.quote is not None) == bool(it["speaks"])
    assert SPEAKS_AT > 0
    assert right / len(held) >= HELD_OUT_ACCURACY, f"{right}/{len(held)}"


HELD_OUT_ACCURACY = 0.62  # measured 16 of 24 (0.67) on the part kept aside; training part 0.81
