"""The one way a backend is built from `Settings`, and the holder that swaps the loaded model safely.

The UI, the CLI and the benchmark scripts all load through `load_backend`, so a setting (context,
threads, GPU layers, seed, a model server's address) reaches the engine by one route.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

from coach.config import Settings
from coach.engine import ChatBackend, LlamaBackend
from coach.errors import CoachError
from coach.models import ModelRef, resolve


@dataclass(frozen=True)
class ServerRef:
    """The model a model server serves: what the UI and CLI show in place of a local file."""

    url: str
    what: str = ""  # the server's own description, once connected

    @property
    def name(self) -> str:
        return f"server:{self.url}"

    is_embedded = False

    def describe(self) -> str:
        return self.what or f"the model server at {self.url}"


def target(settings: Settings) -> ModelRef | ServerRef:
    """What the settings run: a model server (`--backend`) or a local GGUF."""
    return ServerRef(settings.backend) if settings.backend else resolve(settings.model, settings)


def load_backend(settings: Settings, ref: ModelRef | ServerRef | None = None, **engine: Any) -> ChatBackend:
    """A model server when the settings name one, else `ref` (default: the model the settings name, else
    the best installed) with the settings' context, threads, GPU layers and seed; `engine` overrides one
    of them or passes another engine option (a benchmark's `slots=1`)."""
    ref = ref or target(settings)
    if isinstance(ref, ServerRef):
        from coach.engine.remote import RemoteBackend

        return RemoteBackend(ref.url, api_key=os.environ.get("COACH_BACKEND_KEY") or None)  # vLLM/llama-server --api-key
    opts: dict[str, Any] = {"n_ctx": settings.n_ctx, "n_threads": settings.n_threads,
                            "n_gpu_layers": settings.n_gpu_layers, "seed": settings.seed, **engine}
    return LlamaBackend(ref.path, **opts)


def describe(ref: ModelRef | ServerRef, backend: Any) -> str:
    """The model running: a local file's title, or what the model server says it serves."""
    return backend.describe() if isinstance(ref, ServerRef) else ref.describe()


class ModelHolder:
    """The one loaded model that every browser tab shares. `use(name)` loads another one and only then
    swaps it in under a lock, so a failed load leaves the running model in place. With a model server
    the server holds the model, and `use` refuses another."""

    def __init__(self, settings: Settings, backend: ChatBackend | None = None) -> None:
        self.settings = settings
        ref = target(settings)
        self.backend: Any = backend or load_backend(settings, ref)
        if isinstance(ref, ServerRef):
            ref = ServerRef(ref.url, describe(ref, self.backend))
        self.ref: ModelRef | ServerRef = ref
        self._lock = threading.Lock()

    @property
    def remote(self) -> bool:
        return isinstance(self.ref, ServerRef)

    def use(self, name: str) -> None:
        if not name or name == self.ref.name:
            return
        if isinstance(self.ref, ServerRef):
            raise CoachError(f"this coach runs on the model server at {self.ref.url}; the model is chosen there "
                             "(restart the coach without --backend to pick a local one)")
        with self._lock:
            ref = resolve(name, self.settings)
            backend = load_backend(self.settings, ref)
            old, self.backend, self.ref = self.backend, backend, ref
            old.close()

    def describe(self) -> str:
        return self.ref.describe()
