"""After the round, what each panelist was really testing: its agenda and hidden priorities (from the persona),
and for each priority the candidate's sentence that spoke to it, quoted whole with the grade behind it, or
"not shown".

A sentence speaks to a priority when it is close in meaning (the grader's embedder) to one of the priority's
signs: what an answer that shows the candidate on that priority says, written in the persona file
(`signs`), or the priority itself where it has none. The threshold was chosen on the training part of a
helper-written labelled set (tests/data/reveal/answers.yaml) and measured on the part kept aside
(docs/grader.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from coach.grading.answer import split_sentences
from coach.grading.embedder import Embedder

SPEAKS_AT = 0.41  # cosine from which a clause speaks to a sign: best accuracy on the training part (0.80)
# a sentence's clauses are read too: "I hear you, but I keep my plan: the date moves a week" shows the stance
# in its first clause, and the rest of the sentence would drown it
CLAUSE = re.compile(r"[:;\u2014]| - |,\s*(?=but |so |and then |because )")
NOT_SHOWN = "not shown"


@dataclass
class Answered:
    """One graded answer as the reveal reads it."""

    n: int  # its number in the debrief (1-based)
    panelist: str  # who asked
    answer: str
    score: float


@dataclass
class Shown:
    priority: str
    quote: str | None = None  # the candidate's sentence, whole; None: not shown
    n: int | None = None  # which answer it came from
    asked_by: str = ""  # who asked that question
    score: float | None = None  # that answer's grade
    similarity: float = 0.0

    @property
    def line(self) -> str:
        if self.quote is None:
            return f"{self.priority} — {NOT_SHOWN} in any answer."
        return f"{self.priority} — answer {self.n} (to {self.asked_by}, {self.score:.1f}/5): “{self.quote}”"


@dataclass
class Reveal:
    """One panelist's hidden side, shown after the round."""

    panelist: str
    name: str
    agenda: str
    priorities: list[Shown] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"panelist": self.panelist, "name": self.name, "agenda": self.agenda,
                "priorities": [{"priority": s.priority, "quote": s.quote, "answer": s.n, "asked_by": s.asked_by,
                                "score": s.score, "shown": s.quote is not None} for s in self.priorities]}


def clauses(sentence: str) -> list[str]:
    """The sentence itself, then its clauses of four words or more."""
    parts = [c.strip(" ,") for c in CLAUSE.split(sentence)]
    return [sentence] + [c for c in parts if len(c.split()) >= 4 and c != sentence]


def reveal(personas: dict[str, Any], answers: list[Answered], embedder: Embedder,
           names: dict[str, str] | None = None) -> list[Reveal]:
    """Each panelist of `personas` (id -> Persona) that asked something, with its hidden priorities and the
    sentence that spoke to each (any answer counts: a priority shows wherever the candidate shows it). The
    answers' sentences and clauses and every priority's signs are embedded once, in one call."""
    names = names or {}
    asked = {a.panelist for a in answers}
    panel = [(pid, p) for pid, p in personas.items() if pid in asked]
    sents = [(i, s) for i, a in enumerate(answers) for s in split_sentences(a.answer) if len(s.split()) >= 3]
    reads = [(k, c) for k, (_, s) in enumerate(sents) for c in clauses(s)]  # (sentence index, text read)
    signs = {(pid, pr): list(p.signs.get(pr) or [pr]) for pid, p in panel for pr in p.hidden_priorities}
    vecs = embedder.embed([c for _, c in reads] + [x for group in signs.values() for x in group]) if reads else None
    out, at = [], len(reads)  # `at`: the next priority's first sign row in `vecs`
    for pid, p in panel:
        r = Reveal(pid, names.get(pid, p.name), p.agenda)
        for pr in p.hidden_priorities:
            n = len(signs[pid, pr])
            if vecs is None:
                r.priorities.append(Shown(pr))
                continue
            sims = (vecs[:len(reads)] @ vecs[at:at + n].T).max(axis=1)  # each read's closest sign
            at += n
            best = int(np.argmax(sims))
            i, sentence = sents[reads[best][0]]
            if sims[best] >= SPEAKS_AT:
                a = answers[i]
                r.priorities.append(Shown(pr, sentence, a.n, names.get(a.panelist, a.panelist), a.score,
                                          float(sims[best])))
            else:
                r.priorities.append(Shown(pr, similarity=float(sims[best])))
        out.append(r)
    return out
