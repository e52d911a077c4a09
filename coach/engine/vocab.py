"""The model's vocabulary as the engine uses it: text to tokens and back, the prompt layout (mistral-common's
rules for a Mistral-family file, else the GGUF's own chat template), and the sampler chain."""

from __future__ import annotations

import ctypes
from typing import Any

from coach.engine.layout import Layout
from coach.engine.native import FALLBACK_TEMPLATE
from coach.models.formats import mistral_rules
from coach.models.formats import template as format_template
from coach.models.gguf import GGUFInfo


def catalog_tokenizer(filename: str) -> str | None:
    """The tokenizer version the catalog states for a file of this name, a pulled file or a `coach bench
    --shape` file (`NAME.QUANT.shape.gguf`); None for any other file."""
    from coach.errors import CoachError
    from coach.models.catalog import load_catalog

    try:
        catalog = load_catalog()
    except CoachError:
        return None
    shape_of = filename.removesuffix(".shape.gguf").rpartition(".")[0] if filename.endswith(".shape.gguf") else None
    for e in catalog.models:
        if e.shape is not None and (e.name == shape_of or any(f.filename == filename for f in e.files.values())):
            return e.shape.tokenizer
    return None


class Vocab:
    """A loaded model's vocabulary: text to tokens and back, its prompt layout and sampler chains."""

    def __init__(self, model: Any, info: GGUFInfo) -> None:
        import llama_cpp

        self.info = info
        self._vocab = model.vocab
        self.n_tokens = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self.rendering = ""  # how prompts are rendered: mistral-common's rules (which) or the file's template
        self.layout = self._make_layout()

    def _make_layout(self) -> Layout:
        import llama_cpp

        specials: dict[str, int] = {}
        for i in range(self.n_tokens):
            attr = llama_cpp.llama_vocab_get_attr(self._vocab, i)
            if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED):
                text = self.piece(i, special=True).decode("utf-8", errors="replace")
                if text and text not in specials:
                    specials[text] = i
        bos_id, eos_id = llama_cpp.llama_vocab_bos(self._vocab), llama_cpp.llama_vocab_eos(self._vocab)
        bos = self.piece(bos_id, special=True).decode() if bos_id >= 0 else ""
        eos = self.piece(eos_id, special=True).decode() if eos_id >= 0 else ""
        add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self._vocab)) and bos_id >= 0
        probe = self.tokenize_text("a")
        dummy = bool(probe) and self.piece(probe[0]).startswith(b" ")
        rules = mistral_rules(specials, template=self.info.chat_template, arch=self.info.architecture,
                              version=catalog_tokenizer(self.info.path.name))
        self.rendering = f"mistral-common rules ({rules})" if rules else "the file's chat template"
        tmpl = format_template(rules) if rules else self.info.chat_template or FALLBACK_TEMPLATE
        return Layout(tmpl, bos=bos, eos=eos, specials=specials, tokenize_text=self.tokenize_text,
                      dummy_prefix=dummy, bos_id=bos_id if add_bos else None)

    def piece(self, token: int, special: bool = False) -> bytes:
        """One token's bytes (a character may span several tokens)."""
        import llama_cpp

        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, special)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, special)
        return buf.raw[:n]

    def text_of(self, tokens: list[int]) -> str:
        """Tokens back to text, as the model would print them (an incomplete character dropped)."""
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="ignore")

    @property
    def eos_token(self) -> int:
        import llama_cpp

        return int(llama_cpp.llama_vocab_eos(self._vocab))

    def is_end(self, token: int) -> bool:
        """`token` ends a turn (end of text, end of turn)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def tokenize_text(self, text: str) -> list[int]:
        """Plain text to tokens: no BOS, control-token names stay text."""
        import llama_cpp

        data = text.encode("utf-8", errors="replace")
        cap = len(data) + 8
        buf = (llama_cpp.llama_token * cap)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, False, False)
        if n < 0:
            cap = -n
            buf = (llama_cpp.llama_token * cap)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buf, cap, False, False)
        return list(buf[:n])

    def sampler(self, *, seed: int, temperature: float, top_p: float, top_k: int, min_p: float,
                repeat_penalty: float) -> Any:
        """A llama.cpp sampler chain (greedy at temperature 0); the caller closes it."""
        from llama_cpp._internals import LlamaSampler

        s = LlamaSampler()
        if repeat_penalty != 1.0:
            s.add_penalties(self.n_tokens, 64, repeat_penalty, 0.0, 0.0)
        if temperature <= 0:
            s.add_greedy()
            return s
        s.add_top_k(top_k)
        s.add_top_p(top_p, 1)
        s.add_min_p(min_p, 1)
        s.add_temp(temperature)
        s.add_dist(seed & 0xFFFFFFFF)
        return s
