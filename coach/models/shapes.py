"""Random-weight GGUF files with a real model's exact shape, tokenizer and chat template.

llama.cpp's speed, time to first token and memory depend on the tensor shapes and types, not on the
values, so a file with Mistral 7B's dimensions and random weights measures what the real 7B would on
this machine, before a 4 GB download. Its text is noise: never use it for quality.

The tensors are written straight at the asked quantization (random bytes in each block, with finite,
small scales), following llama.cpp's own choice of type per tensor for that rung, so a Q4_K_M shape
file has the same size and the same kernels as the published Q4_K_M (tests compare the type choice
with `llama_model_quantize` on a small file with the same layer count). Writing takes as long as the
disk needs, not the 20 minutes that an F16 file plus quantization takes on 2 cores.

The tokenizer comes from mistral-common, Mistral's reference package: its SentencePiece files (v1-v7) or
its Tekken file (Nemo, Small 3, Ministral 3: a 131,072-token BPE vocabulary written the way llama.cpp's own
converter writes it, `tokenizer.ggml.pre = tekken`), and the chat template from `coach.models.formats`.
Ministral 3 files use llama.cpp's `mistral3` architecture (YaRN RoPE and its attention temperature).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coach.errors import CoachError
from coach.models.formats import template as chat_template

# Bytes per block and block size, and where each block keeps its float16 scales (byte offsets).
_QUANT: dict[str, tuple[int, int, tuple[int, ...]]] = {
    "Q8_0": (32, 34, (0,)),
    "Q4_0": (32, 18, (0,)),
    "Q6_K": (256, 210, (208,)),
    "Q5_K": (256, 176, (0, 2)),
    "Q4_K": (256, 144, (0, 2)),
    "Q3_K": (256, 110, (108,)),
    "Q2_K": (256, 84, (80, 82)),
}
# Rungs written directly (the others are made from the Q8_0 file with llama.cpp's quantizer).
FILE_TYPES = {"F16": 1, "Q8_0": 7, "Q4_0": 2, "Q6_K": 18, "Q5_K_M": 17, "Q4_K_M": 15, "Q3_K_M": 12}
DIRECT = tuple(FILE_TYPES)


@dataclass(frozen=True)
class Shape:
    """A llama-architecture model's dimensions (what the catalog's `shape:` holds)."""

    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_vocab: int
    head_dim: int | None = None  # Nemo and Small 3: 128, not n_embd / n_head
    rope_theta: float = 1_000_000.0
    context_length: int = 32768
    tokenizer: str = "v3"  # mistral-common SentencePiece v1, v2, v3, v7, or Tekken: tekken-v3, tekken-v7, tekken-v13
    chat_format: str = "mistral-v3"
    arch: str = "llama"  # llama.cpp's architecture name: llama, or mistral3 (Ministral 3)
    tied_embeddings: bool = False  # no output.weight: the token embedding is reused (Ministral 3 3B)
    yarn_factor: float | None = None  # YaRN RoPE scaling (Ministral 3: 16 over 16,384 original positions)
    yarn_original_context: int | None = None
    attn_temperature_scale: float | None = None  # Ministral 3's position-dependent attention temperature

    @property
    def hd(self) -> int:
        return self.head_dim or self.n_embd // self.n_head

    def kv_bytes_per_token(self, bytes_per_value: int = 2) -> int:
        return 2 * self.n_layer * self.n_head_kv * self.hd * bytes_per_value


TEKKEN_VERSIONS = ("v3", "v7", "v13")


def tokenizer_file(version: str) -> Path:
    """Mistral's tokenizer file for `version`, from the mistral-common package: a SentencePiece model
    (v1-v7), or for `tekken-vN` its Tekken vocabulary declared as instruct version N."""
    import mistral_common

    data = Path(mistral_common.__file__).parent / "data"
    if version.startswith("tekken-"):
        return _tekken_file(data / "tekken_240911.json", version.removeprefix("tekken-"))
    names = {"v1": "tokenizer.model.v1", "v2": "mistral_instruct_tokenizer_240216.model.v2",
             "v3": "mistral_instruct_tokenizer_240323.model.v3", "v7": "mistral_instruct_tokenizer_241114.model.v7"}
    if version not in names:
        known = [*names, *(f"tekken-{v}" for v in TEKKEN_VERSIONS)]
        raise CoachError(f"no tokenizer {version!r} in mistral-common; known: {', '.join(known)}")
    return data / names[version]


def _tekken_file(src: Path, version: str) -> Path:
    """mistral-common ships one Tekken vocabulary (Nemo's, 131,072 tokens, 1,000 special). Newer instruct
    versions (v11+) want the special tokens listed in the file: the same vocabulary, with the known
    special tokens named in mistral-common's order, is written once under the temp folder as `tekken.json`
    (the name llama.cpp's converter and mistral-common look for)."""
    import json
    import tempfile

    from mistral_common.tokens.tokenizers.base import SpecialTokens
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer

    if version not in TEKKEN_VERSIONS:
        raise CoachError(f"no Tekken instruct version {version!r}; known: {', '.join(TEKKEN_VERSIONS)}")
    dest = Path(tempfile.gettempdir()) / f"coach-tekken-{os.getuid() if hasattr(os, 'getuid') else 0}" / \
        f"tekken-{version}" / "tekken.json"
    if dest.exists():
        return dest
    data = json.loads(src.read_text())
    data["config"]["version"] = version
    specials = [{"rank": int(t["rank"]), "token_str": str(getattr(t["token_str"], "value", t["token_str"])),
                 "is_control": bool(t["is_control"])} for t in Tekkenizer.DEPRECATED_SPECIAL_TOKENS]
    named = {t["token_str"] for t in specials}
    specials += [{"rank": len(specials) + i, "token_str": s, "is_control": True}
                 for i, s in enumerate(x.value for x in SpecialTokens if x.value not in named)]
    data["special_tokens"] = specials
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"tekken.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, dest)
    return dest


@functools.lru_cache(maxsize=4)
def _tokenizer_kv(version: str) -> dict[str, object]:
    """The vocabulary's GGUF fields, read once a process per version (fixtures write several files)."""
    if version.startswith("tekken-"):
        return _tekken_kv(version)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_file(version)))
    n = sp.get_piece_size()
    tokens, scores, types = [], [], []
    for i in range(n):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # GGUF token types follow SentencePiece's: 1 normal, 2 unknown, 3 control, 5 unused, 6 byte
        types.append(2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
                     else 5 if sp.is_unused(i) else 1)
    return {"tokens": tokens, "scores": scores, "types": types, "bos": sp.bos_id(), "eos": sp.eos_id(),
            "unk": sp.unk_id()}


