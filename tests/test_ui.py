"""The UI through its API (gradio_client) and in a real browser (Playwright driving Debian's chromium),
plus a whole session in a process with no network at all."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from tests.conftest import COACH, REPO, chromium_path, free_port, sigint_default
from tests.fakehub import catalog_entry, serve
from tests.ggufgen import write_gguf

ARTIFACTS = REPO / "artifacts"
GOOD = ("I would reproduce what the customer measured: hardware, prompt lengths, first token or sustained decoding. "
        "If our launch claim does not hold we correct it this week, and sales gets a cost-adjusted comparison on "
        "the buyer's own workload, where our numbers hold.")


def launch_ui(env: dict[str, str], log: Path, *args: str, wait_s: float = 60,
              **popen: Any) -> tuple[subprocess.Popen[bytes], str]:
    """Start `coach ui ARGS` on a free port and wait until the page answers (a 401 from a coach with
    sign-in counts). Its output goes to `log`, a file: a pipe nobody reads would fill and block the server."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([COACH, "ui", "--port", str(port), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, **popen)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(int(wait_s * 4)):
        try:
            urllib.request.urlopen(url, timeout=1)
            return proc, url
        except urllib.error.HTTPError:  # up, and asking for sign-in
            return proc, url
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"coach ui exited: {log.read_text()[-3000:]}")
            time.sleep(0.25)
    proc.kill()
    pytest.fail(f"coach ui did not answer within {wait_s:.0f} s")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`coach ui` as a user runs it, with the real catalog plus one file a local fake hub serves."""
    root = tmp_path_factory.mktemp("ui")
    payload = write_gguf(root / "tiny.gguf", tensor_bytes=2**20).read_bytes()
    hub = serve(payload, free_port())
    catalog = yaml.safe_load((REPO / "models" / "catalog.yaml").read_text())
    catalog["models"].append(catalog_entry(payload))
    (root / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    env = {**os.environ, "COACH_HOME": str(root / "home"), "COACH_CATALOG": str(root / "catalog.yaml"),
           "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_HUB_ETAG_TIMEOUT": "5",
           # one llama.cpp thread: chromium always runs beside this server, and two threads on two busy cores
           # spin at their barriers (generation fell to under 2 tokens/s measured so)
           "COACH_N_THREADS": "1"}
    t0 = time.perf_counter()
    proc, url = launch_ui(env, root / "server.log")
    print(f"page up after {time.perf_counter() - t0:.1f} s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    hub.shutdown()


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


def test_binds_to_loopback_only(server: str):
    assert urlparse(server).hostname == "127.0.0.1"


def test_api_panel_history_retry_and_resume(server: str):
    from gradio_client import Client

    c = Client(server, verbose=False)
    chat, status, coach, banner = c.predict("PMM final panel", "smollm2-135m-instruct:Q4_1", 3, True,
                                            api_name="/start")[:4]
    assert len(chat) == 2 and "opens the panel · interviewer 1 of 3" in text_of(chat[0])  # who speaks first
    assert "·" in text_of(chat[1]) and "?" in text_of(chat[1])
    # the page names the model to pull where its Pull box is, not as a terminal command
    assert "SmolLM2 135M" in banner and "from the **Models** tab" in banner and "`coach models pull" not in banner
    assert re.search(r"first words [\d.]+ s after you pressed Start", status), status  # as the candidate waited
    out = c.predict(GOOD, True, api_name="/answer")
    chat = out[0]
    assert [m["role"] for m in chat][:2] == ["assistant", "assistant"]  # "opens the panel", then the question
    assert [m["role"] for m in chat][2:] in (["user", "assistant"], ["user", "assistant", "assistant"])
    # coach mode on: the feedback names the answer it grades, and shows no similarity number
    assert out[2].startswith("#### Your answer to question 1 (") and "**Score " in out[2]
    assert "A strong answer sounds like:" in out[2] and not re.search(r"\(0\.\d\d\)", out[2])
    out = c.predict("   ", True, api_name="/answer")
    assert "Type an answer first" in out[1]
    table, pick, trend = c.predict(api_name="/sessions")
    assert Path(trend).read_bytes()[:4] == b"\x89PNG"  # the scores-over-time chart
    rows = table["data"]
    assert len(rows) == 1 and rows[0][0].startswith("PMM final panel · ") and rows[0][1:3] == ["active", 1]
    sid = rows[0][-1]
    retried = c.predict(sid, 0, "We need better messaging.", api_name="/retry")
    assert retried.startswith("**Before ") and "→ now" in retried
    debrief_md, chart, md_file, json_file, html_file = c.predict(sid, api_name="/session_debrief")[:5]
    assert debrief_md.startswith("## Incomplete")  # one answer in: the report says the panel did not finish
    assert Path(html_file).name == f"debrief-{sid}.html" and "data:image/png;base64," in Path(html_file).read_text()
    assert Path(chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(Path(json_file).read_text())["decision"] in debrief_md
    assert Path(md_file).read_text().startswith("#") and "<html" in Path(html_file).read_text().lower()
    other = Client(server, verbose=False)  # a second tab: refused while the first holds the session
    refused = other.predict(sid, False, api_name="/resume")
    assert "is open in this process (another tab)" in refused[1] and "take it over" in refused[1]
    resumed = other.predict(sid, True, api_name="/resume")  # taken over: it goes on where it stopped
    assert text_of(resumed[0][-1]) == text_of(chat[-1])
    refused = c.predict(GOOD, True, api_name="/answer")  # the first tab's next answer is refused, not stored
    assert "Not saved" in refused[1] and "taken over in another tab" in refused[1]
    after = other.predict(GOOD, True, api_name="/answer")[0]
    assert [m["role"] for m in after].count("user") == 2


def test_two_tabs_at_once_share_the_model_without_cross_talk(server: str):
    """Two tabs start and answer at the same moment: each gets its own session and its own transcript."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    answers = {"PM loop": "I would cut scope to the API tier first, measured by weekly active developers.",
               "TPM onsite": "I would publish a dependency map and a weekly risk review with named owners."}

    def tab(title: str) -> tuple[list[dict], list[dict]]:
        c = Client(server, verbose=False)
        chat = c.predict(title, "smollm2-135m-instruct:Q4_1", 11, False, api_name="/start")[0]
        return chat, c.predict(answers[title], False, api_name="/answer")[0]

    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(answers, pool.map(tab, answers), strict=True))
    for title, (opening, after) in results.items():
        mine = [text_of(m) for m in after if m["role"] == "user"]
        assert mine == [answers[title]], (title, mine)  # only this tab's answer is in this tab's transcript
        assert text_of(after[0]) == text_of(opening[0])
    table = Client(server, verbose=False).predict(api_name="/sessions")[0]
    scenarios = [row[0].split(" · ")[0] for row in table["data"] if row[2] == 1]
    assert {"PM loop", "TPM onsite"} <= set(scenarios)


