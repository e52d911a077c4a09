"""A whisper.cpp model file of a real model's exact shape with random weights (the GGML layout
whisper.cpp's loader reads: header, mel filters, vocabulary, then every tensor by name). Its text is
noise, but its speed and memory are the real model's, so `bench/voice_bench.py` can measure whisper's
real-time factor on a machine that cannot download the real file, and the tests can load one."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

# (n_audio_state, n_audio_head, n_layer) of the published models; every size has 1500 audio positions,
# 448 text positions and 80 mel bands
SHAPES = {"tiny": (384, 6, 4), "base": (512, 8, 6), "small": (768, 12, 12)}
_F32, _F16 = 0, 1


def write_whisper(path: Path, size: str = "tiny", *, english: bool = True, state: int | None = None,
                  heads: int | None = None, layers: int | None = None, seed: int = 0) -> Path:
    """Write a random-weight F16 whisper model of the named size (or a smaller custom one for tests)."""
    d, h, n = SHAPES[size]
    d, h, n = state or d, heads or h, layers or n
    n_vocab = 51864 if english else 51865
    rng = np.random.default_rng(seed)
    with path.open("wb") as f:
        f.write(struct.pack("<I", 0x67676D6C))
        f.write(struct.pack("<11i", n_vocab, 1500, d, h, n, 448, d, h, n, 80, _F16))
        f.write(struct.pack("<ii", 80, 201))
        f.write((rng.random(80 * 201, dtype=np.float32) * 0.01).tobytes())
        # the decoder looks up " ", " -" and " '" by text; the rest are placeholder words
        words = [b" ", b" -", b" '"] + [f" w{i}".encode() for i in range(3, 50256 if english else 50257)]
        f.write(struct.pack("<i", len(words)))  # whisper.cpp adds the special tokens itself
        for w in words:
            f.write(struct.pack("<I", len(w)) + w)
        for name, shape, ttype in _tensors(d, n, n_vocab):
            _tensor(f, name, shape, ttype, rng)
    return path


def _tensors(d: int, n: int, n_vocab: int) -> list[tuple[str, tuple[int, ...], int]]:
    """Every tensor whisper.cpp's loader asks for, with ggml's dimension order (innermost first)."""
    out: list[tuple[str, tuple[int, ...], int]] = [
        ("encoder.positional_embedding", (d, 1500), _F32),
        ("encoder.conv1.weight", (3, 80, d), _F16), ("encoder.conv1.bias", (1, d), _F32),
        ("encoder.conv2.weight", (3, d, d), _F16), ("encoder.conv2.bias", (1, d), _F32),
        ("encoder.ln_post.weight", (d,), _F32), ("encoder.ln_post.bias", (d,), _F32),
        ("decoder.positional_embedding", (d, 448), _F32),
        ("decoder.token_embedding.weight", (d, n_vocab), _F16),
        ("decoder.ln.weight", (d,), _F32), ("decoder.ln.bias", (d,), _F32)]

    def block(prefix: str, attn: str) -> list[tuple[str, tuple[int, ...], int]]:
        return [(f"{prefix}.{attn}_ln.weight", (d,), _F32), (f"{prefix}.{attn}_ln.bias", (d,), _F32),
                (f"{prefix}.{attn}.query.weight", (d, d), _F16), (f"{prefix}.{attn}.query.bias", (d,), _F32),
                (f"{prefix}.{attn}.key.weight", (d, d), _F16),
                (f"{prefix}.{attn}.value.weight", (d, d), _F16), (f"{prefix}.{attn}.value.bias", (d,), _F32),
                (f"{prefix}.{attn}.out.weight", (d, d), _F16), (f"{prefix}.{attn}.out.bias", (d,), _F32)]

    def mlp(prefix: str) -> list[tuple[str, tuple[int, ...], int]]:
        return [(f"{prefix}.mlp_ln.weight", (d,), _F32), (f"{prefix}.mlp_ln.bias", (d,), _F32),
                (f"{prefix}.mlp.0.weight", (d, 4 * d), _F16), (f"{prefix}.mlp.0.bias", (4 * d,), _F32),
                (f"{prefix}.mlp.2.weight", (4 * d, d), _F16), (f"{prefix}.mlp.2.bias", (d,), _F32)]

    for i in range(n):
        out += mlp(f"encoder.blocks.{i}") + block(f"encoder.blocks.{i}", "attn")
    for i in range(n):
        out += mlp(f"decoder.blocks.{i}") + block(f"decoder.blocks.{i}", "attn") + block(f"decoder.blocks.{i}",
                                                                                         "cross_attn")
    return out


def _tensor(f, name: str, shape: tuple[int, ...], ttype: int, rng: np.random.Generator) -> None:  # noqa: ANN001
    count = int(np.prod(shape))
    if name.endswith("ln.weight") or name.endswith("ln_post.weight"):
        data = np.ones(count, dtype=np.float32)
    else:
        data = rng.standard_normal(count, dtype=np.float32) * 0.02
    raw = data.astype(np.float16 if ttype == _F16 else np.float32).tobytes()
    key = name.encode()
    f.write(struct.pack(f"<iii{len(shape)}i", len(shape), len(key), ttype, *shape) + key + raw)
