"""Making model files locally: another quantization of a file (llama.cpp's quantizer), the benchmark's
ladder of quantizations from one source, and random-weight files with a catalog model's exact shape."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from coach.config import Settings
from coach.errors import CoachError, ConfigError, InvalidModelFile
from coach.models.catalog import ModelRef, load_registry, resolve, save_registry
from coach.models.download import sha256_file
from coach.models.fit import check_disk
from coach.models.gguf import read_header

LADDER = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")


def build_ladder(src: str, settings: Settings, rungs: tuple[str, ...] = LADDER) -> list[ModelRef]:
    """Quantize `src` into each rung, cached by the source file's hash (a rebuilt rung is reused)."""
    ref = resolve(src, settings)
    digest = sha256_file(ref.path)[:16]
    out_dir = settings.home / "ladder" / digest
    out_dir.mkdir(parents=True, exist_ok=True)
    refs = []
    for q in rungs:
        dest = out_dir / f"{ref.path.stem.split('.')[0]}.{q}.gguf"
        if not dest.exists():
            quantize(str(ref.path), q, settings, out=dest, register=False)
        refs.append(ModelRef(dest.stem, dest, "local", q, f"{ref.title} {q}"))
    return refs


def build_shapes(spec: str, settings: Settings, *, progress: bool = True) -> list[ModelRef]:
    """`NAME[:QUANT,QUANT]`: random-weight files with the catalog model's exact shape and real tokenizer,
    one per rung, cached under $COACH_HOME/shapes (a second run reuses them). Speed and memory only."""
    from coach.models.catalog import load_catalog
    from coach.models.shapes import DIRECT, Shape, shape_bytes, write_shape

    name, _, rungs_s = spec.partition(":")
    catalog = load_catalog()
    entry = catalog.get(name)
    if entry is None or entry.shape is None:
        shaped = [m.name for m in catalog.models if m.shape is not None]
        raise ConfigError(f"no shape for {name!r} in the catalog; models with a shape: {', '.join(shaped)}")
    rungs = [r.strip().upper() for r in rungs_s.split(",") if r.strip()] or [entry.recommended]
    shape = Shape(**entry.shape.model_dump(), context_length=entry.context_length)
    out_dir = settings.home / "shapes"
    refs = []
    for q in rungs:
        dest = out_dir / f"{name}.{q}.shape.gguf"
        if not dest.exists():
            check_disk(out_dir, shape_bytes(shape, q if q in DIRECT else "Q8_0") * (1 if q in DIRECT else 2))
            if q in DIRECT:
                print(f"writing {dest.name} (random weights, {entry.title}'s shape)…", file=sys.stderr)
                write_shape(dest, shape, q, name=entry.title, progress=progress)
            else:  # llama.cpp's own quantizer from the Q8_0 shape file: slower, but any type it knows
                base = out_dir / f"{name}.Q8_0.shape.gguf"
                if not base.exists():
                    write_shape(base, shape, "Q8_0", name=entry.title, progress=progress)
                print(f"quantizing {base.name} to {q}…", file=sys.stderr)
                quantize(str(base), q, settings, out=dest, register=False)
        refs.append(ModelRef(dest.name.removesuffix(".gguf"), dest, "local", q, f"{entry.title} {q} (shape)"))
    return refs


def bench_file(settings: Settings, shape: str | None) -> ModelRef:
    """The file a benchmark script measures: a catalog model's shape (`NAME:QUANT`, written once and cached)
    or, without one, the model the settings name (the best installed by default)."""
    return build_shapes(shape, settings, progress=False)[0] if shape else resolve(settings.model, settings)


QUANT_TYPES = ("F16", "BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1",
               "Q3_K_M", "Q3_K_S", "Q3_K_L", "Q2_K", "IQ4_XS")


def quantize(src: str, qtype: str, settings: Settings, *, out: Path | None = None,
             register: bool = True) -> ModelRef:
    """Make another quantization of a local model with llama.cpp (re-quantizing is allowed)."""
    import llama_cpp

    qtype = qtype.upper()
    if qtype not in QUANT_TYPES:
        raise CoachError(f"unknown quant type {qtype}; choose one of: {', '.join(QUANT_TYPES)}")
    src_ref = resolve(src, settings)
    info = read_header(src_ref.path)
    dest = out or settings.models_dir / f"{info.path.stem.split('.')[0]}.{qtype}.gguf"
    check_disk(dest.parent, info.size_bytes * 2)  # upper bound: F16 of a quantized source
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{qtype}")
    params.allow_requantize = True
    params.nthread = settings.n_threads
    tmp = dest.with_name(dest.name + ".partial")
    import logging

    from llama_cpp._logger import logger as llama_logger

    level = llama_logger.level
    llama_logger.setLevel(logging.WARNING)  # llama.cpp logs a line per tensor while quantizing
    with _cleanup_on_failure(tmp):
        try:
            rc = llama_cpp.llama_model_quantize(str(info.path).encode(), str(tmp).encode(), params)
        finally:
            llama_logger.setLevel(level)
        if rc != 0:
            raise InvalidModelFile(f"llama.cpp could not quantize {info.path.name} to {qtype} (code {rc})")
        os.replace(tmp, dest)
    ref = ModelRef(dest.stem, dest, "local", qtype, f"{info.name} {qtype}")
    if register:
        reg = load_registry(settings)
        reg[ref.name] = {"path": str(dest), "quant": qtype, "title": ref.title, "made_by": "quantize"}
        save_registry(settings, reg)
    return ref


@contextlib.contextmanager
def _cleanup_on_failure(tmp: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