def test_api_models_add_refuses_a_bad_file(server: str, tmp_path):
    from gradio_client import Client

    junk = tmp_path / "junk.gguf"
    junk.write_text("not a model")
    msg = Client(server, verbose=False).predict(str(junk), "", api_name="/models_add")
    assert msg.startswith("**Could not add:**") and "not a GGUF" in msg


def test_api_models_pull_quantize_and_bench(server: str):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    c = Client(server, verbose=False)
    assert c.predict("tiny:F32", api_name="/models_pull").startswith("Ready: `")  # from the local fake hub
    # that file is a valid GGUF container but no model: starting on it fails clearly and keeps the loaded model
    chat, status, _, banner = c.predict("PMM final panel", "tiny:F32", 3, False, api_name="/start")[:4]
    assert chat == [] and status.startswith("**Could not start:**") and "SmolLM2 135M" in banner
    failed = c.predict("nope:Q4", api_name="/models_pull")
    assert failed.startswith("**Pull failed:**") and "tiny:F32" in failed
    made = c.predict("smollm2-135m-instruct:Q4_1", "Q8_0", api_name="/models_quantize")
    assert made.startswith("Made **") and "Q8_0" in made
    name = made.split("**")[1]
    with pytest.raises(AppError, match="Q9_9 is not in the list of choices"):
        c.predict("smollm2-135m-instruct:Q4_1", "Q9_9", api_name="/models_quantize")
    table, plot, rec, files = c.predict([name], "", [], 1, api_name="/bench")
    rows = table["data"]
    cols = table["headers"]
    assert len(rows) == 1 and rows[0][cols.index("status")] == "ok" and "gen_tps" not in cols  # labels, not fields
    assert rows[0][cols.index("writing speed (tokens/s)")] > 1 and rows[0][cols.index("file size (MB)")] > 50
    assert rows[0][cols.index("same next word as the reference")] == "reference"  # not "100%" against itself
    assert rec.startswith("**Measured one file: Q8_0") and "no recommendation" in rec and plot  # nothing to compare
    assert {Path(f).name for f in files} >= {"rows.csv", "rows.json", "plot.html"}
    assert c.predict([], "", [], 1, api_name="/bench")[2] == "Pick at least one model or a ladder source."


