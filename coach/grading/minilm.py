"""all-MiniLM-L6-v2 as plain torch: the BERT encoder, mean pooling and unit length that sentence-transformers
runs for this model, read from the same files (config.json, model.safetensors, tokenizer.json).

Why not sentence-transformers itself: importing it pulls in transformers, scikit-learn and scipy, 9.8 s of
CPU on this 2-core machine for every `coach` process that grades, against 2.8 s for torch alone; the
model is six small layers. A test checks that the vectors equal sentence-transformers' own (to 1e-5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length (the tokenizer file says 128; the model card 256)


class MiniLM:
    """A BERT encoder for sentence vectors, loaded from a sentence-transformers model folder."""

    def __init__(self, folder: Path) -> None:
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        cfg = json.loads((folder / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        if cfg.get("hidden_act", "gelu") != "gelu" or cfg.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{folder}: only a BERT with gelu and absolute positions is supported")
        st = folder / "sentence_bert_config.json"
        limit = int(json.loads(st.read_text()).get("max_seq_length", MAX_TOKENS)) if st.exists() else MAX_TOKENS
        self.w: dict[str, Any] = {k.removeprefix("bert."): v.float() for k, v in
                                  load_file(str(folder / "model.safetensors")).items()}
        self.tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tok.enable_truncation(max_length=min(limit, int(cfg["max_position_embeddings"])))
        self.tok.enable_padding(pad_id=int(cfg.get("pad_token_id", 0)), pad_token="[PAD]")
        self._torch = torch

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length mean-pooled vectors, one row per text (longest texts batched together, as
        sentence-transformers does, so padding stays short)."""
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.w["embeddings.word_embeddings.weight"].shape[1]), dtype=np.float32)
        with self._torch.inference_mode():
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                out[idx] = self._batch([texts[i] for i in idx])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        F = torch.nn.functional
        w = self.w
        enc = self.tok.encode_batch(texts)
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.float32)
        types = torch.tensor([e.type_ids for e in enc], dtype=torch.long)
        n, length = ids.shape
        h = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length][None]
             + w["embeddings.token_type_embeddings.weight"][types])
        h = F.layer_norm(h, h.shape[-1:], w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        dim = h.shape[-1]
        head = dim // self.heads
        bias = ((1.0 - mask) * torch.finfo(torch.float32).min)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def lin(x: Any, name: str, p: str = p) -> Any:
                return F.linear(x, w[p + name + ".weight"], w[p + name + ".bias"])

            def split(x: Any) -> Any:
                return x.view(n, length, self.heads, head).transpose(1, 2)

            q, k, v = (split(lin(h, f"attention.self.{m}")) for m in ("query", "key", "value"))
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            att = att.transpose(1, 2).reshape(n, length, dim)
            h = F.layer_norm(lin(att, "attention.output.dense") + h, (dim,), w[p + "attention.output.LayerNorm.weight"],
                             w[p + "attention.output.LayerNorm.bias"], self.eps)
            ff = lin(F.gelu(lin(h, "intermediate.dense")), "output.dense")
            h = F.layer_norm(ff + h, (dim,), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1).numpy()
