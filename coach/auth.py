"""Who may use a shared coach, and whose sessions are whose.

On a laptop the coach binds to 127.0.0.1 and nobody signs in: every session belongs to the local user
(owner ""). A coach that listens beyond loopback refuses to start unless one of two doors is set:

- a users file (`coach users add FILE NAME`): one `name:scrypt$n$r$p$salt$hash` line per user; the
  UI shows Gradio's sign-in page and checks the password against the hash;
- a header set by a reverse proxy that has already signed the user in (`--auth-header X-Forwarded-User`,
  as oauth2-proxy, Authelia or nginx's auth_request set it). Requests without the header are refused. The
  coach trusts the header, so only the proxy may reach its port.

Either way the signed-in name is the owner stored on every session, and every read of a session by id
checks it (a session that is not yours reads as one that does not exist).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coach.config import Settings
from coach.errors import ConfigError
from coach.textfiles import read_text

N, R, P = 2**14, 8, 1  # scrypt cost: about 50 ms a check, 16 MiB
NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
USERS_MAX_BYTES = 4 * 2**20  # about 30,000 users at 140 bytes a line
LOCAL = ""  # the owner of every session on a single-user coach


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(base64.b64decode(digest)))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


def read_users(path: Path) -> dict[str, str]:
    """name -> hash. A missing, unreadable or malformed file is a ConfigError naming the line."""
    if not os.path.lexists(path):
        raise ConfigError(f"no users file at {path}; create it with `coach users add {path} NAME`")
    text = read_text(path, "users file", limit=USERS_MAX_BYTES)
    users: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not NAME.match(name) or not stored.startswith("scrypt$") or stored.count("$") != 5:
            raise ConfigError(f"{path} line {i} is not `name:scrypt$...`; recreate it with `coach users add`")
        users[name] = stored
    return users


def write_users(path: Path, users: dict[str, str]) -> None:
    """Written whole to a temporary file and renamed over the old one, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# coach users: name:scrypt hash (coach users add FILE NAME)\n")
        f.writelines(f"{n}:{h}\n" for n, h in sorted(users.items()))
    os.replace(tmp, path)


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise ConfigError(f"user name {name!r}: use 1-64 letters, digits or . _ @ + -")
    return name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def launch_auth(settings: Settings) -> dict[str, Any]:
    """The `launch()` arguments for the settings' sign-in; refuses an exposed coach without one."""
    if settings.users_file and settings.auth_header:
        raise ConfigError("pass either --users or --auth-header, not both")
    if settings.users_file:
        users = read_users(settings.users_file)
        if not users:
            raise ConfigError(f"the users file {settings.users_file} has no users; `coach users add` one")
        path = settings.users_file

        def check(name: str, password: str) -> bool:  # read each time: a user added later can sign in
            try:
                stored = read_users(path).get(name)
            except ConfigError:
                return False
            return stored is not None and verify(password, stored)

        return {"auth": check, "auth_message": "Sign in with the name and password your coach gave you."}
    if settings.auth_header:
        return {"auth_dependency": header_user(settings.auth_header)}
    if not is_loopback(settings.host):
        raise ConfigError(f"--host {settings.host} would let anyone on the network use this coach and read every "
                          "session; add sign-in (--users FILE, see `coach users add`, or --auth-header NAME behind "
                          "a signing-in proxy), or keep the default 127.0.0.1")
    return {}


def header_user(header: str) -> Callable[[Any], str | None]:
    def user(request: Any) -> str | None:
        value = (request.headers.get(header) or "").strip()
        return value if value and NAME.match(value) else None

    return user


def owner_of(request: Any) -> str:
    """The signed-in user of a Gradio request; LOCAL on a coach without sign-in."""
    name = getattr(request, "username", None) if request is not None else None
    return str(name) if name else LOCAL