@contextlib.contextmanager
def open_page(url: str, height: int = 1000, mic: Path | None = None, width: int = 1200) -> Iterator[Any]:
    """A page of `url` in Debian's chromium through Playwright (headless, no sandbox, no GPU, no
    background networking); screenshots go to ARTIFACTS. `mic`: a WAV the browser's fake microphone plays."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-audio-capture={mic}", "--autoplay-policy=no-user-gesture-required"]
        browser = p.chromium.launch(executable_path=exe, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                               "--disable-background-networking",
                                                               *(fake_mic if mic else [])])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def settled(page: Any) -> None:
    """Wait until no part of the page shows Gradio's "processing" overlay (before a screenshot)."""
    page.wait_for_function("() => !document.body.innerText.includes('processing |')", timeout=60_000)


def in_view(page: Any, selector: str, height: int) -> bool:
    """Whether the last element matching `selector` is on screen as the page stands (no scrolling)."""
    box = page.locator(selector).last.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


@pytest.mark.browser
def test_browser_quick_round_at_1280x720_then_the_debrief(server: str):
    """A whole Quick round at 1280x720: on every turn the latest question, the clock, the voice box, the
    answer box and Send are on screen without scrolling; a "N more question(s)" on the clock is kept (the
    same interviewer goes on); the debrief opens with the three gaps to fix first, each a click from its retry."""
    from playwright.sync_api import expect

    hosts: set[str] = set()
    with open_page(server, height=720, width=1280) as page:
        page.on("request", lambda r: hosts.add(urlparse(r.url).hostname or r.url.split(":")[0]))
        page.goto(server)
        expect(page.locator("#model-banner")).to_contain_text("SmolLM2 135M", timeout=30_000)
        page.locator("#quick input").check()
        page.locator("#start").click()
        bubbles = page.locator("#panel-chat .message")
        expect(page.locator("#timer")).to_contain_text("segment time", timeout=60_000)  # the question is out
        expect(bubbles.first).to_contain_text("opens the panel · interviewer 1 of 3")
        expect(page.locator("#send")).to_be_enabled(timeout=60_000)
        expect(page.locator("#brief")).to_contain_text("PMM final panel")  # the brief, in a line
        expect(page.locator("#scenario")).not_to_be_visible()  # the settings folded away
        kept = 0
        for i in range(30):  # answer until the panel closes
            for part in ("#panel-chat .message", "#timer", "#voice", "#answer textarea", "#send"):
                assert in_view(page, part, 720), (i, part)
            clock = page.locator("#timer").inner_text()
            handovers = page.locator("#panel-chat .message", has_text="takes over").count()
            page.locator("#answer textarea").fill(GOOD)
            page.locator("#send").click()
            expect(page.locator("#panel-chat .message.user")).to_have_count(i + 1, timeout=90_000)
            expect(page.locator("#send")).to_be_enabled(timeout=90_000)  # the panelist has finished speaking
            if re.search(r"· \d+ more questions?$", clock):  # promised (not "up to"): the same interviewer goes on
                assert page.locator("#panel-chat .message", has_text="takes over").count() == handovers, clock
                kept += 1
            if i == 1:
                settled(page)
                page.screenshot(path=str(ARTIFACTS / "ui-panel.png"))
            if "finished" in page.locator("#status").inner_text():
                break
        assert kept >= 2
        expect(page.locator("#status")).to_contain_text("finished", timeout=60_000)
        page.get_by_role("tab", name="Debrief").click()
        expect(page.locator("#debrief")).to_contain_text("offer", timeout=30_000)
        expect(page.locator("#debrief")).to_contain_text("Fix these three first")
        expect(page.locator("#retry-gap-1")).to_contain_text("Retry question")
        # after the round, what each panelist was really testing: agenda, hidden priorities, quote or "not shown"
        expect(page.locator("#debrief")).to_contain_text("What they were really testing")
        expect(page.locator("#debrief")).to_contain_text("wanted to find out")
        expect(page.locator("#debrief")).to_contain_text(re.compile(r"answer \d+ \(to .*/5\): “|not shown in any answer"))
        tabs = page.get_by_role("tab")  # six tabs, each once (a stray component under gr.Tabs drew another)
        expect(tabs).to_have_count(6)
        assert tabs.all_inner_texts() == ["Panel", "Debrief", "History", "Plan", "Models", "Benchmark"]
        expect(page.locator("#debrief-plot img")).to_be_visible(timeout=60_000)  # after the chair's note streams
        page.wait_for_timeout(1500)
        page.screenshot(path=str(ARTIFACTS / "ui-debrief.png"), full_page=True)
        page.locator("#retry-gap-1").click()  # "retry this question": History, on that question
        expect(page.get_by_role("tab", name="History")).to_have_attribute("aria-selected", "true", timeout=30_000)
        expect(page.locator("#retry-turn input")).to_have_value(re.compile(r"^\d+\. "), timeout=30_000)
    assert hosts - {"127.0.0.1", "data", "blob"} == set(), f"requests left the machine: {hosts}"


