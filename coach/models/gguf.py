"""Read a GGUF header without loading the model: validate the file and learn what it needs.

We check the magic, the version, every metadata entry and every tensor's extent against the file
size, so a truncated download or a renamed text file is refused with a clear message before
llama.cpp ever sees it.

A crafted header is refused before anything is allocated for it: every count and length is bounded by
what the bytes left in the file can hold and by what any real model has (`LIMITS`), and the shape numbers
llama.cpp asserts on (a failed GGML_ASSERT aborts the whole process, UI and all) are checked here first:
a block count of 1 to 512 (LLAMA_MAX_LAYERS), no more next-token layers than blocks, at most 512 experts
with 1 to that many used.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from coach.errors import InvalidModelFile, ModelNotFound

MAGIC = b"GGUF"
_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_KEPT_ARRAY = 64  # token lists etc. are summarised by their length, not kept

# What any real model has, with room to spare: a header claiming more is crafted or corrupt.
MAX_TENSORS = 1 << 16  # DeepSeek-V3 has about 1,100; a 512-layer model with 100 tensors a layer fits
MAX_KV = 1 << 16  # metadata entries: real files have 20 to 60
MAX_ARRAY = 1 << 24  # elements of one metadata array: vocabularies are up to 262,144 tokens, merges ~1M
MAX_STRING = 16 << 20  # bytes of one string: chat templates are tens of KiB
MAX_LAYERS = 512  # llama.cpp's LLAMA_MAX_LAYERS: more aborts the process in load_hparams
MAX_EXPERTS = 512  # llama.cpp's LLAMA_MAX_EXPERTS (Qwen3-Next has 512, Kimi K2 384)

# ggml tensor type -> (elements per block, bytes per block)
_TYPE_SIZES = {
    0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
    10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
    16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
    22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
    29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66), 39: (32, 17),
}

# llama_ftype (general.file_type) -> the quantization name users know
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M",
    18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S",
    25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M",
    32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
}


@dataclass
class GGUFInfo:
    path: Path
    version: int
    size_bytes: int
    tensor_count: int
    metadata: dict[str, Any] = field(repr=False)
    layer_bytes: dict[int, int] = field(default_factory=dict, repr=False)  # blk.N.* tensors' bytes, by N

    def _arch(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    @property
    def quant(self) -> str:
        ft = self.metadata.get("general.file_type")
        return FILE_TYPES.get(int(ft), f"type{ft}") if ft is not None else "unknown"

    @property
    def n_ctx_train(self) -> int:
        return int(self._arch("context_length", 2048))

    @property
    def n_layer(self) -> int:
        return int(self._arch("block_count", 0))

    @property
    def chat_template(self) -> str | None:
        t = self.metadata.get("tokenizer.chat_template")
        return str(t) if t else None

    def kv_bytes_per_token(self) -> int:
        """K and V at f16 for every layer: what one token of context costs in memory."""
        n_embd = int(self._arch("embedding_length", 0))
        n_head = int(self._arch("attention.head_count", 1)) or 1
        n_head_kv = self._arch("attention.head_count_kv", n_head)
        if isinstance(n_head_kv, list):  # per-layer counts in some architectures
            n_head_kv = max(n_head_kv)
        k_dim = int(self._arch("attention.key_length", n_embd // n_head))
        v_dim = int(self._arch("attention.value_length", n_embd // n_head))
        return self.n_layer * int(n_head_kv) * (k_dim + v_dim) * 2

    def estimate_ram(self, n_ctx: int, kv_cells: int | None = None) -> int:
        """Weights (held once) + KV cache + compute buffers (rough, safe side).

        `kv_cells` is the whole cache when several speakers each keep a context of `n_ctx` (default:
        one context)."""
        cells = kv_cells if kv_cells is not None else min(n_ctx, self.n_ctx_train)
        return self.size_bytes + cells * self.kv_bytes_per_token() + 256 * 2**20


class _Reader:
    """A header reader that never allocates more than the file holds: every length a header declares
    is checked against the bytes left before it is read (a crafted 2^40-element array is refused, not
    allocated)."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    def left(self) -> int:
        return self.size - self.f.tell()

    def need(self, n: int, what: str) -> None:
        if n > self.left():
            raise ValueError(f"{what} declares {n:,} bytes but the file has {self.left():,} left")

    @staticmethod
    def most(n: int, limit: int, what: str) -> None:
        if n > limit:
            raise ValueError(f"{what} is {n:,}; no real model has more than {limit:,}")

    def read(self, n: int) -> bytes:
        if n > self.left():
            raise EOFError
        b = self.f.read(n)
        if len(b) != n:
            raise EOFError
        return b

    def skip(self, n: int) -> None:
        if n > self.left():
            raise EOFError
        self.f.seek(n, 1)


