"""`coach rubric check`: every built-in rubric passes; a deliberately weak one is flagged with what to add."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from coach.grading.rubric_check import check_bank, render
from coach.grading.rubrics import RUBRICS_DIR, load_all
from tests.conftest import COACH


def test_every_built_in_rubric_passes(grader):
    for name, bank in load_all().items():
        checks = check_bank(grader, bank)
        problems = [(c.question, p) for c in checks for p in c.problems]
        assert not problems, (name, problems)
        assert render(name, bank, checks).splitlines()[-1].startswith("passed")


WEAK = {
    "bank": "weak",
    "questions": [{
        "id": "weak-rollout",
        "text": "How would you roll out a new model version to all customers?",
        "key_points": [{"text": "Start with a small canary share of traffic and widen it on health gates."},
                       {"text": "Keep a fast rollback to the previous version."}],
        # two goods that are one sentence, a bad that is a good one with "maybe", and a "bad" that is the
        # best answer here (mislabelled): the grader can neither learn the idea nor order the exemplars
        "good": ["Roll it out to a small canary group first, then widen it step by step.",
                 "Roll it out to a small canary group first, then widen it step by step slowly.",
                 "Ship it when the team feels ready and tell the customers."],
        "bad": ["Roll it out to a small canary group first, then widen it step by step, maybe.",
                "Start with a one percent canary, widen it on health gates for latency and errors, and keep a "
                "one-click rollback to the previous version.",
                "Let each team decide when to ship."],
    }],
}


def test_a_weak_rubric_is_flagged_with_what_to_add(tmp_path: Path):
    path = tmp_path / "weak.yaml"
    path.write_text(yaml.safe_dump(WEAK))
    r = subprocess.run([COACH, "rubric", "check", str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    assert "good exemplars 1 and 2 say nearly the same thing" in out
    assert "are nearly one text to the grader" in out
    assert "cannot tell them apart" in out
    assert "Stakeholder alignment (30% of the total) has no key point" in out
    assert "do not trust the grader on weak-rollout" in out


def test_a_malformed_rubric_gets_one_line(tmp_path: Path):
    bad = dict(WEAK)
    bad["questions"] = [{**WEAK["questions"][0], "good": WEAK["questions"][0]["good"][:2]}]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(bad))
    r = subprocess.run([COACH, "rubric", "check", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 7 and "weak-rollout" in r.stderr and "`good`" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_the_check_runs_on_a_built_in_file_from_the_command_line():
    r = subprocess.run([COACH, "rubric", "check", str(RUBRICS_DIR / "pm_loop.yaml")], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "passed: no problems" in r.stdout, r.stdout + r.stderr
