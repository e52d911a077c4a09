"""A learned check beside the rules: does this sentence read like a panelist's slip?

Rules of form and meaning (`checks.py`) catch the slips they were written from and about two thirds of new
ones: each new writer found new words for a verdict, a colleague's voice or the panelist's own answer. This
check learns the family instead. It is a logistic regression over what `Judge.signals` reads of a sentence:
its MiniLM vector (the grader's embedder, already loaded), how close it sits to the turn's question, the
hidden priorities, the answer key, a verdict and the candidate's last answer, its place in the turn, and how
close it comes to the corpus's slips and good sentences (the mean of its three nearest of each, from a bank
of their vectors that ships with the weights). `bench/wording_train.py` trains it on the labelled corpus
(an offending span's sentences against every sentence of a good voicing) and sets its threshold by
cross-validation over whole actions; `docs/wording.md` has the numbers. A sentence it refuses ends the
model's wording like any other check (the written question follows); it never judges the chair's note.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

KINDS = ("ask", "follow_up", "contradict", "close")
WEIGHTS = "wording_slips.npz"


NEAREST = 3
DIM = 384  # the sentence vector leads the signals


@functools.cache
def _model() -> tuple[np.ndarray, float, float, np.ndarray, np.ndarray] | None:
    """(weights, bias, threshold, bank of sentence vectors, which of them are slips), or None where no
    trained file ships (the check is then off)."""
    try:
        with resources.files("coach.data").joinpath(WEIGHTS).open("rb") as f:
            d = np.load(f)
            return (np.asarray(d["w"], dtype=np.float32), float(d["b"]), float(d["threshold"]),
                    np.asarray(d["bank"], dtype=np.float32), np.asarray(d["bank_slip"], dtype=bool))
    except (FileNotFoundError, KeyError, OSError, ValueError):
        return None


def nearest(v: np.ndarray, bank: np.ndarray, bank_slip: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """For each row of `v`: the mean similarity of its NEAREST slips, of its NEAREST good sentences, and the
    difference. `skip` (rows x bank, True: leave out) keeps a training sentence from finding itself."""
    sims = np.atleast_2d(v) @ bank.T
    if skip is not None:
        sims = np.where(skip, -1.0, sims)
    s = np.sort(np.where(bank_slip[None, :], sims, -1.0), axis=1)[:, -NEAREST:].mean(axis=1)
    g = np.sort(np.where(~bank_slip[None, :], sims, -1.0), axis=1)[:, -NEAREST:].mean(axis=1)
    return np.stack([s, g, s - g], axis=1).astype(np.float32)


def slip(x: np.ndarray) -> float:
    """The probability that a sentence with signals `x` is a slip (0.0 when the check is off)."""
    m = _model()
    if m is None:
        return 0.0
    w, b, _, bank, bank_slip = m
    if w.shape != (len(x) + 3,) or len(x) <= DIM:
        return 0.0
    full = np.concatenate([x, nearest(x[:DIM], bank, bank_slip)[0]])
    return float(1.0 / (1.0 + np.exp(-(float(w @ full) + b))))


def threshold() -> float:
    m = _model()
    return m[2] if m is not None else 1.1