def test_api_answer_aloud_and_hear_the_panel(server: str, tmp_path):
    """A spoken answer through the API: the WAV becomes editable text, Send grades it with its delivery from
    the voice, and with "Speak" on each question arrives as WAV clips, sentence by sentence."""
    from gradio_client import Client, handle_file

    from tests.test_voice import ANSWER, needs_espeak, speak_to_wav

    if needs_espeak.args[0]:
        pytest.skip("espeak-ng not installed")
    c = Client(server, verbose=False)
    updates = list(c.submit("PM loop", "smollm2-135m-instruct:Q4_1", 9, True, False, True, api_name="/start"))
    clips = [u[4] for u in updates if isinstance(u[4], str) and u[4]]
    assert clips, "no speech came with the question"
    lines = clips[-1].split("\n")
    assert len(lines) >= 2 and all(base64.b64decode(x)[:4] == b"RIFF" for x in lines[1:])  # a header, then WAVs
    wav = speak_to_wav(ANSWER, tmp_path / "answer.wav")
    text, heard, _ = c.predict(handle_file(str(wav)), False, api_name="/transcribe")
    assert len(text.split()) >= 15 and "Heard by PocketSphinx" in heard and "words a minute" in heard
    out = c.predict(text + " And we would say so in writing.", True, False, api_name="/answer")  # edited, then sent
    assert "**Delivery** (from your voice, heard by PocketSphinx" in out[2]
    rows = c.predict(api_name="/sessions")[0]["data"]
    sid = next(r[-1] for r in rows if r[0].startswith("PM loop") and r[2] == 1)
    c.predict(GOOD, False, False, api_name="/answer")  # typed: the estimate
    files = c.predict(sid, api_name="/session_debrief")
    turns = json.loads(Path(files[3]).read_text())["turns"]
    assert turns[0]["grade"]["voice"]["recognizer"].startswith("PocketSphinx") and turns[1]["grade"]["voice"] is None
    report = Path(files[2]).read_text()  # the report to keep says which delivery was measured
    assert "Delivery: spoken (heard by PocketSphinx" in report and "Delivery: typed, estimated" in report


