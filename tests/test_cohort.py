"""A shared coach: `coach ui --backend URL` in front of a real model server, with sign-in. One user never
reads or resumes another's session, through the UI's API or by plain HTTP; an exposed coach without
sign-in refuses to start; local use stays as it was."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import COACH, free_port
from tests.test_remote import start_server
from tests.test_ui import GOOD, launch_ui

USERS = {"alice": "alice-password-1", "bob": "bob-password-22"}


def add_users(path: Path) -> None:
    for name, pw in USERS.items():
        r = subprocess.run([COACH, "users", "add", str(path), name, "--password-stdin"], input=pw + "\n",
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and f"added {name}" in r.stdout, r.stderr


def launch(args: list[str], home: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    return launch_ui({**os.environ, "COACH_HOME": str(home)}, log, *args, wait_s=120)


@pytest.fixture(scope="module")
def cohort(embedded, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("cohort")
    add_users(root / "users.txt")
    with start_server(embedded.path, root) as model:
        proc, url = launch(["--backend", model.url, "--users", str(root / "users.txt")], root / "home",
                           root / "ui.log")
        yield url, root
        proc.terminate()
        proc.wait(timeout=30)


def client(url: str, who: str):
    from gradio_client import Client

    return Client(url, auth=(who, USERS[who]), verbose=False)


def login_cookie(url: str, who: str, password: str) -> str | None:
    body = urllib.parse.urlencode({"username": who, "password": password}).encode()
    req = urllib.request.Request(url + "login", data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return "; ".join(c.split(";")[0] for c in r.headers.get_all("set-cookie") or [])
    except urllib.error.HTTPError:
        return None


def call(url: str, api: str, data: list, cookie: str | None = None, headers: dict | None = None) -> tuple[int, str]:
    """The UI's API by plain HTTP, as any script could call it: POST the inputs, then read the result events."""
    h = {"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {}), **(headers or {})}
    req = urllib.request.Request(f"{url}gradio_api/call/{api}", data=json.dumps({"data": data}).encode(), headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            event = json.loads(r.read())["event_id"]
        with urllib.request.urlopen(urllib.request.Request(f"{url}gradio_api/call/{api}/{event}", headers=h),
                                    timeout=300) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_an_exposed_coach_without_sign_in_refuses_to_start(tmp_path):
    t0 = time.perf_counter()
    r = subprocess.run([COACH, "ui", "--host", "0.0.0.0", "--port", str(free_port())], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COACH_HOME": str(tmp_path)})
    assert r.returncode == 7 and "--host 0.0.0.0 would let anyone on the network" in r.stderr
    assert "--users FILE" in r.stderr and time.perf_counter() - t0 < 60  # said before any model loads
    bad = tmp_path / "users.txt"
    bad.write_text("alice:plaintext\n")
    r = subprocess.run([COACH, "ui", "--host", "0.0.0.0", "--users", str(bad)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COACH_HOME": str(tmp_path)})
    assert r.returncode == 7 and "line 1 is not" in r.stderr


def test_users_file_add_list_remove(tmp_path):
    path = tmp_path / "u" / "users.txt"
    add_users(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert "bob-password" not in path.read_text()  # hashed, never stored as typed
    r = subprocess.run([COACH, "users", "list", str(path)], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["alice", "bob"]
    r = subprocess.run([COACH, "users", "add", str(path), "carol", "--password-stdin"], input="short\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 7 and "8 characters" in r.stderr
    r = subprocess.run([COACH, "users", "rm", str(path), "alice"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    from coach.auth import read_users, verify

    users = read_users(path)
    assert list(users) == ["bob"] and verify(USERS["bob"], users["bob"]) and not verify("nope", users["bob"])


def test_each_user_sees_only_their_own_sessions(cohort):
    from gradio_client.exceptions import AppError

    url, _ = cohort
    alice, bob = client(url, "alice"), client(url, "bob")
    chat, status, coach, banner = alice.predict("PMM final panel", "", 3, True, api_name="/start")[:4]
    assert "on the OpenAI-compatible server at http://127.0.0.1:" in banner and chat
    assert "first word after" in status and "this model server does not report its cache" in status
    out = alice.predict(GOOD, True, api_name="/answer")
    assert [m["role"] for m in out[0]] == ["assistant", "user", "assistant"]
    rows = alice.predict(api_name="/sessions")[0]["data"]
    assert len(rows) == 1
    sid = rows[0][0]
    assert bob.predict(api_name="/sessions")[0]["data"] == []  # nothing of alice's in bob's history
    refused = bob.predict(sid, True, api_name="/resume")  # even taking over: to bob it does not exist
    assert f"no session {sid!r}" in refused[1] and refused[0] == []
    assert "no session" in bob.predict(sid, 0, "We need better messaging.", api_name="/retry")
    with pytest.raises(AppError, match="no session"):
        bob.predict(sid, api_name="/session_debrief")
    with pytest.raises(AppError, match="off for signed-in users"):
        bob.predict(str(Path(__file__)), "", api_name="/models_add")
    assert alice.predict(sid, api_name="/session_debrief")[0].startswith("## Incomplete")  # alice's own: fine

    # and by plain HTTP: nothing without signing in; bob's sign-in does not open alice's session
    code, _ = call(url, "sessions", [])
    assert code == 401
    assert login_cookie(url, "bob", "wrong password") is None
    cookie = login_cookie(url, "bob", USERS["bob"])
    assert cookie
    code, body = call(url, "resume", [sid, True, False], cookie)
    assert code == 200 and f"no session '{sid}'" in body and GOOD[:40] not in body
    code, body = call(url, "session_debrief", [sid], cookie)
    assert "no session" in body and "Incomplete" not in body
    code, body = call(url, "sessions", [], call_cookie := login_cookie(url, "alice", USERS["alice"]))
    assert code == 200 and sid in body and call_cookie


def test_a_signing_in_proxy_header_and_plain_local_use(embedded, tmp_path):
    from gradio_client import Client

    proc, url = launch(["--auth-header", "X-Forwarded-User"], tmp_path / "home", tmp_path / "ui.log")
    try:
        code, _ = call(url, "sessions", [])
        assert code == 401  # no header: not signed in
        code, body = call(url, "sessions", [], headers={"X-Forwarded-User": "dana"})
        assert code == 200 and "data" in body
        c = Client(url, headers={"X-Forwarded-User": "dana"}, verbose=False)
        c.predict("PMM final panel", "", 3, False, api_name="/start")
        c.predict(GOOD, False, api_name="/answer")
        assert len(c.predict(api_name="/sessions")[0]["data"]) == 1
        other = Client(url, headers={"X-Forwarded-User": "erin"}, verbose=False)
        assert other.predict(api_name="/sessions")[0]["data"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the same data folder on a laptop, no sign-in: the local user's sessions (none), not dana's
    proc, url = launch([], tmp_path / "home", tmp_path / "ui2.log")
    try:
        assert Client(url, verbose=False).predict(api_name="/sessions")[0]["data"] == []
    finally:
        proc.terminate()
        proc.wait(timeout=30)
