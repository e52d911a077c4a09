"""Write small GGUF files for tests: valid headers with chosen metadata and tensor data."""

from __future__ import annotations

import struct
from pathlib import Path


def _s(text: str) -> bytes:
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def write_gguf(path: Path, *, arch: str = "llama", tensor_bytes: int = 4096, extra: dict[str, str] | None = None,
               counts: dict[str, int] | None = None, layers: int = 0) -> Path:
    """One F32 tensor of `tensor_bytes` bytes and string/uint32 metadata; `counts` adds integer entries
    (uint64 when they do not fit 32 bits), `layers` one small blk.N tensor per layer."""
    meta: list[tuple[str, int, bytes]] = [
        ("general.architecture", 8, _s(arch)),
        ("general.name", 8, _s("tiny test model")),
        ("general.file_type", 4, struct.pack("<I", 0)),
        (f"{arch}.context_length", 4, struct.pack("<I", 512)),
    ]
    for k, v in (extra or {}).items():
        meta.append((k, 8, _s(v)))
    for k, n in (counts or {}).items():
        meta.append((k, 4, struct.pack("<I", n)) if n < 2**32 else (k, 10, struct.pack("<Q", n)))
    n_el = tensor_bytes // 4
    head = b"GGUF" + struct.pack("<IQQ", 3, 1 + layers, len(meta))
    for k, t, v in meta:
        head += _s(k) + struct.pack("<I", t) + v
    head += _s("token_embd.weight") + struct.pack("<I", 1) + struct.pack("<Q", n_el) + struct.pack("<IQ", 0, 0)
    for i in range(layers):  # 32 bytes each, after the embedding
        head += _s(f"blk.{i}.attn_norm.weight") + struct.pack("<IQ", 1, 8) + struct.pack("<IQ", 0, tensor_bytes + 32 * i)
    pad = (-len(head)) % 32
    path.write_bytes(head + b"\0" * pad + bytes(range(256)) * (tensor_bytes // 256) + b"\0" * (tensor_bytes % 256)
                     + b"\0" * (32 * layers))
    return path
