"""The prompt layout: how a panelist's thread becomes tokens, chosen per model so its prefix never moves.

Models disagree on where a system message may stand. Mistral's strict template raises on a `system`
role; v0.3's official template and Nemo's move the system text in front of the *last* user turn, so
a persona card sent as a system message would move every turn and no cached prefix would survive.
At load we render short probe conversations through the model's own template and keep the first
layout it accepts whose renderings extend each other turn by turn:

- `system`: the persona card stays a system message (ChatML, Mistral Small 3's `[SYSTEM_PROMPT]`);
- `first_user`: the card heads the first user turn (strict and v0.3/Nemo templates), which is also
  how Mistral's reference (mistral-common v1) places a system prompt.

Tokens are made here too, not by tokenizing the rendered string with special tokens on: the
template's own control tokens ([INST], </s>, <|im_start|>) are looked up by id, and every message's
text is tokenized as plain text, so a candidate who types "[/INST]" types text, not a control token.
For SentencePiece vocabularies the space the template writes after a control token is the word's
own prefix space (as Mistral's reference tokenizer encodes it), not an extra "▁" token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from coach.errors import CoachError

Message = dict[str, str]
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use marks around a message's place in the rendered skeleton
_MARK = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
LAYOUTS = ("system", "first_user")


def normalize(messages: list[Message]) -> list[Message]:
    """Strip each message and merge consecutive same-role ones (strict templates need alternation)."""
    out: list[Message] = []
    for m in messages:
        content = m["content"].strip()
        if out and out[-1]["role"] == m["role"]:
            out[-1] = {"role": m["role"], "content": out[-1]["content"] + "\n\n" + content}
        else:
            out.append({"role": m["role"], "content": content})
    return out


def arrange(messages: list[Message], mode: str) -> list[Message]:
    """Put the system message where `mode` wants it."""
    msgs = normalize(messages)
    if mode == "system" or not msgs or msgs[0]["role"] != "system":
        return msgs
    card, rest = msgs[0]["content"], msgs[1:]
    if rest and rest[0]["role"] == "user":
        return [{"role": "user", "content": card + "\n\n" + rest[0]["content"]}, *rest[1:]]
    return [{"role": "user", "content": card}, *rest]


@dataclass
class Piece:
    token: int | None = None  # a control token from the template
    text: str = ""  # plain text (template text and message contents)
    ends: tuple[tuple[int, int], ...] = ()  # (message index, offset in text where that message's content ends)


class Layout:
    """Renders and tokenizes a panelist's thread for one model."""

    def __init__(self, template: str, *, bos: str, eos: str, specials: dict[str, int],
                 tokenize_text: Callable[[str], list[int]], dummy_prefix: bool, bos_id: int | None,
                 mode: str | None = None) -> None:
        """
        Args:
            template: the model's Jinja chat template.
            bos, eos: their texts, as the template writes them.
            specials: control-token text -> id (what the template may write).
            tokenize_text: plain-text tokenizer (no BOS, no special parsing).
            dummy_prefix: SentencePiece adds a "▁" in front of every text it tokenizes.
            bos_id: prepended when the vocabulary wants a BOS and the template wrote none.
            mode: force a layout; default: probe the template.
        """
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(msg: str) -> None:
            raise ValueError(msg)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        self._tmpl = env.from_string(template)
        self.bos, self.eos, self.bos_id = bos, eos, bos_id
        self._tokenize_text, self.dummy_prefix = tokenize_text, dummy_prefix
        names = sorted((s for s in specials if s), key=len, reverse=True)
        self._specials = specials
        self._split = re.compile("(" + "|".join(re.escape(s) for s in names) + ")") if names else None
        self.mode = mode or self.probe()

    # ---------------------------------------------------------------- choosing

    def _render_raw(self, msgs: list[Message]) -> str:
        return self._tmpl.render(messages=msgs, bos_token=self.bos, eos_token=self.eos, add_generation_prompt=True)

    def probe(self) -> str:
        """The first layout the template accepts whose renderings of a growing thread extend each other."""
        card = "CARD-TEXT persona card"
        turns = [{"role": "user", "content": "first user turn"}, {"role": "assistant", "content": "first reply"},
                 {"role": "user", "content": "second user turn"}, {"role": "assistant", "content": "second reply"},
                 {"role": "user", "content": "third user turn"}]
        why = []
        for mode in LAYOUTS:
            try:
                texts = [self._render_raw(arrange([{"role": "system", "content": card}, *turns[:n]], mode))
                         for n in (1, 3, 5)]
            except Exception as exc:  # jinja raise_exception: roles this template refuses
                why.append(f"{mode}: {exc}")
                continue
            stable = all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
            if stable and texts[-1].count(card) == 1:
                return mode
            why.append(f"{mode}: the persona card moves between turns")
        raise CoachError("the model's chat template accepts no layout that keeps a panelist's prompt stable ("
                         + "; ".join(why) + "); use another GGUF")

    # ---------------------------------------------------------------- rendering

    def render(self, messages: list[Message]) -> str:
        """The prompt as text (for display and tests); tokens come from `tokens`."""
        return self._render_raw(arrange(messages, self.mode))

    def pieces(self, messages: list[Message]) -> list[Piece]:
        return self._pieces(arrange(messages, self.mode))

    def _pieces(self, msgs: list[Message]) -> list[Piece]:
        marked = [{"role": m["role"], "content": f"{_OPEN}{i}{_CLOSE}"} for i, m in enumerate(msgs)]
        try:
            skeleton = self._render_raw(marked)
        except Exception as exc:  # raise_exception() in the template
            raise CoachError(f"the model's chat template rejected these messages ({exc}); use another GGUF") from None
        parts = self._split.split(skeleton) if self._split else [skeleton]
        out: list[Piece] = []
        for part in parts:
            if not part:
                continue
            if part in self._specials:
                out.append(Piece(token=self._specials[part]))
                continue
            text, ends, pos = "", [], 0
            for m in _MARK.finditer(part):
                i = int(m.group(1))
                text += part[pos:m.start()] + msgs[i]["content"]
                ends.append((i, len(text)))
                pos = m.end()
            text += part[pos:]
            out.append(Piece(text=text, ends=tuple(ends)))
        return out

    def _text_tokens(self, text: str, after_special: bool) -> list[int]:
        if self.dummy_prefix and after_special and text.startswith(" "):
            text = text[1:]  # the word's own "▁", which the tokenizer adds back
        return self._tokenize_text(text) if text else []

    def tokens(self, messages: list[Message], *, upto_last: bool = False) -> list[int]:
        """The prompt's tokens, generation prompt included; or, with `upto_last`, only up to the end of
        the last message's content (what is known while the candidate is still typing)."""
        msgs = arrange(messages, self.mode)
        pieces = self._pieces(msgs)
        last = len(msgs) - 1
        out: list[int] = []
        prev_special = True
        for p in pieces:
            if p.token is not None:
                out.append(p.token)
                prev_special = True
                continue
            stop = next((off for i, off in p.ends if i == last), None) if upto_last else None
            out += self._text_tokens(p.text if stop is None else p.text[:stop], prev_special)
            prev_special = False
            if stop is not None:
                break
        if self.bos_id is not None and (not out or out[0] != self.bos_id):
            out.insert(0, self.bos_id)
        return out
