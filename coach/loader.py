"""The one way a backend is built from `Settings`, and the holder that swaps the loaded model safely.

The UI, the CLI and the benchmark scripts all load through `load_backend`, so a setting (context,
threads, GPU layers, seed) reaches the engine by one route.
"""

from __future__ import annotations

import threading
from typing import Any

from coach.config import Settings
from coach.engine import LlamaBackend
from coach.models import ModelRef, resolve


def load_backend(settings: Settings, ref: ModelRef | None = None, **engine: Any) -> LlamaBackend:
    """Load `ref` (default: the model the settings name, else the best installed) with the settings'
    context, threads, GPU layers and seed; `engine` overrides one of them or passes another engine option
    (a benchmark's `slots=1`)."""
    ref = ref or resolve(settings.model, settings)
    opts: dict[str, Any] = {"n_ctx": settings.n_ctx, "n_threads": settings.n_threads,
                            "n_gpu_layers": settings.n_gpu_layers, "seed": settings.seed, **engine}
    return LlamaBackend(ref.path, **opts)


class ModelHolder:
    """The one loaded model that every browser tab shares. `use(name)` loads another one and only then
    swaps it in under a lock, so a failed load leaves the running model in place."""

    def __init__(self, settings: Settings, backend: LlamaBackend | None = None) -> None:
        self.settings = settings
        self.ref: ModelRef = resolve(settings.model, settings)
        self.backend = backend or load_backend(settings, self.ref)
        self._lock = threading.Lock()

    def use(self, name: str) -> None:
        if not name or name == self.ref.name:
            return
        with self._lock:
            ref = resolve(name, self.settings)
            backend = load_backend(self.settings, ref)
            old, self.backend, self.ref = self.backend, backend, ref
            old.close()

    def describe(self) -> str:
        return self.ref.describe()
