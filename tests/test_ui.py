"""The UI through its API (gradio_client) and in a real browser (Playwright driving Debian's chromium)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from tests.conftest import COACH, REPO, chromium_path, free_port

ARTIFACTS = REPO / "artifacts"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "COACH_HOME": str(tmp_path_factory.mktemp("uihome"))}
    t0 = time.perf_counter()
    proc = subprocess.Popen([COACH, "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"coach ui exited: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.25)
    else:
        proc.kill()
        pytest.fail("coach ui did not answer within 60 s")
    print(f"page up after {time.perf_counter() - t0:.1f} s")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def test_binds_to_loopback_only(server: str):
    assert urlparse(server).hostname == "127.0.0.1"


def test_chat_api_streams_a_reply(server: str):
    from gradio_client import Client

    client = Client(server, verbose=False)
    reply = client.predict("Ask me one interview question.", api_name="/chat")
    assert isinstance(reply, str) and reply.strip()


def test_chat_api_refuses_an_empty_message(server: str):
    from gradio_client import Client

    reply = Client(server, verbose=False).predict("   ", api_name="/chat")
    assert reply == "Type a message first."


@pytest.mark.browser
def test_browser_chat_journey_stays_on_this_machine(server: str):
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium not installed")
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    hosts: set[str] = set()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.on("request", lambda r: hosts.add(urlparse(r.url).hostname or r.url.split(":")[0]))
        page.goto(server)
        expect(page.locator("#model-banner")).to_contain_text("SmolLM2 135M", timeout=30_000)
        expect(page.locator("#model-banner")).to_contain_text("coach models pull mistral")
        box = page.locator("#chat-input textarea")
        box.fill("Ask me a hard question about pricing.")
        box.press("Enter")
        bot = page.locator("#chatbot .bot, #chatbot [data-testid='bot']").last
        expect(bot).not_to_be_empty(timeout=60_000)
        page.wait_for_timeout(5000)  # let the stream finish before the picture
        page.screenshot(path=str(ARTIFACTS / "ui-chat.png"), full_page=True)
        browser.close()
    assert hosts - {"127.0.0.1", "data", "blob"} == set(), f"requests left the machine: {hosts}"
