"""A model server behind the same seam: llama.cpp's server, vLLM, or any OpenAI-compatible `/v1` API.

What keeps a remote panel fast is the same thing that keeps the local one fast: each panelist's prompt
is a stable prefix the server can reuse. So the messages are laid out exactly as the local engine lays
them out (`layout.arrange`), in the mode the server's own chat template accepts when the server tells
us its template (llama.cpp's `/props`), else `first_user`, which every template renders stably. On
llama.cpp's server each speaker is pinned to one slot (least recently used first), so its KV cells stay
where its next turn looks for them. What the server reused is read back into `TurnTimings`: llama.cpp's
`timings.cache_n`, or the OpenAI `usage.prompt_tokens_details.cached_tokens` that vLLM reports with
`--enable-prompt-tokens-details`. A server that reports neither (llama-cpp-python's own server) gets
`cache_reported=False`, never a made-up zero.

Every failure of the network is one `ServerUnavailable` line; nothing is stored for a turn that did
not finish, so the turn can be asked again.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from coach.config import server_url
from coach.engine.base import Cancel, TurnTimings
from coach.engine.layout import Layout, Message, arrange
from coach.errors import CoachError, ServerUnavailable

CONNECT_S = 5.0
READ_AHEAD = 2  # read-ahead requests in flight at once per coach server: a busy model server is not flooded


class RemoteBackend:
    """One OpenAI-compatible model server, shared by every browser tab of one coach server."""

    def __init__(self, url: str, *, timeout_s: float = 120.0, model: str | None = None,
                 api_key: str | None = None, mode: str | None = None) -> None:
        """
        Args:
            url: the server (`http://HOST:PORT`, with or without `/v1`).
            timeout_s: longest silence while a turn streams (a server under load is slow, not dead).
            model: the server's model id to ask for; default the first it lists.
            api_key: sent as a bearer token (vLLM `--api-key`, llama.cpp `--api-key`).
            mode: force a layout (`system` or `first_user`); default: the server's template, else first_user.
        """
        import httpx

        self.url = server_url(url)
        self.root = self.url[: -len("/v1")]
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout_s, connect=CONNECT_S))
        self._local = threading.local()  # each thread's last turn: tabs stream at once and never read another's
        self._lock = threading.Lock()
        self._slots: OrderedDict[str, int] = OrderedDict()  # speaker -> llama.cpp slot, least recent first
        self._read: OrderedDict[str, int] = OrderedDict()  # speaker -> the prompt last read ahead (a hash)
        self._ahead = threading.BoundedSemaphore(READ_AHEAD)
        models = self._get("/models")
        ids = [m.get("id") for m in (models or {}).get("data", []) if isinstance(m, dict)]
        if not ids:
            raise ServerUnavailable(f"the server at {self.url} lists no model (GET /v1/models); is it an "
                                    "OpenAI-compatible model server?")
        self.model = model or str(ids[0])
        props = self._get("/props", optional=True)  # llama.cpp's server only
        version = None if props else self._get("/version", optional=True)  # vLLM
        self.kind = "llama.cpp" if props else "vLLM" if version and "version" in version else "OpenAI-compatible"
        self.n_slots = int(props.get("total_slots") or 0) if props else 0
        self.n_ctx = int((props or {}).get("default_generation_settings", {}).get("n_ctx") or 0) or None
        template = (props or {}).get("chat_template")
        self.mode = mode or (probe_mode(template, props or {}) if template else "first_user")
        self.closed = False

    # ---------------------------------------------------------------- describing

    @property
    def timings(self) -> TurnTimings | None:
        return getattr(self._local, "timings", None)

    @timings.setter
    def timings(self, value: TurnTimings | None) -> None:
        self._local.timings = value

    def describe(self) -> str:
        slots = f", {self.n_slots} slots" if self.n_slots else ""
        name = self.model.rstrip("/").rsplit("/", 1)[-1]  # llama-cpp-python's server names a model by its path
        return f"{name} on the {self.kind} server at {self.root}{slots}"

    # ---------------------------------------------------------------- HTTP

    def _fail(self, exc: Exception, what: str) -> ServerUnavailable:
        import httpx

        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ServerUnavailable(f"no model server answers at {self.root} ({_reason(exc)}); start it "
                                     "(docs/cohort.md) or fix --backend / COACH_BACKEND")
        if isinstance(exc, httpx.TimeoutException):
            return ServerUnavailable(f"the model server at {self.root} sent nothing for {self.timeout_s:.0f} s "
                                     f"while {what}; it may be overloaded")
        return ServerUnavailable(f"the model server at {self.root} dropped the connection while {what} "
                                 f"({_reason(exc)})")

    def _get(self, path: str, *, optional: bool = False) -> dict[str, Any] | None:
        """GET `path` under the API root (`/models` under /v1; `/props`, `/version` beside it)."""
        import httpx

        try:
            r = self._client.get((self.url if path == "/models" else self.root) + path, timeout=CONNECT_S * 2)
        except httpx.HTTPError as exc:
            if optional:
                return None
            raise self._fail(exc, f"answering GET {path}") from None
        if r.status_code != 200:
            if optional:
                return None
            raise ServerUnavailable(f"the server at {self.url} answered GET {path} with HTTP {r.status_code}; "
                                    "is it an OpenAI-compatible model server?")
        try:
            data = r.json()
        except ValueError:
            if optional:
                return None
            raise ServerUnavailable(f"the server at {self.url} answered GET {path} with something other than "
                                    "JSON; is it an OpenAI-compatible model server?") from None
        return data if isinstance(data, dict) else None

    def _body(self, speaker: str, sent: list[Message], **fields: Any) -> dict[str, Any]:
        """A chat request for `speaker`; on llama.cpp, on its own slot with the prompt cache on."""
        body: dict[str, Any] = {"model": self.model, "messages": sent, **fields}
        if self.kind == "llama.cpp":
            body["cache_prompt"] = True
            slot = self._slot_for(speaker)
            if slot is not None:
                body["id_slot"] = slot
        return body

    def _slot_for(self, speaker: str) -> int | None:
        """This speaker's llama.cpp slot: its own while it is among the `n_slots` most recent speakers."""
        if not self.n_slots:
            return None
        with self._lock:
            if speaker in self._slots:
                self._slots.move_to_end(speaker)
                return self._slots[speaker]
            used = set(self._slots.values())
            free = next((i for i in range(self.n_slots) if i not in used), None)
            if free is None:
                gone, free = self._slots.popitem(last=False)
                self._read.pop(gone, None)  # its slot is someone else's now: nothing it read is kept
            self._slots[speaker] = free
            return free

    # ---------------------------------------------------------------- a turn

    def messages(self, messages: list[Message]) -> list[Message]:
        """What is sent: the local engine's layout, so the rendered prompt only grows turn by turn."""
        return arrange(messages, self.mode)

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               top_p: float = 0.95, stop: list[str] | None = None, seed: int | None = None,
               **_: Any) -> Iterator[str]:
        """Stream one turn as text chunks; `self.timings` (this thread's) is set when it ends, also when
        it was cut short. Raises `ServerUnavailable` when the server is down, silent or drops the stream."""
        import httpx

        if self.closed:
            raise CoachError("this model server connection was closed; resume the session")
        body = self._body(speaker, self.messages(messages), stream=True, max_tokens=max_tokens,
                          temperature=temperature, top_p=top_p, stream_options={"include_usage": True})
        if stop:
            body["stop"] = stop[:4]  # the OpenAI API takes at most four
        if seed is not None:
            body["seed"] = seed
        # the server's tally on every chunk, so a turn the wording checks end early still reports its cache
        if self.kind == "vLLM":
            body["stream_options"]["continuous_usage_stats"] = True
        if self.kind == "llama.cpp":
            body["timings_per_token"] = True
        t0 = time.perf_counter()
        first: float | None = None
        n_chunks, finish = 0, ""
        usage: dict[str, Any] = {}
        server: dict[str, Any] = {}
        words = 0
        try:
            with self._client.stream("POST", self.url + "/chat/completions", json=body) as r:
                if r.status_code != 200:
                    raise _refused(r, self.root)
                done = False
                for line in r.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        done = True
                        break
                    try:
                        obj = json.loads(data)
                    except ValueError:
                        raise ServerUnavailable(f"the model server at {self.root} sent a broken event "
                                                f"({data[:80]!r})") from None
                    if obj.get("error"):
                        raise CoachError(f"the model server refused the turn: {_message(obj['error'])}")
                    usage = obj.get("usage") or usage
                    server = obj.get("timings") or server
                    for choice in obj.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        finish = choice.get("finish_reason") or finish
                        if text:
                            n_chunks += 1
                            words += len(text.split())
                            first = first or time.perf_counter()
                            yield text
                if not done and not finish:
                    raise ServerUnavailable(f"the model server at {self.root} ended the stream mid-turn after "
                                            f"{words} words; ask again")
        except httpx.HTTPError as exc:
            raise self._fail(exc, f"streaming a turn (after {words} words)") from None
        finally:
            self.timings = _timings(speaker, t0, first, n_chunks, finish or "interrupted", usage, server)

    # ---------------------------------------------------------------- ahead of the turn

    @property
    def reads_ahead(self) -> bool:
        """Servers that keep many prompts cheaply (llama.cpp's slots, vLLM's prefix cache) read ahead;
        llama-cpp-python's server holds one sequence and would only trade one cached prompt for another."""
        return self.kind in ("llama.cpp", "vLLM") and not self.closed

    def prefill(self, speaker: str, messages: list[Message], *, holdback: int = 1,
                cancel: Cancel | None = None) -> int:
        """While the candidate types: have the server read `speaker`'s next prompt as known now (one
        request, one token generated), so the turn at Send only reads what is new. Returns the prompt
        tokens the server evaluated (0 when this exact text was read already, or on any failure: reading
        ahead is only ever an optimisation)."""
        import httpx

        if not self.reads_ahead or (cancel is not None and cancel.is_set()):
            return 0
        sent = self.messages(messages)
        key = hash(json.dumps(sent, sort_keys=True))
        with self._lock:
            if self._read.get(speaker) == key:
                return 0
        # Measured on a 2-core server with 16 candidates typing: unbounded read-ahead filled every batch
        # with drafts and the turns waited behind them. Skipped now is read at Send (or by the next draft).
        if not self._ahead.acquire(blocking=False):
            return 0
        try:
            r = self._client.post(self.url + "/chat/completions",
                                  json=self._body(speaker, sent, max_tokens=1, temperature=0.0))
            data = r.json() if r.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return 0
        finally:
            self._ahead.release()
        if not data:
            return 0
        with self._lock:
            self._read[speaker] = key
            self._read.move_to_end(speaker)
            while len(self._read) > 4096:
                self._read.popitem(last=False)
        _, _, evaluated, _ = _prompt_counts(data.get("usage") or {}, data.get("timings") or {})
        return max(1, evaluated)

    def warm(self, speaker: str, messages: list[Message], cache_dir: Any = None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        """At a session's start: the server reads each persona card. The first speaker's whole opening
        (`whole`) is left to the opening question's own request, which follows at once: read twice, it
        would only make the first question wait behind its own copy."""
        return 0 if whole else self.prefill(speaker, messages, cancel=cancel)

    def complete(self, speaker: str, messages: list[Message], **sampling: Any) -> str:
        return "".join(self.stream(speaker, messages, **sampling))

    def load_card(self, speaker: str, messages: list[Message], cache_dir: Any) -> int:
        """The server keeps its own prompt cache: nothing to load here."""
        return 0

    def interrupt(self) -> None:
        """A read-ahead request is one short call the server schedules itself: nothing to stop here."""

    @property
    def turn_waiting(self) -> bool:
        return False  # the server schedules its own batches; reading ahead never holds a turn here

    def close(self) -> None:
        self.closed = True
        self._client.close()


def probe_mode(template: str, props: dict[str, Any]) -> str:
    """The layout the server's own template keeps stable (rendered here, with no tokenizer)."""
    try:
        return Layout(template, bos=str(props.get("bos_token") or ""), eos=str(props.get("eos_token") or ""),
                      specials={}, tokenize_text=lambda _: [], dummy_prefix=False, bos_id=None).mode
    except Exception:  # no stable layout, or a template our sandbox cannot render: the one every template keeps
        return "first_user"


def _timings(speaker: str, t0: float, first: float | None, n_chunks: int, finish: str, usage: dict[str, Any],
             server: dict[str, Any]) -> TurnTimings:
    now = time.perf_counter()
    prompt, cached, evaluated, reported = _prompt_counts(usage, server)
    return TurnTimings(
        speaker=speaker, prompt_tokens=prompt, cached_tokens=cached, prompt_eval_tokens=max(0, evaluated),
        prompt_eval_ms=float(server.get("prompt_ms") or 0.0),
        generated_tokens=int(server.get("predicted_n") or usage.get("completion_tokens") or n_chunks),
        eval_ms=float(server.get("predicted_ms") or 0.0), restore_ms=0.0,
        ttft_s=(first or now) - t0, total_s=now - t0, finish_reason=finish, cache_reported=reported,
        remote=True)


def _prompt_counts(usage: dict[str, Any], server: dict[str, Any]) -> tuple[int, int, int, bool]:
    """(prompt tokens, reused from the cache, evaluated, whether the server said what it reused): from
    llama.cpp's `timings` when present, else the OpenAI usage block (vLLM's cached-token details)."""
    if server:  # llama.cpp: cache_n reused, prompt_n evaluated
        cached, evaluated = int(server.get("cache_n") or 0), int(server.get("prompt_n") or 0)
        return cached + evaluated, cached, evaluated, "cache_n" in server
    details = usage.get("prompt_tokens_details") or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    cached = int(details.get("cached_tokens") or 0)
    return prompt, cached, prompt - cached, "cached_tokens" in details


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text[:160] if text else type(exc).__name__


def _message(err: Any) -> str:
    return str(err.get("message") or err) if isinstance(err, dict) else str(err)


def _refused(r: Any, where: str) -> CoachError:
    """A non-200 answer: a server error is the server's (ask again); a 4xx is this request's."""
    try:
        r.read()
        obj = r.json()
        why = _message(obj.get("error", obj)) if isinstance(obj, dict) else str(obj)
    except Exception:
        why = (r.text or "")[:200] if hasattr(r, "text") else ""
    why = why.strip()[:300] or f"HTTP {r.status_code}"
    if r.status_code >= 500 or r.status_code in (408, 429):
        return ServerUnavailable(f"the model server at {where} could not take the turn (HTTP {r.status_code}: {why})")
    return CoachError(f"the model server at {where} refused the turn (HTTP {r.status_code}: {why})")
