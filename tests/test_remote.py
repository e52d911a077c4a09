"""`RemoteBackend` against a real model server (llama-cpp-python's `llama_cpp.server`, and llama.cpp's own
`llama-server` when one is installed): a whole panel, a dropped stream, a silent server, a server that is
down, and a resume; the layout it sends, for Mistral's real templates."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import COACH, free_port
from tests.test_session import STRONG, WEAK, scripted


def start_server(gguf: Path, tmp: Path, kind: str = "llama-cpp-python"):
    from coach.engine.serve import ModelServer, server_command

    port = free_port()
    log = (tmp / f"{kind}.log").open("wb")
    return ModelServer(server_command(gguf, port=port, n_ctx=4096, slots=4, gpu_layers=0, threads=2, kind=kind),
                       port, log=log)


@pytest.fixture(scope="module")
def model_server(embedded, tmp_path_factory) -> Iterator[str]:
    with start_server(embedded.path, tmp_path_factory.mktemp("model-server")) as srv:
        yield srv.url


class CuttingProxy:
    """A TCP proxy in front of the model server that can cut the next streamed answer after a few events."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.cut_after: int | None = None  # SSE events to pass before closing the connection
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        events = 0
        try:
            while data := src.recv(4096):
                if answers and self.cut_after is not None and b"data:" in data:
                    events += data.count(b"data:")
                    if events > self.cut_after:
                        self.cut_after = None
                        break  # mid-stream: the rest never arrives
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_a_whole_panel_session_through_the_server(model_server, grader, tmp_path):
    from coach.engine.remote import RemoteBackend
    from coach.store import Store

    be = RemoteBackend(model_server)
    assert be.kind == "OpenAI-compatible" and be.mode == "first_user"
    assert not be.reads_ahead and be.prefill("x", [{"role": "user", "content": "hi"}]) == 0  # one sequence only
    store = Store(tmp_path / "s.db")
    iv, path = scripted(be, grader, store, 11, [STRONG, WEAK])
    turns = store.turns(iv.session_id)
    assert turns[-1]["kind"] == "close" and store.session(iv.session_id)["status"] == "finished"
    assert {p for _, p, _ in path} == {"researcher", "gtm", "pm"} and len(path) >= 9
    assert all(t["grade"] for t in turns if t["kind"] != "close" and t["question_id"])
    # the server's own words: timed and marked as remote; this server does not say what it reused
    timed = [json.loads(t["timings"]) if isinstance(t["timings"], str) else t["timings"] for t in turns]
    spoken = [t for t in timed if t]
    assert spoken and all(t["remote"] and not t["cache_reported"] and t["generated_tokens"] > 0 for t in spoken)
    assert iv.debrief().decision in ("Offer", "No offer")


def test_a_dropped_stream_loses_nothing_and_the_turn_is_asked_again(model_server, grader, tmp_path):
    from coach.engine.remote import RemoteBackend
    from coach.errors import ServerUnavailable
    from coach.interview.session import Interview
    from coach.store import Store

    proxy = CuttingProxy(int(model_server.rsplit(":", 1)[1]))
    be = RemoteBackend(proxy.url)
    store = Store(tmp_path / "s.db")
    iv = Interview.start("pmm_final_panel", backend=be, grader=grader, store=store, seed=5, max_tokens=40)
    first = "".join(iv.ask())
    iv.answer(STRONG, spent_s=60)
    threads = {k: list(v) for k, v in iv.threads.items()}
    proxy.cut_after = 3
    shown = ""
    with pytest.raises(ServerUnavailable, match="dropped the connection|ended the stream") as err:
        for chunk in iv.ask():
            shown += chunk
    assert "\n" not in str(err.value) and str(proxy.url.rsplit(":", 1)[0]) in str(err.value)
    assert iv.current is None and iv.threads == threads  # nothing of the cut turn was kept
    assert [t["answer"] is not None for t in store.turns(iv.session_id)] == [True]  # the answer is stored
    again = "".join(iv.ask())  # asked again, whole
    assert again.strip() and iv.current is not None and len(store.turns(iv.session_id)) == 2
    iv.release()
    back = Interview.resume(iv.session_id, backend=RemoteBackend(model_server), grader=grader, store=store)
    assert back.current is not None and back.current.text == again.strip()
    assert "".join(back.ask()).strip() == again.strip()  # the open question, as stored
    assert back.answer(WEAK, spent_s=30) is not None
    assert first.strip() == store.turns(iv.session_id)[0]["spoken"]