MAX_DIMS = 4  # GGML_MAX_DIMS


def _scalar(r: _Reader, t: int) -> Any:
    fmt = _SCALARS[t]
    return struct.unpack(fmt, r.read(struct.calcsize(fmt)))[0]


def _string(r: _Reader) -> str:
    (n,) = struct.unpack("<Q", r.read(8))
    r.most(n, MAX_STRING, "a string's length")
    r.need(n, "a string")
    return r.read(n).decode("utf-8", errors="replace")


def _skip_string(r: _Reader) -> None:
    (n,) = struct.unpack("<Q", r.read(8))
    r.most(n, MAX_STRING, "a string's length")
    r.skip(n)


def _value(r: _Reader, t: int, depth: int = 0) -> Any:
    if t in _SCALARS:
        return _scalar(r, t)
    if t == _STRING:
        return _string(r)
    if t == _ARRAY:
        if depth > 2:
            raise ValueError("metadata arrays nested too deep")
        (et,) = struct.unpack("<I", r.read(4))
        (n,) = struct.unpack("<Q", r.read(8))
        r.most(n, MAX_ARRAY, "a metadata array's length")
        if et in _SCALARS:  # skipped, keeping only short arrays
            size = struct.calcsize(_SCALARS[et])
            r.need(size * n, "a metadata array")
            if n <= _MAX_KEPT_ARRAY:
                return list(struct.unpack("<" + _SCALARS[et][1] * n, r.read(size * n)))
            r.skip(size * n)
            return {"array_of": et, "length": n}
        if et not in (_STRING, _ARRAY):
            raise ValueError(f"unknown metadata array type {et}")
        r.need(8 * n, "a metadata array")  # every element takes at least its 8-byte length
        if n <= _MAX_KEPT_ARRAY:
            return [_value(r, et, depth + 1) for _ in range(n)]
        for _ in range(n):  # a vocabulary: read past, not kept
            if et == _STRING:
                _skip_string(r)
            else:
                _value(r, et, depth + 1)
        return {"array_of": et, "length": n}
    raise ValueError(f"unknown metadata value type {t}")


def _count(meta: dict[str, Any], key: str) -> int | None:
    """A count from the metadata: an integer, or the largest of a per-layer list; None when absent."""
    v = meta.get(key)
    if v is None:
        return None
    if isinstance(v, dict):  # a per-layer list longer than any model has layers
        raise ValueError(f"{key} lists {v.get('length', 0):,} values; no real model has more than {MAX_LAYERS}")
    if isinstance(v, list):
        if not all(isinstance(x, int) for x in v):
            raise ValueError(f"{key} is not a list of counts")
        return max(v, default=0)
    if not isinstance(v, int) or isinstance(v, bool):
        raise ValueError(f"{key} is not a count")
    return v


def _check_shape(meta: dict[str, Any], n_tensors: int) -> None:
    """The shape numbers llama.cpp asserts on (an abort, not an error it returns), and our own estimates
    loop over, checked before either sees them."""
    arch = str(meta.get("general.architecture", ""))
    blocks = _count(meta, f"{arch}.block_count")
    if blocks is not None:
        if not 1 <= blocks <= MAX_LAYERS:
            raise ValueError(f"block_count {blocks:,}: llama.cpp takes 1 to {MAX_LAYERS} layers")
        if blocks > n_tensors:
            raise ValueError(f"block_count {blocks:,} with only {n_tensors:,} tensors")
    nextn = _count(meta, f"{arch}.nextn_predict_layers") or 0
    if nextn > (blocks or 0):
        raise ValueError(f"nextn_predict_layers {nextn:,} is more than the {blocks or 0} blocks")
    experts = _count(meta, f"{arch}.expert_count") or 0
    used = _count(meta, f"{arch}.expert_used_count") or 0
    if experts > MAX_EXPERTS:
        raise ValueError(f"expert_count {experts:,}: llama.cpp takes at most {MAX_EXPERTS}")
    if experts and not 1 <= used <= experts or not experts and used:
        raise ValueError(f"expert_used_count {used:,} with expert_count {experts:,}")