def _tekken_kv(version: str) -> dict[str, object]:
    """A Tekken vocabulary as llama.cpp's converter writes it (gguf's MistralVocab): specials first as
    control tokens, then the byte-level BPE pieces, with the merges rebuilt from the ranks."""
    from gguf.vocab import MistralVocab

    vocab = MistralVocab(tokenizer_file(version).parent)
    tokens, scores, types = [], [], []
    for text, score, kind in vocab.all_tokens():
        tokens.append(text)
        scores.append(score)
        types.append(int(kind))
    return {"tokens": tokens, "scores": scores, "types": types, "bos": vocab.bos_id, "eos": vocab.eos_id,
            "unk": vocab.unk_id, "merges": vocab.extract_vocab_merges_from_model()}


def _use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def tensor_types(shape: Shape, rung: str) -> dict[str, str]:
    """Which type each tensor gets at `rung`, as llama.cpp's quantizer chooses for a llama model. With tied
    embeddings there is no output.weight and the token embedding takes its type (llama.cpp's rule)."""
    names = ["token_embd.weight"] + ([] if shape.tied_embeddings else ["output.weight"])
    for i in range(shape.n_layer):
        names += [f"blk.{i}.{t}.weight" for t in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                                    "ffn_up", "ffn_down")]
    if rung in ("F16", "Q8_0", "Q6_K"):
        return dict.fromkeys(names, rung)
    base = {"Q4_0": "Q4_0", "Q5_K_M": "Q5_K", "Q4_K_M": "Q4_K", "Q3_K_M": "Q3_K"}[rung]
    out = dict.fromkeys(names, base)
    out["token_embd.weight" if shape.tied_embeddings else "output.weight"] = "Q6_K"
    n = shape.n_layer
    for i in range(n):
        v, down, o = f"blk.{i}.attn_v.weight", f"blk.{i}.ffn_down.weight", f"blk.{i}.attn_output.weight"
        if rung in ("Q4_K_M", "Q5_K_M"):
            if _use_more_bits(i, n):
                out[v] = out[down] = "Q6_K"
        elif rung == "Q3_K_M":
            out[v] = "Q5_K" if i < 2 else "Q4_K"
            out[down] = "Q5_K" if i < n // 16 else "Q4_K"
            out[o] = "Q4_K"
    return out


