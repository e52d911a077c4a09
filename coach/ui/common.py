"""What every tab shares: the session-wide parts (`Ctx`), the error boundary, and the chat message form."""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from coach.auth import owner_of
from coach.config import Settings
from coach.crash import log_crash
from coach.errors import CoachError
from coach.grading.grader import Grader
from coach.interview.history import CANDIDATE, History, Line
from coach.interview.loader import ModelHolder
from coach.interview.prompts import Persona, Scenario
from coach.store import Store

log = logging.getLogger("coach.ui")


PULL_CMD = re.compile(r"run `coach models pull ([^`]+)`")


def in_the_browser(text: str) -> str:
    """Advice written for the terminal, as the page says it: the Pull box is a click away."""
    return PULL_CMD.sub(r"pull **\1** from the **Models** tab (its Pull box holds the name)", text)


@dataclass
class Ctx:
    """The parts every browser tab shares: one loaded model (its lock makes tabs take turns), one grader,
    the sessions on disk, the catalog of scenarios, and a scratch folder for files to download."""

    settings: Settings
    models: ModelHolder
    grader: Grader
    store: Store
    history: History
    personas: dict[str, Persona]
    scenarios: dict[str, Scenario]
    exports: Path
    # the sessions this process runs, by id (a reloaded page's old one is stopped when its session is resumed)
    live: weakref.WeakValueDictionary[str, Any] = field(default_factory=weakref.WeakValueDictionary)

    @property
    def colours(self) -> dict[str, str]:
        return {k: p.colour for k, p in self.personas.items()}

    def banner(self) -> str:
        return f"**Model running:** {in_the_browser(self.models.describe())}"

    @property
    def shared(self) -> bool:
        """Signed-in users share this coach: each sees only their own sessions, and nobody changes models."""
        return bool(self.settings.users_file or self.settings.auth_header)

    def history_of(self, request: Any) -> History:
        return self.history.scoped(owner_of(request))

    def export_dir(self, owner: str) -> Path:
        """Where this user's report files are written: a folder per user, named by a hash, not the name."""
        return self.exports / (hashlib.sha256(owner.encode()).hexdigest()[:16] if owner else "local")

    def refuse_if_shared(self, what: str) -> None:
        if self.shared:
            raise CoachError(f"{what} is for whoever runs this shared coach (`coach models`, `coach bench` on "
                             "the server); it is off for signed-in users")


BROWSER_COOKIE = "coach_browser"
# Sets this browser's id once (a year): its sessions are leased to it, so a reload takes them back unasked.
BROWSER_JS = ("() => { if (!document.cookie.split('; ').some(c => c.startsWith('coach_browser='))) {"
              " const id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() :"
              " Math.random().toString(36).slice(2) + Date.now().toString(36);"
              " document.cookie = 'coach_browser=' + id + '; path=/; max-age=31536000; SameSite=Strict'; } }")


def browser_holder(request: Any) -> str | None:
    """The lease token of the browser that sent `request` (its cookie), or None (an API client, or no cookie
    yet): then each window holds its own lease, as before."""
    headers = getattr(request, "headers", None)
    cookie = headers.get("cookie", "") if headers is not None else ""
    m = re.search(rf"(?:^|;\s*){BROWSER_COOKIE}=([A-Za-z0-9-]{{8,64}})(?:;|$)", cookie or "")
    return f"browser:{m.group(1)}" if m else None


TYPING = '<span class="typing" data-testid="typing">…</span>'  # the panelist is still writing a sentence


def panelist_message(p: Persona, text: str, typing: bool = False) -> dict[str, Any]:
    """A panelist's turn in the chat; `typing`: more is coming (a sentence is shown once it is whole)."""
    return {"role": "assistant", "content": f"{p.mark} **{p.name}** · *{p.role}*\n\n{text}{' ' + TYPING if typing else ''}"}


def chat_of(lines: list[Line], personas: dict[str, Persona]) -> list[dict[str, Any]]:
    """A stored transcript as chat messages."""
    return [{"role": "user", "content": x.text} if x.speaker == CANDIDATE else panelist_message(personas[x.speaker], x.text)
            for x in lines]


def ui_error(exc: Exception) -> gr.Error:
    """One line for the page: a CoachError says its fix; anything else is logged whole and named."""
    if isinstance(exc, gr.Error):
        return exc
    if isinstance(exc, CoachError):
        return gr.Error(str(exc))
    where = log_crash(exc)
    log.error("unexpected %s in a UI handler (trace in %s)", type(exc).__name__, where)
    return gr.Error(f"Unexpected {type(exc).__name__}: {str(exc)[:300]} (full trace in {where}; please report it)")


def guard(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Every plain UI handler's error boundary."""

    @functools.wraps(handler)
    def wrapped(*args: Any) -> Any:
        try:
            return handler(*args)
        except Exception as exc:
            raise ui_error(exc) from None

    return wrapped


def guard_stream(handler: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
    """A streaming handler's error boundary (for handlers that own no chat)."""

    @functools.wraps(handler)
    def wrapped(*args: Any) -> Iterator[Any]:
        try:
            yield from handler(*args)
        except Exception as exc:
            raise ui_error(exc) from None

    return wrapped


def streaming(handler: Callable[..., Iterator[dict]], chat: Any, chat_state: Any,
              button: Any) -> Callable[..., Iterator[dict]]:
    """A streaming handler's boundary: each update's transcript is also kept in `chat_state` (so API
    clients need not send it back), and `button` stays disabled until the handler's last update; after
    an error it comes back before the error is shown, so nothing is left locked."""

    @functools.wraps(handler)
    def wrapped(*args: Any) -> Iterator[dict]:
        prev: dict | None = None
        try:
            for out in handler(*args):
                if prev is not None:
                    yield {**prev, button: gr.update(interactive=False)}
                prev = {**out, chat_state: out[chat]} if chat in out else dict(out)
        except Exception as exc:
            if prev is not None:
                yield {**prev, button: gr.update(interactive=True)}
            raise ui_error(exc) from None
        if prev is not None:
            yield {**prev, button: gr.update(interactive=True)}

    return wrapped