def read_header(path: str | Path) -> GGUFInfo:
    """Parse and validate a GGUF file's header; raise a one-line, actionable error otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelNotFound(f"{p}: no such file; check the path or run `coach models list`")
    if not p.is_file():
        raise InvalidModelFile(f"{p}: not a regular file; pass the path of a .gguf file")
    size = p.stat().st_size
    try:
        with p.open("rb") as f:
            r = _Reader(f, size)
            if r.read(4) != MAGIC:
                raise InvalidModelFile(
                    f"{p}: not a GGUF file (bad magic); convert it with llama.cpp's convert_hf_to_gguf.py "
                    "or download a .gguf"
                )
            version, n_tensors, n_kv = struct.unpack("<IQQ", r.read(20))
            if version not in (2, 3):
                raise InvalidModelFile(f"{p}: GGUF version {version} is not supported; re-convert the model")
            r.most(n_kv, MAX_KV, "the metadata count")
            r.most(n_tensors, MAX_TENSORS, "the tensor count")
            r.need(n_kv * 12, "the metadata count")  # a key (8-byte length) and a type (4) at least
            r.need(n_tensors * 24, "the tensor count")  # name length, dims, type, offset at least
            meta: dict[str, Any] = {}
            for _ in range(n_kv):
                key = _string(r)
                (t,) = struct.unpack("<I", r.read(4))
                meta[key] = _value(r, t)
            end = 0
            layers: dict[int, int] = {}
            for _ in range(n_tensors):
                name = _string(r)
                (n_dims,) = struct.unpack("<I", r.read(4))
                if not 1 <= n_dims <= MAX_DIMS:
                    raise ValueError(f"a tensor with {n_dims} dimensions")
                dims = struct.unpack(f"<{n_dims}Q", r.read(8 * n_dims))
                ttype, offset = struct.unpack("<IQ", r.read(12))
                n_el = 1
                for d in dims:
                    n_el *= d
                blk, nbytes = _TYPE_SIZES.get(ttype, (1, 0))
                end = max(end, offset + (n_el // blk) * nbytes)
                if name.startswith("blk.") and name.split(".")[1].isdigit():
                    i = int(name.split(".")[1])
                    layers[i] = layers.get(i, 0) + (n_el // blk) * nbytes
            align = int(meta.get("general.alignment", 32))
            if not 1 <= align <= 1 << 20:
                raise ValueError(f"alignment {align}")
            data_start = -(-f.tell() // align) * align
            _check_shape(meta, n_tensors)
    except EOFError:
        raise InvalidModelFile(f"{p}: truncated GGUF header; the download was cut short, pull it again") from None
    except (ValueError, struct.error, UnicodeDecodeError, TypeError, OverflowError) as exc:
        raise InvalidModelFile(f"{p}: corrupt GGUF header ({exc}); download the file again") from None
    except OSError as exc:
        raise InvalidModelFile(f"{p}: cannot be read ({exc.strerror or exc}); check its permissions") from None
    if n_tensors == 0:
        raise InvalidModelFile(f"{p}: a GGUF header with no tensors (no weights); use the complete model file")
    if data_start + end > size:
        missing = data_start + end - size
        raise InvalidModelFile(
            f"{p}: truncated GGUF ({missing:,} bytes of tensor data missing); pull or copy the file again"
        )
    return GGUFInfo(path=p, version=version, size_bytes=size, tensor_count=n_tensors, metadata=meta,
                    layer_bytes=layers)