@pytest.mark.browser
def test_browser_answer_into_the_microphone_and_hear_the_panel(server: str, tmp_path):
    """Chromium's fake microphone plays an espeak-ng answer: Record, Stop, the transcript fills the box, Send.
    With "Speak the panel's questions" on, the page's player receives each question's clips."""
    from playwright.sync_api import expect

    from tests.test_voice import ANSWER, needs_espeak, speak_to_wav

    if needs_espeak.args[0]:
        pytest.skip("espeak-ng not installed")
    wav = speak_to_wav(ANSWER, tmp_path / "mic.wav")
    with open_page(server, height=1300, mic=wav) as page:
        page.context.grant_permissions(["microphone"])
        page.goto(server)
        expect(page.locator("#model-banner")).to_contain_text("SmolLM2 135M", timeout=30_000)
        page.locator("#voice").get_by_text("Voice: answer aloud").click()
        expect(page.locator("#voice-info")).to_contain_text("PocketSphinx")
        page.locator("#speak input").check()
        page.locator("#start").click()
        expect(page.locator("#timer")).to_contain_text("segment time", timeout=60_000)
        expect(page.locator("#send")).to_be_enabled(timeout=60_000)
        page.wait_for_function("() => window.coachSpeech && window.coachSpeech.played >= 1", timeout=30_000)
        page.locator("#voice-in button.record-button").click()
        page.wait_for_timeout(8000)  # the fake microphone loops the file; eight seconds of it
        page.locator("#voice-in").get_by_role("button", name="Stop", exact=True).first.click()
        expect(page.locator("#heard")).to_contain_text("Heard by PocketSphinx", timeout=60_000)
        assert len(page.locator("#answer textarea").input_value().split()) >= 8
        page.screenshot(path=str(ARTIFACTS / "ui-voice.png"), full_page=True)
        before = page.evaluate("() => window.coachSpeech.played")
        page.locator("#send").click()
        expect(page.locator("#panel-chat .message.user")).to_have_count(1, timeout=90_000)
        expect(page.locator("#send")).to_be_enabled(timeout=90_000)
        page.wait_for_function(f"() => window.coachSpeech.played > {before}", timeout=30_000)  # the next question
        expect(page.locator("#heard")).to_have_text("")
        # the second answer: a WAV uploaded through the same audio component
        page.locator("#voice-in").get_by_role("button", name="Upload file").click()
        page.locator("#voice-in input[type=file]").set_input_files(str(wav))
        expect(page.locator("#heard")).to_contain_text("Heard by PocketSphinx", timeout=60_000)
        assert len(page.locator("#answer textarea").input_value().split()) >= 15
        page.locator("#send").click()
        expect(page.locator("#panel-chat .message.user")).to_have_count(2, timeout=90_000)


