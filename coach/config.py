"""One `Settings`, built once at the edge; the data home and thread/GPU defaults.

Every field can be set from the environment with the `COACH_` prefix (e.g. `COACH_N_THREADS=4`),
and the CLI builds its flags (with their help) from the same fields, so configuration flows one way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import psutil

DATA_DIR = Path(__file__).resolve().parent / "data"  # the voice catalog, the labelled sets, the benchmark text


def _mapped(package: str, folder: str) -> Path:
    """A data folder that lives at the top of the repository and is installed as a package (pyproject.toml's
    package-dir): found through the import system, which knows where a wheel or an editable install put it;
    a checkout run without installing falls back to the folder itself."""
    from importlib.resources import files

    try:
        return Path(str(files(package)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / folder


PROMPTS_DIR = _mapped("coach.data.prompts", "prompts")  # personas/ and scenarios/
RUBRICS_DIR = _mapped("coach.data.rubrics", "rubrics")
CATALOG = _mapped("coach.data.models", "models") / "catalog.yaml"


def data_files(builtin: Path, own: str) -> list[Path]:
    """The YAML files of one kind: the shipped ones in `builtin`, and a user's own in `COACH_HOME/<own>/`
    (e.g. `prompts/personas`); a file of the user's with a shipped file's name replaces it."""
    from coach.errors import CoachError

    found = {f.name: f for f in sorted(builtin.glob("*.yaml"))}
    try:
        home = data_home() / own
    except CoachError:  # no home folder: the shipped files alone
        return list(found.values())
    if home.is_dir():
        found.update({f.name: f for f in sorted(home.glob("*.yaml"))})
    return sorted(found.values(), key=lambda f: f.name)


def catalog_path() -> Path:
    """The pinned model catalog; `COACH_CATALOG` points at another one (tests, private mirrors)."""
    return Path(os.environ.get("COACH_CATALOG") or CATALOG)


def data_home() -> Path:
    """Where sessions, downloaded models and caches live. `COACH_HOME` overrides it. Without it, a home
    folder that cannot be found (HOME unset and the user unknown to the system, as in some containers and
    services) or a relative one is a ConfigError asking for COACH_HOME, not a guess at the current folder."""
    env = os.environ.get("COACH_HOME")
    xdg = os.environ.get("XDG_DATA_HOME")
    try:
        if env:
            return Path(env).expanduser()
        if xdg:
            base = Path(xdg).expanduser()
        else:  # HOME="" would make Python answer "/"
            base = Path.home() / ".local" / "share" if os.environ.get("HOME", None) != "" else Path("")
    except (RuntimeError, KeyError):  # Python's "Could not determine home directory"
        base = Path("")
    if not base.is_absolute() and not env:
        from coach.errors import ConfigError

        raise ConfigError("no home folder to keep sessions in (HOME is unset or not a full path and this user has "
                          "none); set COACH_HOME to a folder, e.g. COACH_HOME=/var/lib/coach")
    return base / "coach"


def physical_cores() -> int:
    """Physical cores: llama.cpp generation is memory-bound and hyperthreads only add contention."""
    n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    return max(1, int(n))


def _flag(flag: str | None, help: str, scope: str | tuple[str, ...] = "global",
          metavar: str | None = None) -> dict[str, Any]:
    """A field's CLI flag: `scope` is "global" (before the command), a command's name, or several (the flag
    is accepted before the command and after each one named); None: no flag."""
    return {"flag": flag, "help": help, "scope": (scope,) if isinstance(scope, str) else scope, "metavar": metavar}


PANEL_COMMANDS = ("global", "ui", "rehearse", "chat", "resume")  # the commands that talk to a model


@dataclass(frozen=True)
class Settings:
    """Runtime settings shared by the UI, the CLI and the benchmark. Each field's metadata is its CLI flag
    and help text (`add_flags`); its variable is `COACH_<FIELD>`."""

    home: Path = field(default_factory=data_home, metadata=_flag(None, "data folder (COACH_HOME)"))
    model: str | None = field(default=None, metadata=_flag(
        "--model", "catalog name (name:QUANT), registered name, or .gguf path; default: the best installed model"))
    n_ctx: int = field(default=8192, metadata=_flag("--ctx", "context size (default 8192, capped at the model's)"))
    n_threads: int = field(default_factory=physical_cores, metadata=_flag(
        "--threads", "CPU threads for llama.cpp (default: physical cores)"))
    n_gpu_layers: int | None = field(default=None, metadata=_flag(
        "--gpu-layers", "layers to offload to the GPU: a number, -1 for all, or auto (default: the most that fit)",
        metavar="N|auto"))
    seed: int = field(default=42, metadata=_flag("--seed", "sampling seed (default 42)"))
    kv_cache: str = field(default="f16", metadata=_flag(
        "--kv-cache", "the KV cache's type: f16, or q8_0 for about half its memory at some decoding speed (on "
        "Ministral 3 3B here: 0.67 GB less, 12%% slower); the memory check counts f16 (default f16)",
        scope=PANEL_COMMANDS, metavar="f16|q8_0"))
    grader_threads: int | None = field(default=None, metadata=_flag(
        "--grader-threads", "torch threads for the grader (default: torch's own, all cores)"))
    backend: str | None = field(default=None, metadata=_flag(
        "--backend", "an OpenAI-compatible model server (llama.cpp server, vLLM) instead of a local model",
        scope=PANEL_COMMANDS, metavar="URL"))
    host: str = field(default="127.0.0.1", metadata=_flag(
        "--host", "address the UI binds to (default 127.0.0.1; any other needs --users or --auth-header)",
        scope="ui", metavar="ADDR"))
    recognizer: str | None = field(default=None, metadata=_flag(
        "--recognizer", "what hears spoken answers: pocketsphinx (embedded) or a pulled whisper model "
        "(default: the best pulled, else pocketsphinx)", scope=("ui", "rehearse", "voice"), metavar="NAME"))
    port: int = field(default=7860, metadata=_flag("--port", "port (default 7860)", scope="ui"))
    users_file: Path | None = field(default=None, metadata=_flag(
        "--users", "sign-in for a shared coach: a users file of hashed passwords (`coach users add`)",
        scope="ui", metavar="FILE"))
    auth_header: str | None = field(default=None, metadata=_flag(
        "--auth-header", "sign-in by a reverse proxy: the request header that carries the signed-in user",
        scope="ui", metavar="NAME"))
    trusted_proxies: tuple[str, ...] | None = field(default=None, metadata=_flag(
        "--trusted-proxy", "with --auth-header: the proxies whose header is believed, addresses or networks "
        "(repeat or comma-separate; default 127.0.0.1 and ::1; required with a --host beyond loopback)",
        scope="ui", metavar="ADDR"))
    grader_cache: Path | None = field(default=None, metadata=_flag(
        None, "where the grader keeps exemplar vectors and calibrations, keyed by their content (default "
        "COACH_HOME/cache/embeddings; several homes may share one)"))
    prefix_cache: Path | None = field(default=None, metadata=_flag(
        None, "where the engine keeps evaluated persona cards, keyed by the model file and the exact tokens "
        "(default COACH_HOME/kv-cache; several homes may share one)"))
    backend_key: str | None = field(default=None, metadata=_flag(
        None, "the model server's API key (vLLM / llama-server --api-key); a variable only, never a flag, so it "
        "stays out of the process list"))
    catalog: Path | None = field(default=None, metadata=_flag(
        "--catalog", "a model catalog YAML of your own (private mirrors; default: the shipped one)", metavar="FILE"))
    voice_catalog: Path | None = field(default=None, metadata=_flag(
        "--voice-catalog", "a voice catalog YAML of your own (default: the shipped one)",
        scope=("global", "voice"), metavar="FILE"))
    llama_server: Path | None = field(default=None, metadata=_flag(
        "--llama-server", "llama.cpp's llama-server binary for `coach serve-model` (default: on PATH or beside "
        "this Python)", scope="serve-model", metavar="PATH"))

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def kv_cache_dir(self) -> Path:
        """Evaluated persona cards, per model file and exact tokens (the engine's on-disk prefix cache)."""
        return self.prefix_cache or self.home / "kv-cache"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Defaults, then `COACH_*` variables, then explicit overrides (CLI flags, UI controls)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"COACH_{f.name.upper()}")
            if raw is None or f.name == "home" or raw == "" and f.name in _OPTIONAL:
                continue
            values[f.name] = _coerce(f.name, raw)
        base = cls(**values)
        clean: dict[str, Any] = {k: None if v == AUTO else v for k, v in overrides.items() if v is not None}
        settings = replace(base, **clean)
        settings.validate()
        return settings

    def export(self) -> None:
        """Hand the file settings that modules read where no `Settings` reaches them (the catalogs, the
        llama-server binary) to the environment, for them and for child processes. Called once, at the edge."""
        for name in _EXPORTED:
            value = getattr(self, name)
            if value is not None:
                os.environ[f"COACH_{name.upper()}"] = str(value)

    def validate(self) -> None:
        """Refuse values that cannot work, naming the flag and the variable, before anything loads."""
        from coach.errors import ConfigError

        cores = os.cpu_count() or 1
        limits = {"n_ctx": (256, 1 << 20), "n_threads": (1, cores), "n_gpu_layers": (-1, 10_000),
                  "port": (1, 65535), "seed": (0, 2**32 - 1), "grader_threads": (1, cores)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if v is None:
                continue
            if not lo <= v <= hi:
                flag = _META[name]["flag"] or name
                why = f" (this machine has {cores} logical cores)" if name == "n_threads" else ""
                raise ConfigError(f"{flag} {v} is out of range: use {lo} to {hi}{why}; "
                                  f"set by the flag or COACH_{name.upper()}")
        if self.kv_cache not in ("f16", "q8_0"):
            raise ConfigError(f"--kv-cache {self.kv_cache!r}: use f16 or q8_0 (COACH_KV_CACHE)")
        if self.backend is not None:
            server_url(self.backend)  # a typo is said now, not after the grader has loaded
        if self.home.exists() and not self.home.is_dir():
            raise ConfigError(f"COACH_HOME {self.home} is a file, not a folder; point COACH_HOME at a folder")


def server_url(url: str) -> str:
    """A model server's address (`http://host:port`, with or without `/v1`) -> its API root ending in `/v1`."""
    from urllib.parse import urlsplit

    from coach.errors import ConfigError

    u = url.strip().rstrip("/")
    parts = urlsplit(u)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--backend {url!r} is not a server address; use http://HOST:PORT (COACH_BACKEND)")
    return u if u.endswith("/v1") else u + "/v1"


AUTO = "auto"
_META = {f.name: f.metadata for f in fields(Settings)}
_INT_FIELDS = {"n_ctx", "n_threads", "n_gpu_layers", "seed", "port", "grader_threads"}
_PATHS = {"users_file", "catalog", "voice_catalog", "llama_server", "grader_cache", "prefix_cache"}
_OPTIONAL = {"model", "n_gpu_layers", "grader_threads", "backend", "users_file", "auth_header", "trusted_proxies",
             "backend_key", *_PATHS}
_EXPORTED = ("catalog", "voice_catalog", "llama_server")
_MANY = {"trusted_proxies"}  # a flag given several times, or a comma-separated list  # None means "choose for me"


def _coerce(name: str, raw: str) -> Any:
    if name == "n_gpu_layers" and raw.strip().lower() == "auto":
        return None
    if name in _INT_FIELDS:
        try:
            return int(raw)
        except ValueError as exc:
            from coach.errors import ConfigError

            raise ConfigError(f"COACH_{name.upper()}={raw!r} is not an integer; fix or unset it") from exc
    if name in _PATHS:
        return Path(raw).expanduser()
    if name in _MANY:
        return tuple(x.strip() for x in raw.split(",") if x.strip())
    return raw


def add_flags(parser: Any, scope: str = "global", *, after_command: bool = False) -> None:
    """Add the flags of every Settings field in `scope` to an argparse parser, help text included.
    `after_command`: the parser is a command's, and the global flags are added to it too (`coach rehearse
    --model X` as well as `coach --model X rehearse`); a flag the parser already has is left alone."""
    import argparse

    def typed(name: str) -> Any:
        def parse(raw: str) -> Any:
            from coach.errors import ConfigError

            if name == "n_gpu_layers" and raw.strip().lower() == AUTO:
                return AUTO  # explicit: wins over COACH_N_GPU_LAYERS
            try:
                return _coerce(name, raw)
            except ConfigError:
                raise argparse.ArgumentTypeError(f"{raw!r} is not an integer"
                                                 + (" or auto" if name == "n_gpu_layers" else "")) from None

        parse.__name__ = "auto or an integer" if name == "n_gpu_layers" else "integer"
        if name in _PATHS:
            return lambda raw: Path(raw).expanduser()
        return parse if name in _INT_FIELDS else str

    for f in fields(Settings):
        meta = f.metadata
        wanted = scope in meta.get("scope", ()) or after_command and "global" in meta.get("scope", ())
        if meta.get("flag") and wanted and meta["flag"] not in parser._option_string_actions:
            metavar = meta.get("metavar") or ("N" if f.name in _INT_FIELDS else "NAME")
            # after a command, an absent flag must not overwrite the same flag given before it
            default = None if scope == "global" and not after_command else argparse.SUPPRESS
            if f.name in _MANY:
                parser.add_argument(meta["flag"], dest=f.name, action="append", metavar=metavar,
                                    help=meta["help"] + f" [COACH_{f.name.upper()}]", default=default)
                continue
            parser.add_argument(meta["flag"], dest=f.name, type=typed(f.name), metavar=metavar,
                                help=meta["help"] + f" [COACH_{f.name.upper()}]", default=default)


def overrides(args: Any) -> dict[str, Any]:
    """The Settings values an argparse namespace carries (the flags `add_flags` added, of any scope)."""
    values = {f.name: getattr(args, f.name) for f in fields(Settings) if getattr(args, f.name, None) is not None}
    for name in _MANY & values.keys():
        values[name] = _coerce(name, ",".join(values[name]))
    return values