def test_a_silent_server_times_out_in_one_line(tmp_path):
    from coach.engine.remote import RemoteBackend
    from coach.errors import ServerUnavailable

    hang = threading.Event()
    keys: list[str | None] = []

    class Silent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            keys.append(self.headers.get("Authorization"))
            body = json.dumps({"data": [{"id": "silent"}]}).encode() if self.path == "/v1/models" else b"{}"
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            hang.wait(10)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        be = RemoteBackend(f"http://127.0.0.1:{srv.server_port}", timeout_s=1, api_key="k-123")
        assert keys and set(keys) == {"Bearer k-123"}  # a server started with --api-key
        with pytest.raises(ServerUnavailable, match="sent nothing for 1 s"):
            list(be.stream("x", [{"role": "user", "content": "hello"}]))
        assert be.timings is not None and be.timings.finish_reason == "interrupted"
    finally:
        hang.set()
        srv.shutdown()


def test_a_server_that_is_down_is_one_line_before_anything_loads(tmp_path):
    from coach.engine.remote import RemoteBackend
    from coach.errors import ServerUnavailable

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnavailable, match="no model server answers at"):
        RemoteBackend(url)
    r = subprocess.run([COACH, "chat", "--backend", url, "--prompt", "hi"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COACH_HOME": str(tmp_path)})
    assert r.returncode == 10, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "no model server answers" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([COACH, "--backend", "localhost:8080", "doctor"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 7 and "is not a server address" in r.stderr


def test_the_layout_sent_is_the_one_the_servers_template_keeps_stable():
    from coach.engine.remote import probe_mode
    from coach.models.formats import FORMATS
    from tests.test_formats import EXPECTED_LAYOUT

    props = {"bos_token": "<s>", "eos_token": "</s>"}
    # a server renders with the file's own template: one that refuses a system role gets it in the first user
    # turn (locally, a Mistral file is rendered by mistral-common's rules instead, hence EXPECTED_LAYOUT there)
    server = {**EXPECTED_LAYOUT, "wild-no-system": "first_user", "wild-strict": "first_user"}
    assert {name: probe_mode(t, props) for name, t in FORMATS.items()} == server
    chatml = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
              "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    assert probe_mode(chatml, props) == "system"
    assert probe_mode("{{ messages[0]['content'] | no_such_filter }}", props) == "first_user"  # unrenderable


def test_two_threads_streaming_at_once_each_read_their_own_timings(model_server):
    from coach.engine.remote import RemoteBackend

    be = RemoteBackend(model_server)
    got: dict[str, object] = {}

    def turn(name: str, n: int) -> None:
        list(be.stream(name, [{"role": "user", "content": f"Count to {n}."}], max_tokens=n, temperature=0))
        got[name] = be.timings

    threads = [threading.Thread(target=turn, args=(f"s{n}", n)) for n in (5, 17)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got["s5"].speaker == "s5" and got["s17"].speaker == "s17"  # type: ignore[attr-defined]
    assert got["s5"].generated_tokens <= 5 and got["s17"].generated_tokens <= 17  # type: ignore[attr-defined]


LLAMA_SERVER = os.environ.get("COACH_LLAMA_SERVER") or shutil.which("llama-server") or \
    Path(sys.executable).with_name("llama-server").exists()


@pytest.mark.skipif(not LLAMA_SERVER, reason="llama.cpp's llama-server is not installed (docs/cohort.md)")
def test_llama_server_pins_each_speaker_to_a_slot_and_reports_its_cache(embedded, grader, tmp_path):
    from coach.engine.remote import RemoteBackend
    from coach.store import Store

    with start_server(embedded.path, tmp_path, kind="llama-server") as srv:
        be = RemoteBackend(srv.url)
        assert be.kind == "llama.cpp" and be.n_slots == 4 and be.mode in ("system", "first_user")
        store = Store(tmp_path / "s.db")
        iv, path = scripted(be, grader, store, 3, [STRONG, WEAK])
        timed = [t["timings"] for t in store.turns(iv.session_id) if t["timings"]]
        timed = [json.loads(t) if isinstance(t, str) else t for t in timed]
        # every turn reports what the server reused, also one the wording checks ended early (timings per token)
        assert len(timed) >= 9 and all(t["cache_reported"] for t in timed), timed
        later = timed[3:]  # every panelist has spoken: each later turn reuses its own prefix
        reuse = sum(t["cached_tokens"] for t in later) / sum(t["prompt_tokens"] for t in later)
        print(f"llama-server: {reuse:.0%} of later prompt tokens came from the cache")
        assert reuse > 0.5


@pytest.mark.skipif(not LLAMA_SERVER, reason="llama.cpp's llama-server is not installed (docs/cohort.md)")
def test_llama_server_reads_the_answer_ahead_so_send_reads_only_the_rest(embedded, tmp_path):
    from coach.engine.remote import RemoteBackend

    card = {"role": "system", "content": "You are Dr. Lin, a senior researcher on an interview panel. " * 8}
    draft = "I would reproduce what the customer measured first: the hardware, the prompt lengths, " * 3
    with start_server(embedded.path, tmp_path, kind="llama-server") as srv:
        be = RemoteBackend(srv.url)
        assert be.reads_ahead
        n = be.prefill("s/researcher", [card, {"role": "user", "content": draft}])
        assert n > 100  # the card and the answer so far, read while typing
        assert be.prefill("s/researcher", [card, {"role": "user", "content": draft}]) == 0  # nothing new
        final = [card, {"role": "user", "content": draft + "and then fix any overclaim.\n\nYour turn: ask."}]
        list(be.stream("s/researcher", final, max_tokens=8, temperature=0))
        t = be.timings
        assert t is not None and t.cache_reported and t.prompt_eval_tokens < 40 < t.cached_tokens, t


def _mistral_fixture(tmp: Path, fmt: str) -> Path:
    from coach.models.shapes import Shape, write_shape
    from tests.test_formats import FIXTURES, TINY

    return write_shape(tmp / f"{fmt}.gguf", Shape(**TINY, tokenizer=FIXTURES[fmt]), "F16", chat_format=fmt)  # type: ignore[arg-type]


THREAD = [{"role": "system", "content": "You are Dr. Lin, a senior researcher on the panel. Ask one hard question."},
          {"role": "user", "content": "The candidate has just walked in. Your turn: ask."}]


@pytest.mark.parametrize("fmt", ["mistral-strict", "mistral-v3", "mistral-v3-tekken", "mistral-v7"])
def test_mistral_formats_through_llama_cpp_python_server(fmt, tmp_path):
    """Mistral's real templates on the server side: the strict one refuses a system role, v0.3 and Nemo move
    it; the layout sent keeps every turn a prefix of the next, so no template raises and the thread grows."""
    from coach.engine.remote import RemoteBackend

    with start_server(_mistral_fixture(tmp_path, fmt), tmp_path) as srv:
        be = RemoteBackend(srv.url)
        thread = list(THREAD)
        for turn in range(3):
            text = "".join(be.stream("researcher", thread, max_tokens=6, temperature=0))
            assert be.timings is not None and be.timings.finish_reason in ("stop", "length"), (fmt, turn)
            thread += [{"role": "assistant", "content": text or "..."},
                       {"role": "user", "content": f"Answer {turn}: I would measure first. Your turn: follow up."}]
    log = (tmp_path / "llama-cpp-python.log").read_text(errors="replace")
    hits = [int(n) for n in __import__("re").findall(r"(\d+) prefix-match hit", log)]
    assert len(hits) >= 2 and hits[-1] > hits[0] > 20, (fmt, hits)  # each turn reuses the one before it


@pytest.mark.skipif(not LLAMA_SERVER, reason="llama.cpp's llama-server is not installed (docs/cohort.md)")
@pytest.mark.parametrize("fmt", ["mistral-strict", "mistral-v3", "mistral-v7"])
def test_mistral_formats_through_llama_server_keep_the_cache(fmt, tmp_path):
    from coach.engine.remote import RemoteBackend
    from tests.test_formats import EXPECTED_LAYOUT

    with start_server(_mistral_fixture(tmp_path, fmt), tmp_path, kind="llama-server") as srv:
        be = RemoteBackend(srv.url)
        assert be.mode == EXPECTED_LAYOUT[fmt]  # probed from the template llama-server serves (/props)
        thread = list(THREAD)
        seen = []  # (prompt tokens, cached tokens) per turn
        for turn in range(3):
            text = "".join(be.stream("researcher", thread, max_tokens=6, temperature=0))
            t = be.timings
            assert t is not None and t.cache_reported
            seen.append((t.prompt_tokens, t.cached_tokens))
            thread += [{"role": "assistant", "content": text or "..."},
                       {"role": "user", "content": f"Answer {turn}: I would measure first. Your turn: follow up."}]
        # every later turn finds the whole earlier prompt in the cache: the thread only grew at its end
        assert all(cached >= prev - 1 for (prev, _), (_, cached) in zip(seen, seen[1:], strict=False)), (fmt, seen)