@pytest.mark.browser
def test_browser_reload_mid_panel_and_resume_in_one_click(server: str):
    """The settings survive a reload; a panel in progress is offered back on the page ("Resume your PM loop
    (1 answer, 18:04)") and comes back in one click, no take-over asked, with its own scenario, seed, coach
    mode and Quick round, whatever the controls were set to meanwhile."""
    from playwright.sync_api import expect

    with open_page(server, height=900, width=1440) as page:
        page.goto(server)
        expect(page.locator("#seed input")).to_have_value("42", timeout=30_000)  # a fresh browser: the defaults
        page.wait_for_timeout(1500)
        expect(page.locator(".toast-body")).to_have_count(0)  # and no error on load
        expect(page.locator("#resume-offer")).not_to_be_visible()  # nothing of this browser's to resume
        page.locator("#scenario input").click()
        page.get_by_role("option", name="PM loop", exact=True).click()
        page.locator("#seed input").fill("17")
        page.locator("#seed input").press("Tab")
        page.locator("#coach-mode input").check()
        page.locator("#quick input").check()
        page.wait_for_timeout(1000)
        page.locator("#start").click()
        expect(page.locator("#send")).to_be_enabled(timeout=90_000)
        expect(page.locator("#timer")).to_contain_text("segment time", timeout=60_000)
        page.locator("#answer textarea").fill(GOOD)
        page.locator("#send").click()
        expect(page.locator("#coach-feedback")).to_contain_text("Your answer to question 1", timeout=90_000)
        expect(page.locator("#send")).to_be_enabled(timeout=90_000)
        page.reload()
        expect(page.locator("#seed input")).to_have_value("17", timeout=30_000)
        offer = page.locator("#resume-offer")
        expect(offer).to_contain_text(re.compile(r"Resume your PM loop \(1 answer, \d\d:\d\d\)"), timeout=30_000)
        settled(page)
        page.screenshot(path=str(ARTIFACTS / "ui-resume.png"))
        page.locator("#seed input").fill("99")  # meanwhile this browser's controls changed
        page.locator("#seed input").press("Tab")
        page.locator("#coach-mode input").uncheck()
        page.locator("#quick input").uncheck()
        offer.click()
        expect(page.locator("#panel-chat .message.user")).to_have_count(1, timeout=90_000)
        expect(page.locator("#send")).to_be_enabled(timeout=90_000)
        expect(page.locator("#seed input")).to_have_value("17")  # the session's own settings
        expect(page.locator("#coach-mode input")).to_be_checked()
        expect(page.locator("#quick input")).to_be_checked()
        expect(page.locator("#brief")).to_contain_text("Quick round")
        expect(page.locator("#status")).to_contain_text("after you pressed Resume")
        expect(page.locator(".toast-body")).to_have_count(0)  # no "open in another tab", no take-over asked
        for part in ("#panel-chat .message", "#timer", "#voice", "#answer textarea", "#send"):  # at 1440x900 too
            assert in_view(page, part, 900), part
        page.locator("#answer textarea").fill(GOOD)
        page.locator("#send").click()
        expect(page.locator("#coach-feedback")).to_contain_text("Your answer to question 2", timeout=90_000)


@pytest.mark.browser
def test_browser_history_retry_a_question(server: str):
    from playwright.sync_api import expect

    with open_page(server) as page:
        page.goto(server)
        page.get_by_role("tab", name="History").click()
        page.locator("#history-refresh").click()
        expect(page.locator("#history-table")).to_contain_text("PMM final panel · ", timeout=30_000)  # a name
        page.locator("#history-session input").click()
        page.get_by_role("option", name=re.compile(r"^PMM final panel · ")).first.click()
        page.locator("#retry-turn input").click()
        page.get_by_role("option", name=re.compile(r"^1\. ")).click()  # numbered from 1, as the debrief
        page.locator("#retry-answer textarea").fill(GOOD)
        page.locator("#retry").click()
        expect(page.locator("#retry-result")).to_contain_text("now", timeout=30_000)
        expect(page.locator("#history-table")).to_contain_text(re.compile(r"Q1 \d\.\d → \d\.\d"), timeout=30_000)
        settled(page)
        page.screenshot(path=str(ARTIFACTS / "ui-history.png"), full_page=True)
        page.locator("#show-debrief").click()  # opens the Debrief tab with that session's report
        expect(page.get_by_role("tab", name="Debrief")).to_have_attribute("aria-selected", "true", timeout=30_000)
        expect(page.locator("#debrief-details")).to_contain_text("Question by question", timeout=30_000)
        expect(page.locator("#debrief-details")).to_contain_text(re.compile(r"\d\.\d → \d\.\d"))  # before -> after
        expect(page.locator("#debrief")).to_contain_text("PMM final panel")


