"""The debrief: the committee rule, the reports, and what a report says about a session (pure logic: fake grades)."""

from __future__ import annotations

import json

import pytest

from coach.grading.debrief import Turn, build_debrief
from coach.grading.grader import Delivery, Grade
from coach.report.debrief import as_html, as_json, as_markdown


def fake_grade(total: float, **criteria: float) -> Grade:
    crit = criteria or {"technical_accuracy": total, "narrative_coherence": total, "stakeholder_alignment": total}
    return Grade("q", crit, {c: 1 / len(crit) for c in crit}, total, ("good one", 0.8), ("bad one", 0.6), [],
                 "Add what is missing: numbers.", Delivery(50, 0, 0, 20, 120), strongest="A strong line.",
                 weakest="A weak line.")


def turns(*scores: tuple[str, float]) -> list[Turn]:
    return [Turn(p, f"q{i}", f"Question {i}?", f"Answer {i}. More.", fake_grade(s)) for i, (p, s) in enumerate(scores)]


@pytest.mark.parametrize(("scores", "decision", "lost"), [
    ((("researcher", 4.6), ("gtm", 4.5), ("pm", 4.4)), "Offer", None),
    ((("researcher", 4.6), ("gtm", 4.5), ("pm", 3.6)), "Offer", None),
    ((("researcher", 3.6), ("gtm", 3.7), ("pm", 3.8)), "No offer", "researcher"),
    ((("researcher", 4.8), ("gtm", 2.9), ("pm", 4.8)), "No offer", "gtm"),
    ((("researcher", 4.8), ("gtm", 4.8), ("pm", 1.5)), "No offer", "pm"),
])
def test_committee_rule(scores, decision, lost):
    d = build_debrief(turns(*scores))
    assert d.decision == decision and d.lost == lost
    if decision == "No offer" and all(s >= 3.4 for _, s in scores):
        assert "plain Yes is not enough" in d.reason


def test_reports_in_three_formats():
    d = build_debrief(turns(("researcher", 4.8), ("gtm", 2.2), ("pm", 4.5)))
    assert d.verdicts[1].verdict == "Strong No" and d.weak_answers[0]["exemplar"] == "good one"
    md = as_markdown(d)
    assert md.startswith("# Debrief: No offer") and "Strong No" in md and "Better: good one" in md
    data = json.loads(as_json(d))
    assert data["decision"] == "No offer" and len(data["turns"]) == 3 and data["lost"] == "gtm"
    page = as_html(d)
    assert page.startswith("<!doctype html>") and "<script" not in page and "http" not in page
    assert "Strong No" in page and "&lt;" not in as_html(d).split("<body>")[0]


META = {"session": "20261125-101500-abc123", "scenario": "pmm final panel", "model": "mistral-7b-instruct-v0.3:Q4_K_M",
        "created": 1_795_000_000.0, "complete": True}


def test_an_unfinished_session_says_so_and_what_the_committee_would_say_so_far():
    d = build_debrief(turns(("researcher", 4.6), ("gtm", 4.5)), meta={**META, "complete": False})
    assert d.decision == "Incomplete" and "before the panel finished" in d.reason and "would say Offer" in d.reason
    assert "incomplete" in d.heading and as_markdown(d).startswith("# Debrief: Incomplete")
    assert build_debrief(turns(("researcher", 4.6), ("gtm", 4.5)), meta=META).decision == "Offer"


def test_the_report_goes_question_by_question_with_delivery_and_the_session_heading():
    ts = turns(("researcher", 4.6), ("gtm", 2.0))
    ts[1].grade.delivery = Delivery(400, 3, 2, 160, 120)  # over its time box
    d = build_debrief(ts, meta=META)
    qs = d.questions()
    assert [q["n"] for q in qs] == [1, 2] and qs[1]["score"] == 2.0 and "(over time)" in qs[1]["delivery"]
    assert "3 filler(s), 2 hedge(s)" in qs[1]["delivery"] and "over time" not in qs[0]["delivery"]
    md = as_markdown(d)
    assert "## Question by question" in md and "Delivery: typed, estimated: 400 words" in md
    assert "Next time: Add what is missing" in md
    assert "pmm final panel" in d.heading and "mistral-7b-instruct-v0.3:Q4_K_M" in d.heading
    page = as_html(d, b"\x89PNG fake")
    assert "data:image/png;base64," in page and "Question by question" in page and META["session"] in page
    assert json.loads(as_json(d))["session"]["model"] == META["model"]


def test_report_files_are_named_after_the_session_and_the_html_carries_its_chart(tmp_path):
    from coach.report.debrief import debrief_files

    d = build_debrief(turns(("researcher", 4.6), ("gtm", 2.0), ("pm", 3.9)), meta=META)
    files = debrief_files(d, tmp_path, {"researcher": "#123456"})
    assert {p.name for p in files.values()} == {f"debrief-{META['session']}.{x}" for x in ("png", "md", "json", "html")}
    assert files["png"].read_bytes().startswith(b"\x89PNG")
    page = files["html"].read_text()
    assert "data:image/png;base64," in page and len(page) > 20_000  # the chart is inside: one file to keep
