"""The seam every backend implements (`ChatBackend`) and the timings a turn reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from coach.engine.layout import Message


@dataclass
class TurnTimings:
    """One turn, as the engine counted and timed it (tokens it handed to llama_decode, wall clock)."""

    speaker: str
    prompt_tokens: int  # the whole prompt, as tokenized
    cached_tokens: int  # prompt tokens not evaluated again (resident in the KV cache)
    prompt_eval_tokens: int  # prompt tokens llama.cpp evaluated this turn
    prompt_eval_ms: float  # time llama.cpp spent on them
    generated_tokens: int
    eval_ms: float  # time decoding generated tokens
    restore_ms: float  # bringing this speaker's KV back (0 unless it had been evicted)
    ttft_s: float  # wall clock: call -> first text chunk
    total_s: float  # wall clock: call -> last chunk
    finish_reason: str
    wait_s: float = 0.0  # waiting for a background prefill batch to end
    cache_reported: bool = True  # False: a model server that does not say what it reused (cached_tokens is 0)
    remote: bool = False  # measured by a model server (its own counts) rather than this process

    @property
    def gen_tokens_per_s(self) -> float:
        """Generation speed: decode of each new token."""
        n = max(0, self.generated_tokens - 1)
        return n / (self.eval_ms / 1000) if self.eval_ms > 0 and n else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gen_tokens_per_s": round(self.gen_tokens_per_s, 2)}


class Cancel(Protocol):
    """What stops background reading between batches: a `threading.Event`, or several (`typeahead.Either`)."""

    def is_set(self) -> bool: ...


class ChatBackend(Protocol):
    """The seam every backend implements (in-process llama.cpp, a model server, the scripted corpus): stream
    one speaker's turn as text chunks; `timings` describes the last turn. The reading ahead (`warm` at a
    session's start, `prefill` while the candidate types) is only ever an optimisation: a backend that cannot
    read ahead returns 0 and the turn reads everything at Send."""

    timings: TurnTimings | None

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str]: ...

    def complete(self, speaker: str, messages: list[Message], **sampling: Any) -> str:
        """The whole turn as one string."""
        ...

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        """At a session's start: read `speaker`'s card (from `cache_dir` where it was read before); `whole`:
        its whole opening prompt. Returns tokens evaluated."""
        ...

    def load_card(self, speaker: str, messages: list[Message], cache_dir: Path) -> int:
        """Before a panelist's first turn in this process (a resumed session): its persona card from
        `cache_dir` where it was read before, else read and kept there. Returns tokens evaluated."""
        ...

    def prefill(self, speaker: str, messages: list[Message], *, holdback: int = 1,
                cancel: Cancel | None = None) -> int:
        """While the candidate types: read what is known of `speaker`'s next prompt. Returns tokens evaluated."""
        ...

    def interrupt(self) -> None:
        """Stop the background reading in flight now (its draft is stale); a no-op where nothing reads ahead."""
        ...

    @property
    def turn_waiting(self) -> bool:
        """A turn is waiting for the model: background reading should step aside."""
        ...

    def close(self) -> None:
        """Free the model (or the connection) once any turn in progress has finished."""
        ...