def _shapes(shape: Shape) -> dict[str, tuple[int, ...]]:
    """Tensor name -> numpy-order shape (rows, columns)."""
    e, q, kv = shape.n_embd, shape.n_head * shape.hd, shape.n_head_kv * shape.hd
    out: dict[str, tuple[int, ...]] = {"token_embd.weight": (shape.n_vocab, e), "output_norm.weight": (e,)}
    if not shape.tied_embeddings:
        out["output.weight"] = (shape.n_vocab, e)
    for i in range(shape.n_layer):
        p = f"blk.{i}."
        out |= {p + "attn_norm.weight": (e,), p + "attn_q.weight": (q, e), p + "attn_k.weight": (kv, e),
                p + "attn_v.weight": (kv, e), p + "attn_output.weight": (e, q), p + "ffn_norm.weight": (e,),
                p + "ffn_gate.weight": (shape.n_ff, e), p + "ffn_up.weight": (shape.n_ff, e),
                p + "ffn_down.weight": (e, shape.n_ff)}
    return out


def _nbytes(dims: tuple[int, ...], qtype: str) -> int:
    n = int(np.prod(dims))
    if qtype == "F32":
        return 4 * n
    if qtype == "F16":
        return 2 * n
    block, size, _ = _QUANT[qtype]
    if dims[-1] % block:
        raise CoachError(f"a row of {dims[-1]} values cannot be stored as {qtype} (blocks of {block})")
    return n // block * size


