"""Your stories: a few short STAR stories (situation, task, action, result) kept in $COACH_HOME/stories.yaml,
mapped to a panel's questions (strong, workable or a gap), with the questions no story covers, the stories
leaned on too often, and, in the debrief, which story an answer told.

A story and a question are compared piece by piece with the embedder the grader uses: each run of at most
14 words of the story against the question and its key points, the mean of the two best. Whole-text
similarity lets a story's topic win over what the question asks for, and a long sentence dilutes its one
relevant clause; a piece that does the asked thing is what makes a story fit. The bands and the piece length
were set on a helper-written set of ten stories against all 48 questions (tests/data/prep; nothing kept
aside, so read these as fitted figures): of the 10 questions a story was written for, 7 get that story as
a strong fit (behavioural questions, "tell me about a time you forced a decision", are the misses); the story
written to fit nothing is no question's best fit; an answer made of half a story is recognised as telling it
for all 10, and none of 20 model answers is taken for a story.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field

from coach.errors import ConfigError
from coach.grading.answer import split_sentences
from coach.grading.embedder import Embedder
from coach.grading.rubrics import Question
from coach.textfiles import read_yaml_model

STRONG, WORKABLE = 0.50, 0.47  # a question's best story scores at least this for each band; under: a gap
TOLD = 0.60  # an answer whose sentences come this close to a story's told that story
OVERUSED = 3  # a story that is the best fit of this many questions or more is leaned on too often
MAX_STORIES, MAX_WORDS = 30, 400
PIECE_WORDS = 14


class Story(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str = Field(min_length=3, max_length=120)
    text: str = Field(min_length=40)


class StoryBank(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stories: list[Story] = Field(default_factory=list, max_length=MAX_STORIES)


def path(home: Path) -> Path:
    return home / "stories.yaml"


def load(home: Path) -> list[Story]:
    """Your stories; none when the file is not there yet. A malformed file names the field."""
    p = path(home)
    if not p.exists():
        return []
    return read_yaml_model(p, StoryBank, "story file").stories


def save(home: Path, stories: list[Story]) -> None:
    p = path(home)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"stories": [s.model_dump() for s in stories]}, sort_keys=False,
                                  allow_unicode=True, width=100), encoding="utf-8")
    tmp.replace(p)


def add(home: Path, title: str, text: str) -> Story:
    """A new story, its id made from its title; refused when it is not a story yet."""
    text = " ".join(text.split())
    words = len(text.split())
    if words < 40:
        raise ConfigError(f"a story of {words} words is too short to map: tell what happened, what you did and "
                          "what came of it (STAR), 60-200 words")
    if words > MAX_WORDS:
        raise ConfigError(f"a story of {words} words; keep it under {MAX_WORDS}: the panel hears two minutes")
    stories = load(home)
    if len(stories) >= MAX_STORIES:
        raise ConfigError(f"{len(stories)} stories already; remove one first (coach stories rm ID)")
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "story"
    sid, n = base, 2
    while any(s.id == sid for s in stories):
        sid, n = f"{base}-{n}", n + 1
    story = Story(id=sid, title=title.strip(), text=text)
    save(home, [*stories, story])
    return story


def remove(home: Path, story_id: str) -> None:
    stories = load(home)
    if not any(s.id == story_id for s in stories):
        raise ConfigError(f"no story {story_id!r}; yours: {', '.join(s.id for s in stories) or 'none yet'}")
    save(home, [s for s in stories if s.id != story_id])


@dataclass(frozen=True)
class Fit:
    question_id: str
    question: str
    story: Story | None  # the best story, None when there are none
    score: float

    @property
    def band(self) -> str:
        return "strong" if self.score >= STRONG else "workable" if self.score >= WORKABLE else "gap"


@dataclass(frozen=True)
class StoryMap:
    fits: list[Fit]  # one per question, in the panel's order

    @property
    def gaps(self) -> list[Fit]:
        return [f for f in self.fits if f.band == "gap"]

    def uses(self) -> dict[str, int]:
        """How many questions each story is the best fit of (gaps not counted)."""
        out: dict[str, int] = {}
        for f in self.fits:
            if f.story is not None and f.band != "gap":
                out[f.story.id] = out.get(f.story.id, 0) + 1
        return out

    @property
    def overused(self) -> list[tuple[str, int]]:
        return [(k, n) for k, n in self.uses().items() if n >= OVERUSED]


def _pieces(text: str) -> list[str]:
    """A story as the pieces that are compared: sentences cut into runs of at most PIECE_WORDS words (a
    long sentence's one relevant clause would otherwise be diluted by the rest); wrapped lines joined."""
    return split_sentences(" ".join(text.split()), max_words=PIECE_WORDS)


def _closeness(a: np.ndarray, b: np.ndarray) -> float:
    """The mean of the two best rows of `a` (sentences) by their best match in `b`."""
    if not len(a) or not len(b):
        return 0.0
    best = (a @ b.T).max(axis=1)
    return float(np.sort(best)[::-1][:2].mean())


def map_stories(stories: list[Story], questions: list[Question], embedder: Embedder) -> StoryMap:
    """Each question's best story and how well it fits."""
    if not stories:
        return StoryMap([Fit(q.id, q.text, None, 0.0) for q in questions])
    sents = [_pieces(s.text) for s in stories]
    qparts = [[q.text, *(k.text for k in q.key_points)] for q in questions]
    flat = [x for ss in sents for x in ss] + [x for qp in qparts for x in qp]
    vecs = embedder.embed(flat)
    cut, story_vecs = 0, []
    for ss in sents:
        story_vecs.append(vecs[cut: cut + len(ss)])
        cut += len(ss)
    fits = []
    for q, qp in zip(questions, qparts, strict=True):
        qv = vecs[cut: cut + len(qp)]
        cut += len(qp)
        scores = [_closeness(sv, qv) for sv in story_vecs]
        i = int(np.argmax(scores))
        fits.append(Fit(q.id, q.text, stories[i], scores[i]))
    return StoryMap(fits)


def told(answers: list[str], stories: list[Story], embedder: Embedder) -> list[Story | None]:
    """For each answer, the story it told (its sentences close to the story's), or None."""
    if not stories or not answers:
        return [None] * len(answers)
    a_sents = [split_sentences(a) or [a] for a in answers]
    s_sents = [_pieces(s.text) for s in stories]
    vecs = embedder.embed([x for ss in a_sents for x in ss] + [x for ss in s_sents for x in ss])
    cut, av = 0, []
    for ss in a_sents:
        av.append(vecs[cut: cut + len(ss)])
        cut += len(ss)
    sv = []
    for ss in s_sents:
        sv.append(vecs[cut: cut + len(ss)])
        cut += len(ss)
    out: list[Story | None] = []
    for a in av:
        scores = [_closeness(a, s) for s in sv]
        i = int(np.argmax(scores))
        out.append(stories[i] if scores[i] >= TOLD else None)
    return out
