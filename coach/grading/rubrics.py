"""Question banks: criteria, weights, key points, red flags, good and bad exemplar answers (YAML).

Every bank is parsed into pydantic models with `extra="forbid"`, so a typo fails at load naming the
file, the question and the field. Banks are data: any team can write its own and grade with it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coach.config import RUBRICS_DIR, data_files
from coach.errors import ConfigError
from coach.textfiles import read_text

LABELS = {"technical_accuracy": "Technical accuracy", "narrative_coherence": "Narrative coherence",
          "stakeholder_alignment": "Stakeholder alignment", "tension_handling": "Tension handling"}
Criterion = Literal["technical_accuracy", "narrative_coherence", "stakeholder_alignment", "tension_handling"]
DEFAULT_WEIGHTS: dict[str, float] = {"technical_accuracy": 40, "narrative_coherence": 30, "stakeholder_alignment": 30}
TENSION_WEIGHT = 25.0  # added on contradiction turns: did the candidate reconcile both framings?
PANELISTS = ("researcher", "gtm", "pm")
# A rubric of one's own is bounded so that grading and `coach rubric check` stay in seconds and megabytes:
# every exemplar is embedded and graded held out against the others (the check grows with their square,
# about 20 s a question on a laptop), and every key point and red flag is matched against each sentence.
MAX_QUESTIONS = 200  # the built-in banks have 9 to 12; a bank of more is several banks
MAX_EXEMPLARS = 20  # good or bad, each; the built-in questions have 3 of each
MAX_POINTS = 20  # key points, red flags and a key point's wrong versions, each
MAX_EXEMPLAR_CHARS = 4_000  # an exemplar is a model answer: the built-in ones are under 500


class KeyPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=8)
    criterion: Criterion = "technical_accuracy"
    # Common false versions of this point ("4-bit is faster because it needs fewer FLOPs"): an answer
    # sentence nearer one of these than the point itself is a confident wrong claim, and scored as one.
    wrong: list[str] = Field(default_factory=list, max_length=MAX_POINTS)


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    text: str = Field(min_length=10)
    asked_by: str = "researcher"
    time_box_s: int = Field(default=180, ge=15, le=3600)
    tension: bool = False  # a contradiction turn: adds the tension_handling criterion
    weights: dict[Criterion, float] | None = None
    key_points: list[KeyPoint] = Field(min_length=2, max_length=MAX_POINTS)
    red_flags: list[str] = Field(default_factory=list, max_length=MAX_POINTS)
    reference: str | None = None  # a model answer; graded against like one more good exemplar
    good: list[str] = Field(min_length=3)
    bad: list[str] = Field(min_length=3)

    @field_validator("good", "bad")
    @classmethod
    def _non_empty(cls, v: list[str]) -> list[str]:
        if len(v) > MAX_EXEMPLARS:
            raise ValueError(f"{len(v):,} exemplars; at most {MAX_EXEMPLARS} of a kind (each is graded against the "
                             "others, so the cost grows with their square): keep the clearest, or split the question")
        if any(len(x.split()) < 3 for x in v):
            raise ValueError("every exemplar needs at least three words")
        if any(len(x) > MAX_EXEMPLAR_CHARS for x in v):
            raise ValueError(f"an exemplar of more than {MAX_EXEMPLAR_CHARS:,} characters; an exemplar is one answer")
        return v

    @field_validator("weights")
    @classmethod
    def _positive(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return v if v is None else _check_weights(v)

    def criteria(self, defaults: dict[str, float]) -> dict[str, float]:
        """Weights normalised to sum to 1; contradiction turns add tension handling."""
        w: dict[str, float] = {str(k): v for k, v in (self.weights or defaults).items()}
        if self.tension:
            w.setdefault("tension_handling", TENSION_WEIGHT)
        total = sum(w.values())
        return {k: v / total for k, v in w.items() if v > 0}


class Bank(BaseModel):
    model_config = ConfigDict(extra="forbid")
    bank: str
    title: str = ""
    scenario: str | None = None
    default_weights: dict[Criterion, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))  # type: ignore[arg-type]
    questions: list[Question] = Field(min_length=1)

    @field_validator("questions", mode="before")
    @classmethod
    def _not_too_many(cls, v: object) -> object:
        if isinstance(v, list) and len(v) > MAX_QUESTIONS:  # said before thousands are validated one by one
            raise ValueError(f"{len(v):,} questions; a rubric holds at most {MAX_QUESTIONS}: split it into banks")
        return v

    @field_validator("default_weights")
    @classmethod
    def _default_positive(cls, v: dict[str, float]) -> dict[str, float]:
        return _check_weights(v)

    @model_validator(mode="after")
    def _unique_ids(self) -> Bank:
        seen: set[str] = set()
        for q in self.questions:
            if q.id in seen:
                raise ValueError(f"question id {q.id!r} is used twice")
            seen.add(q.id)
        return self

    def get(self, qid: str) -> Question:
        for q in self.questions:
            if q.id == qid:
                return q
        raise ConfigError(f"no question {qid!r} in bank {self.bank}; known: {', '.join(q.id for q in self.questions)}")

    def weights_for(self, q: Question) -> dict[str, float]:
        return q.criteria({str(k): v for k, v in self.default_weights.items()})


def _check_weights(v: dict[str, float]) -> dict[str, float]:
    if not v:
        raise ValueError("weights must name at least one criterion")
    if any(not math.isfinite(w) or w < 0 for w in v.values()) or sum(v.values()) <= 0:
        raise ValueError("weights must be finite, non-negative numbers, not all zero")
    return v


def load_bank(path: str | Path) -> Bank:
    p = Path(path)
    text = read_text(p, "rubric file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except (RecursionError, ValueError) as exc:
        raise ConfigError(f"{p}: not a usable YAML document ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a rubric is a YAML mapping with `bank` and `questions`; this is "
                          f"{type(data).__name__ if data is not None else 'empty'}")
    try:
        return Bank.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "questions" and isinstance(loc[1], int):
            qs = (data or {}).get("questions") or []
            qid = qs[loc[1]].get("id", f"#{loc[1]}") if loc[1] < len(qs) and isinstance(qs[loc[1]], dict) else loc[1]
            where = f" question {qid!r}"
            loc = loc[2:]
        field = ".".join(str(x) for x in loc) or "(top level)"
        raise ConfigError(f"{p}:{where} field `{field}`: {err['msg']}") from None


def load_all(directory: Path | None = None) -> dict[str, Bank]:
    """Every bank: `directory`'s, or the shipped rubrics/ and the user's own in $COACH_HOME/rubrics/."""
    banks = {}
    for f in sorted(directory.glob("*.yaml")) if directory else data_files(RUBRICS_DIR, "rubrics"):
        b = load_bank(f)
        if b.bank in banks:
            raise ConfigError(f"{f}: bank name {b.bank!r} is already used by another file")
        banks[b.bank] = b
    return banks


def find_question(qid: str, banks: dict[str, Bank]) -> tuple[Bank, Question]:
    for b in banks.values():
        for q in b.questions:
            if q.id == qid:
                return b, q
    raise ConfigError(f"no question {qid!r} in any rubric under {RUBRICS_DIR}")
