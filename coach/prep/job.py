"""A panel for your own job: the job description read line by line, every bank's questions ranked by how
close they come to it (the embedder the grader uses), and the best ones, each with the line that chose it.

Only questions that have rubrics are chosen: the coach never invents exemplars it cannot grade against. A
question is represented by its text and its key points (what the panel listens for), and scores the mean of
its three best-matching lines of the posting, so a question that one stray line mentions does not outrank one
the posting keeps coming back to. Each panelist gets at least one question, so the panel stays three voices
that disagree, and none more than half.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from coach.errors import ConfigError
from coach.grading.embedder import Embedder
from coach.grading.rubrics import Bank, load_all

PANEL_SIZE = 8  # questions on a job's panel
TOP_LINES = 3  # a question's score: the mean of its best-matching lines
MIN_WORDS, MAX_CHARS = 30, 40_000
# lines every posting has that say nothing about the work
BOILERPLATE = re.compile(r"equal opportunity|benefits|salary|compensation|\bvisa\b|accommodation|apply|401\(k\)|"
                         r"parental leave|pay range|\bequity\b|background check|e-verify", re.I)


@dataclass(frozen=True)
class Pick:
    question_id: str
    text: str
    panelist: str
    bank: str
    score: float
    reason: str  # the posting's line that matched it best


def job_lines(text: str) -> list[str]:
    """The posting's lines that describe the work: bullets and sentences, without boilerplate."""
    out = []
    # a block ends at a blank line or where a bullet starts; a line wrapped inside one is joined back
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*•·–—]\s)", text):
        joined = " ".join(block.split()).lstrip("-*•·–— ").strip()
        for sentence in re.split(r"(?<=[.!?])\s+", joined):
            if len(sentence.split()) >= 4 and not BOILERPLATE.search(sentence):
                out.append(sentence)
    return out[:200]


def check_job(text: str, where: str = "the job description") -> str:
    text = text.strip()
    if len(text) > MAX_CHARS:
        raise ConfigError(f"{where}: {len(text):,} characters; paste the posting itself (at most {MAX_CHARS:,})")
    if len(text.split()) < MIN_WORDS or len(job_lines(text)) < 2:
        raise ConfigError(f"{where}: too short to choose questions from ({len(text.split())} words); paste the "
                          f"whole posting, what the role does and what it asks for (at least {MIN_WORDS} words)")
    return text


def pick_questions(text: str, embedder: Embedder, asker: dict[str, str], banks: dict[str, Bank] | None = None,
                   size: int = PANEL_SIZE) -> list[Pick]:
    """The questions that fit the posting best, in the order the panel asks them (by panelist, the
    best-fitting panelist first), each with its score and the line that chose it. `asker`: who asks each
    question in its own scenario (else the bank's `asked_by`)."""
    lines = job_lines(check_job(text))
    banks = banks if banks is not None else load_all()
    cands = [(b, q) for b in banks.values() for q in b.questions]
    parts = [(i, t) for i, (_, q) in enumerate(cands) for t in (q.text, *(k.text for k in q.key_points))]
    vecs = embedder.embed(lines + [t for _, t in parts])
    lv, pv = vecs[: len(lines)], vecs[len(lines):]
    sim = pv @ lv.T  # question part x line
    owner = np.array([i for i, _ in parts])
    picks = []
    for i, (b, q) in enumerate(cands):
        per_line = sim[owner == i].max(axis=0)  # each line's best match among the question's parts
        top = np.sort(per_line)[::-1][:TOP_LINES]
        picks.append(Pick(q.id, q.text, asker.get(q.id, q.asked_by), b.title or b.bank, float(top.mean()),
                          lines[int(per_line.argmax())]))
    picks.sort(key=lambda p: -p.score)
    panelists = sorted({p.panelist for p in picks})
    chosen: list[Pick] = []
    for who in panelists:  # every panelist's best question first
        chosen.append(next(p for p in picks if p.panelist == who))
    cap = max(1, size // 2)
    for p in picks:
        if len(chosen) >= size:
            break
        if p not in chosen and sum(c.panelist == p.panelist for c in chosen) < cap:
            chosen.append(p)
    best = {who: max(c.score for c in chosen if c.panelist == who) for who in panelists}
    return sorted(chosen, key=lambda p: (-best[p.panelist], p.panelist, -p.score))


def job_title(text: str) -> str:
    """The posting's first line, as the panel's name ("Your job: ...")."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "your job")
    return first[:80]


def job_brief(text: str, picks: list[Pick]) -> str:
    """What the panelists are told the interview is for: the posting's title and the lines that chose most
    of their questions, in its own words."""
    counts: dict[str, int] = {}
    for p in picks:
        counts[p.reason] = counts.get(p.reason, 0) + 1
    lines = sorted(counts, key=lambda r: -counts[r])[:2]
    said = " ".join(ln if ln.endswith((".", "!", "?")) else ln + "." for ln in lines)
    return f"An interview for this role: {job_title(text)}. From the posting: {said}"[:600]
