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
    assert "first words" in status and "after you pressed Start" in status  # the wait as the candidate had it
    out = alice.predict(GOOD, True, api_name="/answer")
    assert [m["role"] for m in out[0]].count("user") == 1 and out[0][-1]["role"] == "assistant"
    rows = alice.predict(api_name="/sessions")[0]["data"]
    assert len(rows) == 1
    sid = rows[0][-1]
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


# ------------------------------------------------------------------ who is believed, and guessing

def call_from(source: str, url: str, api: str, headers: dict | None = None, data: list | None = None
              ) -> tuple[int, str]:
    """The UI's API by plain HTTP from a chosen local address: 127.0.0.2 stands in for another host."""
    import http.client

    port = urllib.parse.urlsplit(url).port

    def request(method: str, path: str, body: bytes | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    code, body = request("POST", f"/gradio_api/call/{api}", json.dumps({"data": data or []}).encode())
    if code != 200:
        return code, body
    return request("GET", f"/gradio_api/call/{api}/{json.loads(body)['event_id']}")


def sessions_of(home: Path, *owners: str) -> dict[str, str]:
    """One stored session per owner, made through the real store: owner -> session id."""
    from coach.store import Store

    st = Store.open_default(home)
    ids = {o: st.create_session("pm_loop", 1, "m", {}, owner=o) for o in owners}
    st.close()
    return ids


def test_the_sign_in_header_is_believed_only_from_a_trusted_proxy(embedded, tmp_path):
    """A client that reaches the port itself (from 127.0.0.2) and sends `X-User: alice` is refused with 403
    and logged; the same header from the trusted proxy's address (127.0.0.1 by default) signs alice in, and
    alice and bob each see only their own session. Naming the proxies moves the trust to them."""
    ids = sessions_of(tmp_path / "home", "alice", "bob")
    proc, url = launch(["--auth-header", "X-User"], tmp_path / "home", tmp_path / "ui.log")
    try:
        for who, other in (("alice", "bob"), ("bob", "alice")):
            code, body = call_from("127.0.0.1", url, "sessions", {"X-User": who})
            assert code == 200 and ids[who] in body and ids[other] not in body, body
        code, body = call_from("127.0.0.2", url, "sessions", {"X-User": "alice"})
        assert code == 403 and "trusted proxy" in body and ids["alice"] not in body
        code, body = call_from("127.0.0.2", url, "sessions", {"X-User": "alice", "X-Forwarded-For": "127.0.0.1"})
        assert code == 403, "a forwarded-for header must not make a peer a proxy"
        code, _ = call_from("127.0.0.2", url, "sessions")
        assert code == 401  # no header: not signed in, as before
        code, body = call_from("127.0.0.1", url, "resume", {"X-User": "bob"}, [ids["alice"], True, False])
        assert code == 200 and f"no session '{ids['alice']}'" in body  # bob cannot open alice's by id
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = (tmp_path / "ui.log").read_text()
    assert "refused the X-User header from 127.0.0.2: not a trusted proxy" in log
    assert log.count("refused the X-User header") == 1  # one line a minute per peer, not one per request

    proc, url = launch(["--auth-header", "X-User", "--trusted-proxy", "127.0.0.2", "--trusted-proxy",
                        "10.0.0.0/8,192.168.1.5"], tmp_path / "home", tmp_path / "ui2.log")
    try:
        code, body = call_from("127.0.0.2", url, "sessions", {"X-User": "alice"})
        assert code == 200 and ids["alice"] in body and ids["bob"] not in body
        code, _ = call_from("127.0.0.1", url, "sessions", {"X-User": "alice"})
        assert code == 403  # the default is replaced, not added to
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_header_sign_in_beyond_loopback_must_name_its_proxies(tmp_path):
    from coach.auth import launch_auth
    from coach.config import Settings

    env = {**os.environ, "COACH_HOME": str(tmp_path)}
    r = subprocess.run([COACH, "ui", "--host", "0.0.0.0", "--auth-header", "X-User", "--port", str(free_port())],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 7 and r.stderr.count("\n") == 1 and "--trusted-proxy ADDR" in r.stderr, r.stderr
    r = subprocess.run([COACH, "ui", "--host", "0.0.0.0", "--auth-header", "X-User", "--trusted-proxy", "proxy.lan"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 7 and "'proxy.lan' is not an address or a network" in r.stderr, r.stderr
    named = launch_auth(Settings(host="0.0.0.0", auth_header="X-User", trusted_proxies=("10.1.2.3",)))
    assert callable(named["auth_dependency"]) and named["ssr_mode"] is False


def test_password_guessing_is_throttled_and_the_right_password_works_after_the_lock(tmp_path):
    """200 wrong passwords for alice from one address: after the first few each try waits longer, then the
    name is locked for minutes; the password is not even checked while it waits. When the lock ends the
    right password signs in (no lock-out for ever). The clock is stepped, not slept on."""
    import asyncio

    from fastapi import HTTPException

    from coach.auth import PasswordCheck, Throttle, hash_password, write_users

    write_users(tmp_path / "users.txt", {"alice": hash_password(USERS["alice"]), "bob": hash_password(USERS["bob"])})
    now = [1000.0]
    throttle = Throttle(clock=lambda: now[0])
    check = PasswordCheck(tmp_path / "users.txt", throttle=throttle)

    async def attempt(name: str, password: str, client: str = "10.0.0.9") -> bool | int:
        try:
            return await check(name, password, client)
        except HTTPException as exc:
            assert exc.status_code == 429 and "try again in" in exc.detail
            return exc.status_code

    async def guessing() -> None:
        checked, waits = 0, []
        for i in range(200):
            r = await attempt("alice", f"guess-{i}")
            if r is not False:  # refused without a look at the password
                waits.append(throttle.wait("user:alice"))
                now[0] += min(throttle.wait("user:alice"), 30.0)  # the guesser waits, at most 30 s a try
            else:
                checked += 1
        assert checked < 40, checked  # far fewer than 200 were even compared
        assert max(waits) > 10 * 60  # locked for minutes at the end
        assert await attempt("alice", USERS["alice"]) == 429  # the right one waits too while locked
        assert await attempt("bob", USERS["bob"], "10.0.0.7") is True  # others are not locked out
        now[0] += Throttle.LOCK_S + 1
        assert await attempt("alice", USERS["alice"]) is True  # the lock ended: the right password works
        assert throttle.failures("user:alice") == 0
        # spraying one password over many names from one address is throttled by the address
        refused = [await attempt(f"user{i}", "Winter2024!", "10.0.0.66") for i in range(60)]
        assert refused.count(429) > 30
        assert await attempt("bob", USERS["bob"], "10.0.0.8") is True  # from elsewhere, bob still signs in

    asyncio.run(guessing())


def test_wrong_passwords_over_http_get_429_and_the_page_stays_up(embedded, tmp_path):
    """The throttle through the real server: 200 wrong passwords by HTTP, most answered 429 with
    Retry-After without checking the password, and the right password is refused while alice's name
    waits (the lock's end is the stepped-clock test above)."""
    users = tmp_path / "users.txt"
    add_users(users)
    proc, url = launch(["--users", str(users)], tmp_path / "home", tmp_path / "ui.log")
    try:
        codes = []
        for i in range(200):
            req = urllib.request.Request(url + "login", method="POST",
                                         data=urllib.parse.urlencode({"username": "alice",
                                                                      "password": f"guess-{i}"}).encode())
            try:
                urllib.request.urlopen(req, timeout=30)
                codes.append(200)
            except urllib.error.HTTPError as exc:
                codes.append(exc.code)
                if exc.code == 429:
                    assert int(exc.headers["Retry-After"]) >= 1
        assert codes[:3] == [400] * 3 and codes.count(400) <= 10 and codes.count(429) >= 190, codes
        assert login_cookie(url, "alice", USERS["alice"]) is None  # still waiting
        assert "failed sign-in as 'alice' from 127.0.0.1" in (tmp_path / "ui.log").read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
