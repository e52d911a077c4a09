"""A backend that says given text the way a Mistral model streams it: for judging what reads model text.

The wording checks must be measured on text written the way a real 7-8B instruct model writes, streamed
exactly as the engine streams it. `ScriptedBackend` takes that text (from a labelled corpus or a test),
cuts it into Mistral's own v3 SentencePiece tokens (mistral-common's tokenizer, the one Mistral 7B
Instruct v0.3 uses), and yields one token's piece at a time, with the engine's stop strings and token
budget applied the same way (`native.find_stop` / `partial_stop`). It runs no model: it is the stand-in
for a model's *words*, never for its speed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from coach.engine.base import Cancel, TurnTimings
from coach.engine.layout import Message
from coach.engine.native import find_stop, partial_stop


@lru_cache(maxsize=1)
def _v3() -> Any:
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    return MistralTokenizer.v3().instruct_tokenizer.tokenizer


def mistral_pieces(text: str) -> list[str]:
    """`text` as the text chunks a Mistral v3 model streams: one per token, byte tokens joined into whole
    characters (as the engine joins an incomplete UTF-8 character before yielding it)."""
    tok = _v3()
    ids = tok.encode(text, bos=False, eos=False)
    out: list[str] = []
    pending = b""
    for i in ids:
        piece = tok._model.id_to_piece(i)
        if piece.startswith("<0x") and piece.endswith(">"):
            pending += bytes([int(piece[3:-1], 16)])
            try:
                out.append(pending.decode("utf-8"))
                pending = b""
            except UnicodeDecodeError:
                continue
        else:
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending = b""
            out.append(piece.replace("\u2581", " "))
    if out and out[0].startswith(" ") and not text.startswith(" "):
        out[0] = out[0][1:]  # SentencePiece's leading space marker is not part of the model's reply
    return [p for p in out if p]


class ScriptedBackend:
    """A `ChatBackend` whose every turn is the next text `script` returns for (speaker, messages), streamed
    in Mistral v3 token pieces under the engine's stop strings and `max_tokens` budget."""

    def __init__(self, script: Callable[[str, list[Message]], str]) -> None:
        self.script = script
        self.timings: TurnTimings | None = None
        self._lock = threading.Lock()

    def stream(self, speaker: str, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.7,
               stop: list[str] | None = None, seed: int | None = None) -> Iterator[str]:
        t0 = time.perf_counter()
        stops = stop or []
        pieces = mistral_pieces(self.script(speaker, messages))
        held, finish = "", "length"
        n_gen = 0
        try:
            with self._lock:
                for piece in pieces:
                    if n_gen >= max_tokens:
                        break
                    n_gen += 1
                    held += piece
                    hit = find_stop(held, stops)
                    if hit is not None:
                        held, finish = held[:hit], "stop"
                        break
                    safe = len(held) - partial_stop(held, stops)
                    if safe > 0:
                        yield held[:safe]
                        held = held[safe:]
                else:
                    finish = "stop"  # the text ran out: the model's end of turn
                if held:
                    yield held
        finally:
            self.timings = TurnTimings(speaker=speaker, prompt_tokens=0, cached_tokens=0, prompt_eval_tokens=0,
                                       prompt_eval_ms=0.0, generated_tokens=n_gen, eval_ms=0.0, restore_ms=0.0,
                                       ttft_s=0.0, total_s=time.perf_counter() - t0, finish_reason=finish)

    def complete(self, speaker: str, messages: list[Message], **sampling: Any) -> str:
        return "".join(self.stream(speaker, messages, **sampling))

    def warm(self, speaker: str, messages: list[Message], cache_dir: Path | None, *, holdback: int = 1,
             whole: bool = False, cancel: Cancel | None = None) -> int:
        return 0  # nothing to read ahead: there is no model

    def load_card(self, speaker: str, messages: list[Message], cache_dir: Path) -> int:
        return 0

    def prefill(self, speaker: str, messages: list[Message], *, holdback: int = 1,
                cancel: Cancel | None = None) -> int:
        return 0

    def interrupt(self) -> None:
        """Nothing reads ahead."""

    @property
    def turn_waiting(self) -> bool:
        return False

    def close(self) -> None:
        """Nothing to free."""

    def forget(self) -> None:
        """Nothing is resident: there is no model."""
