"""The level a hiring committee would place the candidate at, estimated from a session's grades: the ladder
rules live beside the rubrics (`rubrics/levels/ladders.yaml`), each level a list of needs; the band is the
highest level whose needs all hold, and the next level's first unmet need is what would move it up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coach.config import RUBRICS_DIR
from coach.grading.rubrics import LABELS
from coach.textfiles import read_yaml_model

LADDERS = RUBRICS_DIR / "levels" / "ladders.yaml"
MODELLED_TECH = 4.0  # an answer models the trade-off itself: its own figure, technical accuracy at least this
# a figure of the candidate's own: a number with a unit or a percentage, or a number beside a quantity word
FIGURE = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:%|x\b|ms\b|s\b|gb\b|gib\b|mb\b|tb\b|k\b|m\b|b\b|tokens?\b|tok/s|seconds?\b|"
    r"minutes?\b|hours?\b|days?\b|weeks?\b|gpus?\b|cents?\b|dollars?\b|euros?\b|percent\b|bits?\b|layers?\b|"
    r"users?\b|requests?\b|calls?\b|per\b)|[$€£]\s?\d", re.IGNORECASE)
KINDS = ("overall", "modelled", *LABELS)


class Need(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    at_least: float
    says: str = Field(min_length=3)

    @model_validator(mode="before")
    @classmethod
    def _one_key(cls, data: Any) -> Any:
        """`{overall: 3.2, says: ...}` in the file: the one key besides `says` names the need."""
        if isinstance(data, dict) and "kind" not in data:
            keys = [k for k in data if k != "says"]
            if len(keys) != 1 or keys[0] not in KINDS:
                raise ValueError(f"a need names one of {', '.join(KINDS)} and `says`; got {', '.join(map(str, keys))}")
            return {"kind": keys[0], "at_least": data[keys[0]], "says": data.get("says", "")}
        return data


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: str
    owns: str
    needs: list[Need] = Field(min_length=1)


class Ladder(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scenarios: list[str] = Field(min_length=1)
    name: str
    below: str
    levels: list[Level] = Field(min_length=1)


class Ladders(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ladders: list[Ladder]


@dataclass
class Placement:
    """An estimated level band, the evidence behind it, and what would move it up."""

    ladder: str
    band: str  # "L5", or the ladder's `below` text
    owns: str  # what that level owns
    evidence: list[str]  # each need of the band's level that held, with the answers behind it
    next_level: str | None = None
    move_up: list[str] = field(default_factory=list)  # the next level's unmet needs, in the committee's terms

    def as_dict(self) -> dict[str, Any]:
        return {"ladder": self.ladder, "band": self.band, "owns": self.owns, "evidence": self.evidence,
                "next_level": self.next_level, "move_up": self.move_up, "estimate": True}

    def summary(self) -> str:
        """One paragraph: the band, why, and what would move it up."""
        head = f"Estimated {self.ladder} level: {self.band}" + (f" ({self.owns})" if self.owns else "") + "."
        why = (" Evidence: " + "; ".join(self.evidence) + ".") if self.evidence else ""
        up = (f" To be placed at {self.next_level}, show " + "; and ".join(self.move_up) + ".") \
            if self.next_level and self.move_up else ""
        return head + why + up


def load_ladders(path: Path | None = None) -> list[Ladder]:
    return read_yaml_model(path or LADDERS, Ladders, "level ladder file").ladders


@lru_cache(maxsize=1)
def _ladders() -> tuple[Ladder, ...]:
    return tuple(load_ladders())


def ladder_for(scenario: str) -> Ladder | None:
    """The ladder that places candidates of `scenario` (a scenario id), or None where none applies."""
    return next((lad for lad in _ladders() if scenario in lad.scenarios), None)


def modelled(answer: str, criteria: dict[str, float]) -> bool:
    """The answer models a trade-off itself: a figure of its own, and technically sound."""
    return criteria.get("technical_accuracy", 0.0) >= MODELLED_TECH and FIGURE.search(answer) is not None


def place(ladder: Ladder, answers: list[tuple[str, dict[str, float], float]]) -> Placement:
    """Place a session on `ladder` from its answers: (answer text, criteria, total) each, in order."""
    n = len(answers)
    overall = sum(a[2] for a in answers) / n if n else 0.0
    means: dict[str, float] = {}
    for c in LABELS:
        vals = [a[1][c] for a in answers if c in a[1]]
        if vals:
            means[c] = sum(vals) / len(vals)
    models = [i for i, a in enumerate(answers, 1) if modelled(a[0], a[1])]

    def check(need: Need) -> tuple[bool, str]:
        if need.kind == "overall":
            return overall >= need.at_least, f"mean answer {overall:.2f}/5 (needs {need.at_least:.1f})"
        if need.kind == "modelled":
            k = int(need.at_least)
            which = ", ".join(f"#{i}" for i in models) or "none"
            return len(models) >= k, (f"{len(models)} answer(s) with a figure of your own and sound technique "
                                      f"({which}; needs {k})")
        got = means.get(need.kind)
        label = LABELS.get(need.kind, need.kind).lower()
        if got is None:
            return False, f"no answer scored on {label}"
        return got >= need.at_least, f"{label} {got:.2f}/5 (needs {need.at_least:.1f})"

    reached: Level | None = None
    evidence: list[str] = []
    nxt: Level | None = ladder.levels[0]
    for lv in ladder.levels:
        results = [check(nd) for nd in lv.needs]
        if not all(ok for ok, _ in results):
            nxt = lv
            break
        reached, evidence, nxt = lv, [why for _, why in results], None
    move_up = []
    if nxt is not None:
        move_up = [f"{nd.says} ({why})" for nd in nxt.needs for ok, why in [check(nd)] if not ok]
    return Placement(ladder.name, reached.level if reached else ladder.below, reached.owns if reached else "",
                     evidence, nxt.level if nxt else None, move_up)


def estimate(scenario: str, answers: list[tuple[str, dict[str, float], float]]) -> Placement | None:
    """The placement for a session of `scenario`, or None where no ladder applies or nothing was answered."""
    lad = ladder_for(scenario)
    return place(lad, answers) if lad is not None and answers else None