@pytest.mark.browser
def test_browser_plan_then_a_drill_in_practice_mode_with_a_hint_and_a_strong_answer(server: str):
    """The Plan tab lists the weak spots with their trend; its drill opens in the Panel tab in practice mode,
    where Hint names areas, not answers, and a strong answer shows only once something is drafted."""
    from gradio_client import Client
    from playwright.sync_api import expect

    c = Client(server, verbose=False)  # one weak answer stored, so the plan has something whatever ran before
    c.predict("TPM onsite", "smollm2-135m-instruct:Q4_1", 5, False, api_name="/start")
    c.predict("We would ask the team and see how it goes.", False, api_name="/answer")
    with open_page(server) as page:
        page.goto(server)
        page.get_by_role("tab", name="Plan").click()
        expect(page.locator("#plan-summary")).to_contain_text(re.compile(r"\d+ questions? to work on"), timeout=30_000)
        expect(page.locator("#plan-table")).to_contain_text(re.compile(r"\d\.\d\d"))
        expect(page.locator("#plan-criteria")).to_contain_text("Criteria, lowest first:")
        expect(page.locator("#plan-trend img")).to_be_visible(timeout=30_000)
        settled(page)
        page.screenshot(path=str(ARTIFACTS / "ui-plan.png"), full_page=True)
        expect(page.locator("#drill-practice input")).to_be_checked()
        page.locator("#drill").click()
        expect(page.get_by_role("tab", name="Panel")).to_have_attribute("aria-selected", "true", timeout=30_000)
        expect(page.locator("#brief")).to_contain_text("Drill · ", timeout=60_000)
        expect(page.locator("#send")).to_be_enabled(timeout=90_000)  # the first question is out
        expect(page.locator("#practice-row")).to_be_visible()
        page.locator("#hint").click()
        expect(page.locator("#practice-help")).to_contain_text("Hint: The panel listens for", timeout=30_000)
        page.locator("#strong-answer").click()
        expect(page.locator("#practice-help")).to_contain_text("Draft your own answer first", timeout=30_000)
        page.locator("#answer textarea").fill("I would size the problem first with a cost model, then ask the team.")
        page.locator("#hint").click()
        expect(page.locator("#practice-help")).to_contain_text("Your draft makes ", timeout=30_000)
        page.locator("#strong-answer").click()
        expect(page.locator("#practice-help")).to_contain_text("A strong answer:", timeout=30_000)
        settled(page)
        page.screenshot(path=str(ARTIFACTS / "ui-practice.png"))
        page.locator("#send").click()  # practice mode shows the score after the answer; the help is cleared
        expect(page.locator("#coach-feedback")).to_contain_text("Score", timeout=90_000)
        expect(page.locator("#practice-help")).to_have_text("", timeout=30_000)