def _random_data(dims: tuple[int, ...], qtype: str, rng: np.random.Generator) -> np.ndarray:
    """Random blocks whose values have a spread like trained weights (std ~0.02), all finite."""
    n = int(np.prod(dims))
    if qtype == "F32":
        return np.ones(n, dtype=np.float32)  # norm weights
    if qtype == "F16":
        return (rng.standard_normal(n, dtype=np.float32) * 0.02).astype(np.float16)
    block, size, scales = _QUANT[qtype]
    data = rng.integers(0, 256, size=(n // block, size), dtype=np.uint8)
    scale = np.float16(0.02 / 64 if qtype in ("Q8_0", "Q6_K") else 0.02 / 8 if qtype == "Q4_0" else 0.02 / 256)
    for off in scales:
        data[:, off:off + 2] = np.frombuffer(scale.tobytes(), dtype=np.uint8)
    return data.reshape(-1)


def shape_bytes(shape: Shape, rung: str) -> int:
    """The tensor data of `shape` at `rung`, in bytes (the file is this plus a few MB of header)."""
    types = tensor_types(shape, rung)
    return sum(_nbytes(d, types.get(t, "F32")) for t, d in _shapes(shape).items())


def write_shape(path: Path, shape: Shape, rung: str, *, name: str = "shape", seed: int = 0,
                chat_format: str | None = None, progress: bool = False) -> Path:
    """Write a random-weight GGUF of `shape` at `rung` (one of DIRECT) to `path`, atomically."""
    import gguf

    if rung not in DIRECT:
        raise CoachError(f"{rung} is not written directly; known: {', '.join(DIRECT)}")
    tok = _tokenizer_kv(shape.tokenizer)
    if len(tok["tokens"]) != shape.n_vocab:  # type: ignore[arg-type]
        raise CoachError(f"tokenizer {shape.tokenizer} has {len(tok['tokens'])} tokens, the shape says "  # type: ignore[arg-type]
                         f"{shape.n_vocab}")
    types = tensor_types(shape, rung)
    dims = _shapes(shape)
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(tmp), shape.arch)
    w.add_name(f"{name} (random weights: speed and memory only)")
    w.add_file_type(FILE_TYPES[rung])
    w.add_quantization_version(2)
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.n_embd)
    w.add_block_count(shape.n_layer)
    w.add_feed_forward_length(shape.n_ff)
    w.add_head_count(shape.n_head)
    w.add_head_count_kv(shape.n_head_kv)
    w.add_key_length(shape.hd)
    w.add_value_length(shape.hd)
    w.add_rope_dimension_count(shape.hd)
    w.add_rope_freq_base(shape.rope_theta)
    if shape.yarn_factor:
        w.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        w.add_rope_scaling_factor(shape.yarn_factor)
        w.add_rope_scaling_orig_ctx_len(shape.yarn_original_context or shape.context_length)
        w.add_rope_scaling_yarn_beta_fast(32.0)
        w.add_rope_scaling_yarn_beta_slow(1.0)
    if shape.attn_temperature_scale:
        w.add_attn_temperature_scale(shape.attn_temperature_scale)
        w.add_attn_temperature_length(shape.yarn_original_context or shape.context_length)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(shape.n_vocab)
    if "merges" in tok:  # Tekken: byte-level BPE
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("tekken")
        w.add_token_merges(tok["merges"])  # type: ignore[arg-type]
    else:
        w.add_tokenizer_model("llama")
        w.add_tokenizer_pre("default")
    w.add_token_list(tok["tokens"])  # type: ignore[arg-type]
    w.add_token_scores(tok["scores"])  # type: ignore[arg-type]
    w.add_token_types(tok["types"])  # type: ignore[arg-type]
    w.add_bos_token_id(int(tok["bos"]))  # type: ignore[call-overload]
    w.add_eos_token_id(int(tok["eos"]))  # type: ignore[call-overload]
    w.add_unk_token_id(int(tok["unk"]))  # type: ignore[call-overload]
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if "merges" not in tok:
        w.add_add_space_prefix(True)
    w.add_chat_template(chat_template(chat_format or shape.chat_format))
    for t, d in dims.items():
        qtype = types.get(t, "F32")
        w.add_tensor_info(t, d, np.dtype(np.float32), _nbytes(d, qtype),
                          raw_dtype=getattr(gguf.GGMLQuantizationType, qtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    fout = w.fout[0]  # type: ignore[index]
    w.write_padding(fout, fout.tell())
    rng = np.random.default_rng(seed)
    total = shape_bytes(shape, rung)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"writing {path.name}")
    for t, d in dims.items():
        qtype = types.get(t, "F32")
        if qtype not in ("F32", "F16") and int(np.prod(d)) > 64 * 2**20:  # big tensors in row chunks: bounded memory
            rows = max(1, (64 * 2**20) // d[-1])
            for r in range(0, d[0], rows):
                _random_data((min(rows, d[0] - r), *d[1:]), qtype, rng).tofile(fout)
        else:
            _random_data(d, qtype, rng).tofile(fout)
        w.write_padding(fout, _nbytes(d, qtype))
        if bar is not None:
            bar.update(_nbytes(d, qtype))
    if bar is not None:
        bar.close()
    fout.flush()
    os.fsync(fout.fileno())
    w.close()
    os.replace(tmp, path)
    return path
