"""One `Settings`, built once at the edge; the data home and thread/GPU defaults.

Every field can be set from the environment with the `COACH_` prefix (e.g. `COACH_THREADS=4`),
and the CLI builds its flags from the same fields, so configuration flows one way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import psutil

DATA_DIR = Path(__file__).resolve().parent / "data"  # prompts, rubrics, the catalog: shipped inside the package


def catalog_path() -> Path:
    """The pinned model catalog; `COACH_CATALOG` points at another one (tests, private mirrors)."""
    return Path(os.environ.get("COACH_CATALOG") or DATA_DIR / "catalog.yaml")


def data_home() -> Path:
    """Where sessions, downloaded models and caches live. `COACH_HOME` overrides it."""
    env = os.environ.get("COACH_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "coach"


def physical_cores() -> int:
    """Physical cores: llama.cpp generation is memory-bound and hyperthreads only add contention."""
    n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, int(n))


@dataclass(frozen=True)
class Settings:
    """Runtime settings shared by the UI, the CLI and the benchmark."""

    home: Path = field(default_factory=data_home)
    model: str | None = None  # catalog name (`name:QUANT`), a registered name, or a .gguf path
    n_ctx: int = 8192  # capped at the model's trained context by the engine
    n_threads: int = field(default_factory=physical_cores)
    n_gpu_layers: int | None = None  # None = auto: all layers when offload is supported and fits
    seed: int = 42
    host: str = "127.0.0.1"
    port: int = 7860

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def kv_cache_dir(self) -> Path:
        """Evaluated persona cards, per model file and exact tokens (the engine's on-disk prefix cache)."""
        return self.home / "kv-cache"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then `COACH_*` variables, then explicit overrides (CLI flags, UI controls)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"COACH_{f.name.upper()}")
            if raw is None or f.name == "home":
                continue
            values[f.name] = _coerce(f.name, raw)
        base = cls(**values)
        clean = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(base, **clean)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse values that cannot work, naming the flag and the variable, before anything loads."""
        from coach.errors import ConfigError

        cores = os.cpu_count() or 1
        limits = {"n_ctx": (256, 1 << 20), "n_threads": (1, cores), "n_gpu_layers": (-1, 10_000),
                  "port": (1, 65535), "seed": (0, 2**32 - 1)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if v is None:
                continue
            if not lo <= v <= hi:
                flag = _FLAGS.get(name, name)
                why = f" (this machine has {cores} logical cores)" if name == "n_threads" else ""
                raise ConfigError(f"{flag} {v} is out of range: use {lo} to {hi}{why}; "
                                  f"set by the flag or COACH_{name.upper()}")
        if self.home.exists() and not self.home.is_dir():
            raise ConfigError(f"COACH_HOME {self.home} is a file, not a folder; point COACH_HOME at a folder")


_FLAGS = {"n_ctx": "--ctx", "n_threads": "--threads", "n_gpu_layers": "--gpu-layers", "port": "--port",
          "seed": "--seed"}


_INT_FIELDS = {"n_ctx", "n_threads", "n_gpu_layers", "seed", "port"}


def _coerce(name: str, raw: str) -> Any:
    if name in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError as exc:
            from coach.errors import ConfigError

            raise ConfigError(f"COACH_{name.upper()}={raw!r} is not an integer; fix or unset it") from exc
    return raw