@pytest.mark.browser
def test_browser_run_a_small_benchmark(server: str):
    """A ladder benchmark; a second one, from another tab, is refused while it runs; the bar moves."""
    from playwright.sync_api import expect

    with open_page(server, height=1100) as page:
        page.goto(server)
        page.get_by_role("tab", name="Benchmark").click()
        page.locator("#bench-ladder input").click()
        page.get_by_role("option", name="smollm2-135m-instruct:Q4_1", exact=True).click()
        page.locator("#bench-run").click()
        # the bar moves with the file being measured (its text counts the seconds)
        expect(page.locator("#bench-table").get_by_text(re.compile(r"measuring file 1 of 2: .* \(\d+ s\)"))
               ).to_be_visible(timeout=120_000)
        other = page.context.browser.new_page(viewport={"width": 1200, "height": 900})  # another tab
        other.goto(server)
        other.get_by_role("tab", name="Benchmark").click()
        other.locator("#bench-ladder input").click()
        other.get_by_role("option", name="smollm2-135m-instruct:Q4_1", exact=True).click()
        other.locator("#bench-run").click()
        expect(other.locator("#bench-recommendation")).to_contain_text("A benchmark is already running",
                                                                       timeout=30_000)
        other.close()
        expect(page.locator("#bench-recommendation")).to_contain_text("On this machine:", timeout=480_000)
        expect(page.locator("#bench-table")).to_contain_text("Q4_K_M")
        expect(page.locator("#bench-table")).to_contain_text("Q8_0")
        expect(page.locator("#bench-plot img")).to_be_visible()
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "ui-bench.png"), full_page=True)


def test_ctrl_c_on_the_server_mid_answer_exits_cleanly(tmp_path):
    """Ctrl-C on `coach ui` while an answer is being graded and the next panelist speaks: the server
    closes with exit 0, not an abort from torch or llama.cpp torn down under a worker thread."""
    import signal

    from gradio_client import Client

    log = tmp_path / "server.log"
    proc, url = launch_ui({**os.environ, "COACH_HOME": str(tmp_path)}, log, preexec_fn=sigint_default)
    c = Client(url, verbose=False)
    c.predict("PMM final panel", "smollm2-135m-instruct:Q4_1", 3, False, api_name="/start")
    c.submit(GOOD, False, api_name="/answer")
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(timeout=90)
    text = log.read_text()
    assert rc == 0 and "terminate called" not in text and "Fatal Python error" not in text, text[-2000:]
    # the persona cards were still warming: no stray thread trace, and no share-link advice for a local app
    assert "Exception in thread" not in text and "share=True" not in text, text[-2000:]
    with sqlite3.connect(tmp_path / "coach.db") as db:  # what was asked is saved
        assert db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] >= 1


def test_a_whole_session_runs_with_no_network_at_all(tmp_path):
    """Panel, grading and debrief in an empty network namespace: nothing can leave, and it still works."""
    if not shutil.which("unshare") or subprocess.run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("this machine cannot create a network namespace")
    env = {**os.environ, "COACH_HOME": str(tmp_path / "home")}
    answers = "".join(f"{GOOD}\n\n" for _ in range(30))
    r = subprocess.run(["unshare", "-n", COACH, "--seed", "2", "rehearse", "--scenario", "pmm_deep_dive"],
                       input=answers, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "== Debrief:" in r.stdout
    ping = subprocess.run(["unshare", "-n", "python3", "-c",
                           "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"], capture_output=True)
    assert ping.returncode != 0  # the namespace really has no network



def test_start_over_a_session_in_progress_asks_first_and_keeps_it(server: str):
    from gradio_client import Client

    c = Client(server, verbose=False)
    chat = c.predict("PM loop", "smollm2-135m-instruct:Q4_1", 5, False, api_name="/start")[0]
    c.predict(GOOD, False, api_name="/answer")
    warned = c.predict("PM loop", "smollm2-135m-instruct:Q4_1", 5, False, api_name="/start")
    assert "A session is in progress" in warned[1] and chat
    assert warned[0] == {"__type__": "update"}  # the transcript is left as it is: nothing replaced yet
    fresh = c.predict("PM loop", "smollm2-135m-instruct:Q4_1", 5, False, api_name="/start")
    assert len(fresh[0]) == 2 and "in progress" not in fresh[1]  # the second press starts a new panel
    assert fresh[1].startswith("<small>first words")  # the status line is the new question's wait
    rows = c.predict(api_name="/sessions")[0]["data"]
    # the first one is kept, with its answer, and marked as left on purpose
    assert sum(r[0].startswith("PM loop") and r[1:3] == ["abandoned", 1] for r in rows) >= 1
