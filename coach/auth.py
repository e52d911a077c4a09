"""Who may use a shared coach, and whose sessions are whose.

On a laptop the coach binds to 127.0.0.1 and nobody signs in: every session belongs to the local user
(owner ""). A coach that listens beyond loopback refuses to start unless one of two doors is set:

- a users file (`coach users add FILE NAME`): one `name:scrypt$n$r$p$salt$hash` line per user; the
  UI shows Gradio's sign-in page and checks the password against the hash. Failed sign-ins are throttled
  per user and per address (`Throttle`): a growing wait, then a lock of minutes, never for ever;
- a header set by a reverse proxy that has already signed the user in (`--auth-header X-Forwarded-User`,
  as oauth2-proxy, Authelia or nginx's auth_request set it). Requests without the header are refused. The
  header is taken only from a trusted proxy's address (`--trusted-proxy`, 127.0.0.1 and ::1 by default);
  from any other peer it is refused with 403 and logged, so a client that reaches the port directly
  cannot name itself anyone. An exposed coach (`--host` beyond loopback) must name its proxies.

The peer is the socket's own address: uvicorn's rewriting of it from X-Forwarded-For is switched off
(`launch` in coach/ui/demo.py), and X-Forwarded-For is read here, from trusted proxies only, for the
per-address throttle.

Either way the signed-in name is the owner stored on every session, and every read of a session by id
checks it (a session that is not yours reads as one that does not exist).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import hmac
import ipaddress
import logging
import math
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coach.config import Settings
from coach.errors import ConfigError
from coach.textfiles import read_text

N, R, P = 2**14, 8, 1  # scrypt cost: about 50 ms a check, 16 MiB
NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,64}$")
USERS_MAX_BYTES = 4 * 2**20  # about 30,000 users at 140 bytes a line
LOCAL = ""  # the owner of every session on a single-user coach
DEFAULT_PROXIES = ("127.0.0.1", "::1")  # a proxy on this machine; other 127.x addresses are not trusted
log = logging.getLogger("coach.auth")


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


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(values: Iterable[str] | None) -> tuple[Network, ...]:
    """--trusted-proxy values (addresses or CIDR networks, comma-separated or repeated) as networks."""
    nets = []
    for raw in values if values is not None else DEFAULT_PROXIES:
        for item in (x.strip() for x in raw.split(",")):
            if not item:
                continue
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"--trusted-proxy {item!r} is not an address or a network; use e.g. 10.0.0.5 "
                                  "or 10.0.0.0/24 (COACH_TRUSTED_PROXIES)") from None
    return tuple(nets)


class Peers:
    """Which connecting addresses are trusted proxies, and who the client behind one is."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)

    def trusted(self, host: str | None) -> bool:
        try:
            ip = ipaddress.ip_address((host or "").split("%")[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        """The address to throttle: the peer, or behind trusted proxies the nearest hop they did not add."""
        if not self.trusted(peer) or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


_CLIENT: contextvars.ContextVar[str] = contextvars.ContextVar("coach_client", default="")


class ClientAddress:
    """ASGI middleware: remembers the client's address for the request (Gradio hands the password check
    only a name and a password)."""

    def __init__(self, app: Any, peers: Peers) -> None:
        self.app, self.peers = app, peers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            peer = (scope.get("client") or ("", 0))[0] or ""
            xff = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"), None)
            _CLIENT.set(self.peers.client(peer, xff))
        await self.app(scope, receive, send)


@dataclass
class _Record:
    failures: int = 0
    until: float = 0.0  # no attempt before this time
    last: float = 0.0


class Throttle:
    """Failed sign-ins counted per key (a user, an address): the first FREE cost nothing; after them each
    failure makes the next attempt wait twice as long (1 s, 2 s, 4 s ... at most MAX_WAIT_S); from
    LOCK_AFTER on, each failure locks the key for LOCK_S. Attempts while a key waits are refused without
    looking at the password, and do not count. Nothing is for ever: a lock ends, a right password then
    clears its user's count, and a key with no failure for FORGET_S after its wait is forgotten.

    `clock` is injectable (tests step it instead of sleeping)."""

    FREE, MAX_WAIT_S, LOCK_AFTER, LOCK_S, FORGET_S = 3, 60.0, 20, 15 * 60.0, 60 * 60.0
    MAX_KEYS = 10_000  # names and addresses tried: kept bounded against a flood of made-up ones

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._keys: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    def delay(self, failures: int) -> float:
        if failures >= self.LOCK_AFTER:
            return self.LOCK_S
        if failures <= self.FREE:
            return 0.0
        return min(self.MAX_WAIT_S, 2.0 ** (failures - self.FREE - 1))

    def _get(self, key: str, now: float) -> _Record | None:
        rec = self._keys.get(key)
        if rec is not None and now >= rec.until + self.FORGET_S:
            del self._keys[key]
            return None
        return rec

    def wait(self, *keys: str) -> float:
        """Seconds until every key may try again (0: now)."""
        with self._lock:
            now = self.clock()
            return max([0.0, *((r.until - now) for k in keys if (r := self._get(k, now)) is not None)])

    def failures(self, key: str) -> int:
        with self._lock:
            rec = self._get(key, self.clock())
            return rec.failures if rec else 0

    def failed(self, *keys: str) -> float:
        """Count a failure on every key; returns the longest wait it set."""
        with self._lock:
            now = self.clock()
            longest = 0.0
            for k in keys:
                rec = self._get(k, now) or _Record()
                rec.failures += 1
                rec.last, rec.until = now, now + self.delay(rec.failures)
                self._keys[k] = rec
                self._keys.move_to_end(k)
                longest = max(longest, rec.until - now)
            while len(self._keys) > self.MAX_KEYS:
                self._keys.popitem(last=False)
            return longest

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._keys.pop(key, None)


_DUMMY = hash_password("a password nobody has", salt=b"\0" * 16)  # an unknown name costs the same time
_SCRYPT = threading.BoundedSemaphore(4)  # 16 MiB each: a flood of sign-ins cannot take the memory


class PasswordCheck:
    """The users file's sign-in, throttled: Gradio awaits it with (name, password) for each attempt."""

    def __init__(self, path: Path, *, throttle: Throttle | None = None) -> None:
        self.path = path
        self.throttle = throttle or Throttle()
        self._one_at_a_time = asyncio.Lock()  # check, verify and count as one step: no parallel free tries

    def _verify(self, name: str, password: str) -> bool:
        try:
            stored = read_users(self.path).get(name)  # read each time: a user added later can sign in
        except ConfigError:
            stored = None
        with _SCRYPT:
            ok = verify(password, stored or _DUMMY)
        return stored is not None and ok

    async def __call__(self, name: str, password: str, client: str | None = None) -> bool:
        """True for a right password; False for a wrong one; an HTTP 429 saying how long to wait while
        the name or the address is throttled (the password is not even looked at then)."""
        client = client if client is not None else _CLIENT.get() or "unknown"
        keys = (f"user:{name[:64]}", f"addr:{client}")
        self._refuse_if_waiting(keys)
        async with self._one_at_a_time:
            self._refuse_if_waiting(keys)
            ok = await asyncio.to_thread(self._verify, name, password)
            if ok:
                self.throttle.succeeded(keys[0])
                return True
            wait = self.throttle.failed(*keys)
            n = self.throttle.failures(keys[0])
            log.warning("coach: failed sign-in as %r from %s (%d in a row%s)", name[:64], client, n,
                        f"; next try in {math.ceil(wait)} s" if wait else "")
            return False

    def _refuse_if_waiting(self, keys: tuple[str, str]) -> None:
        wait = self.throttle.wait(*keys)
        if wait > 0:
            from fastapi import HTTPException

            s = math.ceil(wait)
            raise HTTPException(status_code=429, headers={"Retry-After": str(s)},
                                detail=f"Too many failed sign-ins: try again in {s} s.")


def launch_auth(settings: Settings) -> dict[str, Any]:
    """The `launch()` arguments for the settings' sign-in; refuses an exposed coach without one, and a
    header sign-in on an exposed coach that does not name the proxies it trusts."""
    if settings.users_file and settings.auth_header:
        raise ConfigError("pass either --users or --auth-header, not both")
    peers = Peers(proxy_networks(settings.trusted_proxies))
    # the client's address for the throttle and the log; Gradio's server-side rendering would put a Node
    # proxy in front and make every peer look local
    network = {"app_kwargs": {"middleware": [_middleware(peers)]}, "ssr_mode": False}
    if settings.users_file:
        users = read_users(settings.users_file)
        if not users:
            raise ConfigError(f"the users file {settings.users_file} has no users; `coach users add` one")
        check = PasswordCheck(settings.users_file)

        async def sign_in(name: str, password: str) -> bool:  # Gradio awaits a coroutine function
            return await check(name, password)

        return {"auth": sign_in, "auth_message": "Sign in with the name and password your coach gave you.",
                **network}
    if settings.auth_header:
        if not is_loopback(settings.host) and settings.trusted_proxies is None:
            raise ConfigError(f"--auth-header with --host {settings.host}: anyone who reaches port {settings.port} "
                              f"could send {settings.auth_header} and be anyone; name the proxy that signs people in "
                              "with --trusted-proxy ADDR (its address or network; see docs/security.md)")
        return {"auth_dependency": header_user(settings.auth_header, peers), **network}
    if not is_loopback(settings.host):
        raise ConfigError(f"--host {settings.host} would let anyone on the network use this coach and read every "
                          "session; add sign-in (--users FILE, see `coach users add`, or --auth-header NAME behind "
                          "a signing-in proxy), or keep the default 127.0.0.1")
    return {}


def _middleware(peers: Peers) -> Any:
    from starlette.middleware import Middleware

    return Middleware(ClientAddress, peers=peers)


class _Refusals:
    """One log line per peer a minute: a browser page makes dozens of requests, each with the header."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock, self.last = clock, OrderedDict[str, float]()

    def note(self, peer: str, header: str) -> None:
        now = self.clock()
        if now - self.last.get(peer, -math.inf) >= 60:
            log.warning("coach: refused the %s header from %s: not a trusted proxy (--trusted-proxy)", header, peer)
            self.last[peer] = now
            self.last.move_to_end(peer)
            while len(self.last) > 1000:
                self.last.popitem(last=False)


def header_user(header: str, peers: Peers | None = None) -> Callable[[Any], str | None]:
    """Gradio's `auth_dependency`: the signed-in name from `header`, taken only from a trusted proxy; the
    header from any other peer is a 403 (and a log line), no header is None (Gradio's 401)."""
    peers = peers or Peers(proxy_networks(None))
    refusals = _Refusals()

    def user(request: Any) -> str | None:
        value = request.headers.get(header)
        if value is None:
            return None
        peer = request.client.host if request.client else ""
        if not peers.trusted(peer):
            from fastapi import HTTPException

            refusals.note(peer, header)
            raise HTTPException(status_code=403, detail=f"The {header} header is accepted only from the coach's "
                                                        "trusted proxy; sign in through it.")
        value = value.strip()
        return value if value and NAME.match(value) else None

    return user


def owner_of(request: Any) -> str:
    """The signed-in user of a Gradio request; LOCAL on a coach without sign-in."""
    name = getattr(request, "username", None) if request is not None else None
    return str(name) if name else LOCAL
