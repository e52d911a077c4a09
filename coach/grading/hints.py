"""Practice mode's help on one question: a hint that names the weak area without giving the answer away,
and a strong answer to compare with once the candidate has drafted their own.

The hint is built from what the rubric says about the question (how many points the panel listens for,
under which criterion, whether it asks for an example or a number) and, given a draft, from the draft's
grade (which of those points it does not make yet). It never quotes a key point: `leaked` lists any word of
a key point the question itself does not already show, and a line of the hint with one is left out.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

from coach.grading.exemplars import goods
from coach.grading.tips import ASKS_NUMBER, BEHAVIOURAL, EXAMPLE, HAS_NUMBER

if TYPE_CHECKING:
    from coach.grading.grader import Grade
    from coach.grading.rubrics import Question

# What each criterion listens for, in words no rubric's key point is built from (checked by `leaked`)
AREA = {"technical_accuracy": "the technical substance (how it works underneath)",
        "narrative_coherence": "how your answer hangs together (one line of reasoning)",
        "stakeholder_alignment": "the people around it (who wants what, who has the final say)",
        "tension_handling": "the pull between two panelists (both sides, one way through)"}
WORD = re.compile(r"[a-z][a-z'-]{3,}")
COMMON = frozenset("""about after again also always another answer around because before being both could does doing
down each even every first from have here however into itself just know like made make many more most much must
need never only other over same should since some such than that their them then there these they this those
though through very want well were what when where which while will with within without would your yours""".split())


def content_words(text: str) -> set[str]:
    """The words that carry a text's meaning (four letters and up, common words left out)."""
    return {w.strip("'-") for w in WORD.findall(text.lower())} - COMMON


def leaked(q: Question, hint: str) -> set[str]:
    """Words of the question's key points in `hint` that the question's own text does not already show."""
    secret = set().union(*(content_words(k.text) for k in q.key_points)) - content_words(q.text)
    return content_words(hint) & secret


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def hint(q: Question, draft: Grade | None = None, draft_text: str = "") -> str:
    """Where to look, never what to say. Without a draft: how many points the panel listens for and under
    which areas, and whether the question wants a real example or a number. With one (its grade): which
    areas the draft has not covered yet. A line that would share a word with a key point (one the question
    does not already show) is left out; the first falls back to the bare count."""
    areas = Counter(k.criterion for k in q.key_points)
    total = _count(len(q.key_points), "point")
    if draft is None:
        spread = "; ".join(f"{_count(n, 'point')} on {AREA[c]}" for c, n in areas.most_common())
        first = f"The panel listens for {total} here: {spread}."
    else:
        missing = Counter(k.criterion for k in q.key_points if k.text in draft.missed)
        if not missing:
            first = f"Your draft makes all {total} the panel listens for: tighten it, lead with the one that matters most."
        else:
            spread = "; ".join(f"{_count(n, 'point')} on {AREA[c]}" for c, n in missing.most_common())
            first = (f"Your draft makes {len(q.key_points) - sum(missing.values())} of the {total} the panel "
                     f"listens for. Not there yet: {spread}.")
    if leaked(q, first):
        first = f"The panel listens for {total} here."
    lines = [first]
    if BEHAVIOURAL.search(q.text) and not (draft_text and EXAMPLE.search(draft_text)):
        lines.append("It asks for one story of your own: when, what you did yourself, what came of it.")
    if ASKS_NUMBER.search(q.text) and not (draft_text and HAS_NUMBER.search(draft_text)):
        lines.append("It asks for a figure: commit to one, and say how you would verify it.")
    if q.tension:
        lines.append("Two panelists pull different ways here: say both out loud before you pick.")
    return " ".join(line for line in lines if line is first or not leaked(q, line))


def strong_answer(q: Question) -> str:
    """One answer the rubric grades as strong: its reference if it has one, else its first good exemplar."""
    return q.reference or goods(q)[0]
