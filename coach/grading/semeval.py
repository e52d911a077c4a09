"""SemEval-2013 Task 7 (2-way) as a public development set for the grader.

Each XML file is one question with reference answers and student answers labelled correct/incorrect
(Dzikovska et al., 2013; Beetle and SciEntsBank). A question becomes a rubric `Question`: its reference
answers are the good exemplars and the first is its key point; for an *unseen answers* question (one that also appears
in `training/`) up to `K` correct and `K` incorrect training answers join the good and bad exemplars, as a
user's own exemplars would. *Unseen questions* and *unseen domains* have no training answers: they are
graded against their reference answers alone. Thresholds are tuned on `training/` only (each training
question graded with its own first answers as exemplars and the rest as the test); the test splits are
reported, never tuned on.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from coach.errors import ConfigError
from coach.grading.rubrics import Bank, KeyPoint, Question

K = 3  # exemplars of each kind taken from training answers, where the question has them
SPLITS = ("unseen-answers", "unseen-questions", "unseen-domains")
CORPORA = ("beetle", "sciEntsBank")


@dataclass
class Item:
    question: Question
    answer: str
    correct: bool


@dataclass
class Split:
    name: str  # "beetle unseen-answers", ...
    kind: str  # one of SPLITS, or "training"
    bank: Bank
    items: list[Item] = field(default_factory=list)


@dataclass
class RawQuestion:
    id: str
    text: str
    references: list[str]
    answers: list[tuple[str, bool]]


def _qid(raw: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", raw.lower()).strip("-.") or "q"


def read_xml(path: Path) -> RawQuestion:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise ConfigError(f"{path}: not a SemEval question file ({exc})") from None
    text = (root.findtext("questionText") or "").strip()
    refs = [(r.text or "").strip() for r in root.iter("referenceAnswer") if (r.text or "").strip()]
    best = [(r.text or "").strip() for r in root.iter("referenceAnswer")
            if r.get("category", "BEST") == "BEST" and (r.text or "").strip()]
    answers = [((a.text or "").strip(), a.get("accuracy") == "correct") for a in root.iter("studentAnswer")]
    return RawQuestion(_qid(root.get("id") or path.stem), text, best or refs, answers)


def to_question(raw: RawQuestion, good: list[str], bad: list[str]) -> Question:
    """The rubric question the grader sees: references (and training exemplars) as good answers; the
    first reference as the key point. Built without the rubric's minimum counts (a public question may have one
    reference and no bad exemplar); the grader copes with that."""
    # the references are alternatives (Beetle lists several ways to say one answer), not parts: the first
    # one is the key point; the others are good answers
    kps = [KeyPoint(text=r if len(r) >= 8 else f"{r} (reference)") for r in raw.references[:1]]
    while len(kps) < 2:
        kps.append(kps[0])
    return Question.model_construct(
        id=raw.id, text=raw.text or raw.id, asked_by="researcher", time_box_s=180, tension=False, weights=None,
        key_points=kps, red_flags=[], reference=None, good=[*raw.references, *good], bad=list(bad))


def _files(d: Path) -> list[Path]:
    return sorted(d.glob("*.xml"))


def load(root: Path, splits: tuple[str, ...] = ("training", *SPLITS)) -> list[Split]:
    """The splits under `root` (the folder holding training/ and test/), each corpus apart."""
    if not (root / "training" / "2way").is_dir():
        raise ConfigError(f"{root}: no training/2way folder; point --semeval at the SemEval-2013 2-way folder")
    out: list[Split] = []
    for corpus in CORPORA:
        train = {r.id: r for r in (read_xml(p) for p in _files(root / "training" / "2way" / corpus))}
        if "training" in splits:
            out.append(_training_split(corpus, train))
        for kind in SPLITS:
            d = root / "test" / "2way" / corpus / f"test-{kind}"
            if kind not in splits or not d.is_dir():
                continue
            questions, items = [], []
            for p in _files(d):
                raw = read_xml(p)
                seen = train.get(raw.id)
                good = [a for a, ok in seen.answers if ok][:K] if seen else []
                bad = [a for a, ok in seen.answers if not ok][:K] if seen else []
                q = to_question(raw, good, bad)
                questions.append(q)
                items += [Item(q, a, ok) for a, ok in raw.answers]
            out.append(Split(f"{corpus} {kind}", kind, _bank(f"semeval-{corpus}-{kind}", questions), items))
    return out


def _training_split(corpus: str, train: dict[str, RawQuestion]) -> Split:
    """Training questions graded as an unseen-answers split would be: the first K correct and K incorrect
    answers are the exemplars, the rest are graded."""
    questions, items = [], []
    for raw in train.values():
        good = [a for a, ok in raw.answers if ok][:K]
        bad = [a for a, ok in raw.answers if not ok][:K]
        q = to_question(raw, good, bad)
        questions.append(q)
        items += [Item(q, a, ok) for a, ok in raw.answers if a not in good and a not in bad]
    return Split(f"{corpus} training", "training", _bank(f"semeval-{corpus}-training", questions), items)


def _bank(name: str, questions: list[Question]) -> Bank:
    return Bank.model_construct(bank=name, title=name, scenario=None,
                                default_weights={"technical_accuracy": 1.0}, questions=questions)


# ------------------------------------------------------------------ measures


def auc(scores: list[float] | np.ndarray, labels: list[bool] | np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance a correct answer outscores an incorrect one."""
    s, y = np.asarray(scores, float), np.asarray(labels, bool)
    if y.all() or not y.any():
        return float("nan")
    ranks = rankdata(s)  # ties share their average rank
    n1, n0 = int(y.sum()), int((~y).sum())
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def best_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The cut that classifies the most answers right (chosen on training only)."""
    cands = np.unique(scores)
    accs = [((scores >= t) == labels).mean() for t in cands]
    return float(cands[int(np.argmax(accs))])


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


class MemoEmbedder:
    """An embedder that remembers every text it has embedded: the public set repeats many short texts,
    and embedding them all in one batch first is far faster than answer by answer."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.name = inner, inner.name
        self.memo: dict[str, np.ndarray] = {}

    def prime(self, texts: list[str]) -> None:
        todo = list(dict.fromkeys(t for t in texts if t not in self.memo))
        for i in range(0, len(todo), 512):
            chunk = todo[i:i + 512]
            for t, v in zip(chunk, self.inner.embed(chunk), strict=True):
                self.memo[t] = v

    def embed(self, texts: list[str]) -> np.ndarray:
        self.prime(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts])
