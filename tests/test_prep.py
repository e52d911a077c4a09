"""Your own job and your stories: a posting picks the questions that fit it (with the line that chose each),
a panel is built from them through the real Interview, stories map to the questions they answer, and the
debrief notes which story an answer told. The postings and stories are a helper's, written from the question
texts alone (tests/data/prep/jobs_and_stories.yaml)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from coach.config import Settings
from coach.errors import ConfigError
from coach.grading.rubrics import load_all
from coach.interview.custom import askers
from coach.interview.history import History, debrief_for
from coach.interview.prompts import scenario_parts
from coach.prep import stories
from coach.prep.job import job_lines, pick_questions
from coach.report.debrief import as_json, as_markdown
from coach.store import Store
from tests.conftest import COACH

DATA = yaml.safe_load((Path(__file__).parent / "data" / "prep" / "jobs_and_stories.yaml").read_text())
JOBS = {j["focus"]: j for j in DATA["jobs"]}
STORIES = {s["id"]: s for s in DATA["stories"]}


def test_a_pricing_and_go_to_market_posting_picks_mostly_pricing_and_gtm_questions(grader):
    job = JOBS["pricing_gtm"]
    picks = pick_questions(job["text"], grader.embedder, askers())
    assert len(picks) == 8 and len({p.question_id for p in picks}) == 8
    fit = [p for p in picks if p.question_id in job["expected"]]
    assert len(fit) >= 5, [p.question_id for p in picks]  # measured: 6 of 8
    assert {p.panelist for p in picks} == {"researcher", "gtm", "pm"}  # still a panel of three
    lines = job_lines(job["text"])
    assert all(p.reason in lines for p in picks)  # the reason is the posting's own line
    # over all four postings, well above chance (8 of 48 questions: 0.17)
    hits = sum(p.question_id in j["expected"] for j in DATA["jobs"]
               for p in pick_questions(j["text"], grader.embedder, askers()))
    assert hits / 32 >= 0.5, hits  # measured: 19 of 32


def test_a_posting_too_short_to_choose_from_is_refused(grader):
    with pytest.raises(ConfigError, match="too short to choose questions"):
        pick_questions("Product manager. Apply now.", grader.embedder, askers())


def test_rehearse_job_shows_the_picks_and_stores_a_panel_for_that_job(tmp_path: Path, settings: Settings):
    posting = tmp_path / "job.txt"
    posting.write_text(JOBS["pricing_gtm"]["text"], encoding="utf-8")
    p = subprocess.run([COACH, "rehearse", "--job", str(posting)], input=b"", capture_output=True, timeout=600)
    out, err = p.stdout.decode(), p.stderr.decode()
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    assert "Questions for Product Marketing Manager, Pricing & Go-to-Market (API)" in out
    assert out.count("      <- \"") == 8
    assert "== Your job: Product Marketing Manager" in out
    store = Store.open_default(settings.home, readonly=True)
    rows = store.sessions()
    assert len(rows) == 1 and rows[0]["scenario"] == "job" and len(rows[0]["options"]["questions"]) == 8
    assert History(store).label(rows[0]).startswith("Your job: Product Marketing Manager")


def test_a_latency_incident_story_maps_to_the_latency_question_as_strong(grader):
    yours = [stories.Story(id=s["id"], title=s["title"], text=s["text"]) for s in DATA["stories"]]
    sc, bank, _ = scenario_parts("tpm_onsite")
    m = stories.map_stories(yours, [bank.get(q) for seg in sc.segments for q in seg.questions], grader.embedder)
    fit = {f.question_id: f for f in m.fits}
    cold = fit["tpm-serverless-cold"]
    assert cold.story is not None and cold.story.id == "latency-incident" and cold.band == "strong", cold
    assert fit["tpm-eval-pipeline"].story.id == "eval-pipeline-speedup" and fit["tpm-eval-pipeline"].band == "strong"
    # the story that fits no question is nobody's best strong or workable fit
    assert all(f.story is None or f.story.id != "mentoring-junior-pm" or f.band == "gap" for f in m.fits)
    # alone, it leaves every question a gap
    alone = stories.map_stories([s for s in yours if s.id == "mentoring-junior-pm"],
                                [bank.get(q) for seg in sc.segments for q in seg.questions], grader.embedder)
    assert len(alone.gaps) == len(alone.fits)


def test_stories_at_the_terminal_add_list_map_and_rm(tmp_path: Path):
    f = tmp_path / "story.txt"
    f.write_text(STORIES["latency-incident"]["text"], encoding="utf-8")
    add = subprocess.run([COACH, "stories", "add", "--title", "The p99 regression", str(f)], capture_output=True,
                         text=True, timeout=120)
    assert add.returncode == 0 and add.stdout.startswith("added the-p99-regression"), add.stderr
    short = subprocess.run([COACH, "stories", "add", "--title", "x", "-"], input="We shipped it.",
                           capture_output=True, text=True, timeout=120)
    assert short.returncode != 0 and "too short to map" in short.stderr
    listed = subprocess.run([COACH, "stories", "list"], capture_output=True, text=True, timeout=120)
    assert "the-p99-regression" in listed.stdout
    mapped = subprocess.run([COACH, "stories", "map", "--scenario", "tpm_onsite"], capture_output=True, text=True,
                            timeout=300)
    assert mapped.returncode == 0, mapped.stderr
    line = next(ln for ln in mapped.stdout.splitlines() if "tpm-serverless-cold" in ln)
    assert line.startswith("strong") and "the-p99-regression" in line
    assert "No story covers " in mapped.stdout  # one story cannot cover a whole onsite
    rm = subprocess.run([COACH, "stories", "rm", "the-p99-regression"], capture_output=True, text=True, timeout=120)
    assert rm.returncode == 0
    assert "No stories yet" in subprocess.run([COACH, "stories", "list"], capture_output=True, text=True,
                                              timeout=120).stdout


def test_the_debrief_notes_which_story_an_answer_told(grader, settings: Settings):
    story = STORIES["latency-incident"]
    stories.add(settings.home, story["title"], story["text"])
    store = Store.open_default(settings.home)
    bank = load_all()["tpm-onsite"]
    told = ("Last year our p99 latency regressed right after a release. " + story["text"].split(".", 2)[2]
            if story["text"].count(".") > 2 else story["text"])
    other = bank.get("tpm-eval-pipeline")
    sid = store.create_session("tpm_onsite", 1, "test", {})
    for idx, (qid, text) in enumerate((("tpm-serverless-cold", told), ("tpm-eval-pipeline", other.good[0]))):
        q = bank.get(qid)
        store.save_question(sid, idx, kind="ask", panelist="pm", question_id=qid, canonical=q.text, spoken=q.text,
                            fallback=None, timings=None)
        store.save_answer(sid, idx, answer=text, grade=grader.grade(bank, q, text).as_dict(), spent_s=60.0, state={})
    d = debrief_for(store, sid, embedder=grader.embedder)
    assert d.stories == [(1, story["title"])]
    assert f"Answer 1 told “{story['title']}”" in as_markdown(d)
    assert '"story": "' in as_json(d)
