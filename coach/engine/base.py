"""The seam every backend implements (`ChatBackend`) and the timings a turn reports."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
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


class ChatBackend(Protocol):
    """The seam: stream one speaker's turn as text chunks; `timings` describes the last turn."""

    timings: TurnTimings | None

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str]: ...
