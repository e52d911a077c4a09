"""What the coach says next: the answer's weak spots (what a follow-up probes) and the one tip it shows.

Weak spots are read in the answer and the question, not per criterion: no example on a behavioural
question, no number where the question asks for one, a false or reversed claim, a contradiction inside the
answer, a dodge, "I haven't done that". The tip is true to the answer: it names a point as missing only
when no sentence makes it (`points.py`), at 4.5 and above it sharpens a sentence it quotes, and length
advice counts the answer's own sentences and words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from coach.grading.points import MISSING_BELOW, PointMatch

if TYPE_CHECKING:
    from coach.grading.rubrics import Question

SHARPEN_AT = 4.5  # from here a tip sharpens what was said; it never asks for what was said

BEHAVIOURAL = re.compile(r"\b(tell (me|us) about a time|give (me|us) (one|an|a concrete|a real|a specific) example|"
                         r"describe a (time|situation)|walk (me|us) through a time|a time (when|you)|when did you|"
                         r"have you ever|share an example|an example of)\b", re.I)
EXAMPLE = re.compile(r"\b(for example|for instance|at (my|our) (last|previous|old)|"
                     r"in (my|our) (last|previous) (role|job|team)|last (year|quarter|month|spring|summer|fall|winter)|"
                     r"in 20\d\d|one time|once,? (i|we)|when i (was|led|ran|joined)|"
                     r"(i|we) (led|ran|launched|built|shipped|managed|convinced|wrote|cut|grew|moved|pushed|rolled|"
                     r"decided|found|noticed|set up|brought|changed|dropped|kept|published|measured|got|had to|took))\b",
                     re.I)
ASKS_NUMBER = re.compile(r"\b(how (much|many|fast|long|big|often)|what number|quantif\w*|estimate|by how much|"
                         r"what percentage|put a number|what (metric|target)|how would you size)\b", re.I)
HAS_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|fifty|hundred|thousand|"
                        r"million|billion|half|double|twice|triple|a third|a quarter|percent)\b", re.I)
NOT_DONE = re.compile(r"\b(i haven'?t (done|had|worked|led|built|run|managed|shipped|faced|been)|i have not (done|had|"
                      r"worked|led|built|faced)|i'?ve never|i have never|never (done|had|worked on|led|faced)|no "
                      r"(direct |real )?experience (with|in|of))\b", re.I)
DODGE = re.compile(r"\b(that'?s a (great|good|tough) question|it (really )?depends|hard to say|i'?d rather (not|talk)|"
                   r"let me (instead )?talk about|what i can say is|i can'?t (share|discuss|talk about)|"
                   r"not something i can|let'?s not get into|moving on)\b", re.I)
APPROACH = re.compile(r"\b(i'?d|i would|i will|i'?ll|i'?m going to|my first step|first,? i|i'?d start|i would start|"
                      r"here'?s how|the way i'?d|i plan to|my plan)\b[^.!?]*\b(check|measure|ask|test|verify|find out|"
                      r"look (at|up|into)|reproduce|compare|read|talk to|run|pull|benchmark|investigate|dig|review|"
                      r"research|learn|confirm|profile|trace|call|interview|validate|prototype|try)\b", re.I)


def weak_spots(q: Question, body: str, sentences: list[str], matches: list[PointMatch]) -> dict[str, str]:
    """Weak spot -> what shows it (a sentence, or the question's words). Also `approach`: the answer says
    how it would find out (not a weak spot: what makes an honest gap worth more than a bluff)."""
    spots: dict[str, str] = {}
    made = [m for m in matches if m.made]
    if BEHAVIOURAL.search(q.text) and not EXAMPLE.search(body):
        spots["no_example"] = BEHAVIOURAL.search(q.text).group(0)  # type: ignore[union-attr]
    if ASKS_NUMBER.search(q.text) and not HAS_NUMBER.search(body):
        spots["no_number"] = ASKS_NUMBER.search(q.text).group(0)  # type: ignore[union-attr]
    for m in matches:
        if m.contradicted_by is not None:
            spots["contradiction"] = f"{sentences[m.contradicted_by]} / {sentences[m.sentence]}"
            break
    nd = NOT_DONE.search(body)
    if nd:
        spots["not_done"] = nd.group(0)
    dodge = DODGE.search(body)
    if dodge and len(made) < len(matches):
        spots["dodge"] = dodge.group(0)
    elif "no_example" in spots and not made and "not_done" not in spots:
        spots["dodge"] = "no example and no point the question asks for"
    ap = APPROACH.search(body)
    if ap:
        spots["approach"] = ap.group(0)
    return spots


def _quote(sentence: str, n: int = 24) -> str:
    words = sentence.split()
    return " ".join(words[:n]) + (" ..." if len(words) > n else "")


def sharpen(sentences: list[str], matches: list[PointMatch]) -> str:
    """A tip for a strong answer: the sentence that makes its least firmly made point, quoted, and how to
    make it land harder."""
    made = sorted((m for m in matches if m.made), key=lambda m: m.support)
    s = sentences[made[0].sentence] if made else max(sentences, key=len)
    how = ("put a number on it (how much, for whom, by when)" if not HAS_NUMBER.search(s)
           else "say who in the room it serves and what they should do with it")
    return f"Sharpen \"{_quote(s)}\": {how}."


def tip(q: Question, grade: Any, sentences: list[str], matches: list[PointMatch], flags: list[str], false: Any,
        reversal: Any, spots: dict[str, str]) -> str:
    """The one "Next time" line: true to what the answer said."""
    if false is not None:
        return f"Correct this claim: \"{_quote(false.said)}\". What holds: {grade.missed[0]}"
    if reversal is not None:
        return f"Check this claim: \"{_quote(reversal.said)}\" {reversal.why}; what holds: {reversal.point}"
    if "contradiction" in spots:
        a, b = spots["contradiction"].split(" / ", 1)
        return f"Resolve the contradiction: \"{_quote(a, 14)}\" against \"{_quote(b, 14)}\". Say which holds, and why."
    if flags:
        return f"Drop \"{flags[0]}\": the panel hears it as a red flag. Say what you would do yourself, with a number."
    if grade.total >= SHARPEN_AT:
        return sharpen(sentences, matches)
    first = grade.missed[0] if grade.missed else None
    if "not_done" in spots or _unsure(grade):
        if "approach" not in spots:
            return ("Honest: now say how you would find out (who you would ask, what you would measure), then "
                    f"what you already know{': ' + first if first else '.'}")
        return f"Honest, with a plan. Next time add what you already know{': ' + first if first else '.'}"
    if "no_example" in spots:
        return ("Give one real example: when it was, what you did yourself, and what changed, with a number"
                + (f"; let it show: {first}" if first else "."))
    if "dodge" in spots:
        return f"Answer the question asked before anything else. Start with: {first or q.key_points[0].text}"
    if "no_number" in spots:
        return f"Put a number on it: the question asks \"{spots['no_number']}\", and the answer gives none."
    n_words = sum(len(s.split()) for s in sentences)
    if first:
        if len(sentences) == 1 and n_words < 25:
            return f"Develop it: one sentence of {n_words} words cannot carry the argument. Add: {first}"
        return f"Add what is missing: {first}"
    partial = [(m, k.text) for m, k in zip(matches, q.key_points, strict=True) if not m.made and m.support >= MISSING_BELOW]
    if partial:
        m, _ = min(partial, key=lambda x: x[0].support)  # partly made: quote it, never ask for it as if unsaid
        return (f"Say it outright: \"{_quote(sentences[m.sentence])}\" comes close to a point the panel listens "
                "for; make it explicit, with a number or a concrete case.")
    if grade.delivery.over_time:
        return f"Tighten it: about {grade.delivery.spoken_s} s spoken against a {grade.delivery.time_box_s} s time box."
    return sharpen(sentences, matches)


def _unsure(grade: Any) -> bool:
    return any(n.startswith("admits a gap") for n in grade.notes)


# The follow-up for each weak spot, in the order they are probed: it names the gap, never the answer.
PROBES = {
    "false_claim": "Let me stop you on one thing you said: \"{quote}\". Are you sure that holds? Walk me through why.",
    "contradiction": "Two things you said pull against each other: \"{quote}\" and \"{other}\". Which do you stand by, "
                     "and why?",
    "not_done": "Fair enough that you haven't done it yet. If you had to start tomorrow, what would you do first, and "
                "how would you know it worked?",
    "no_example": "I asked for a real example. Give me one specific time: what was happening, what you did yourself, "
                  "and what changed.",
    "dodge": "Let me bring you back to what I asked. Answer that part directly, in two or three sentences.",
    "no_number": "Can you put a number on that: roughly how much, and how would you measure it?",
}
WEAK_SPOT = "weak spot"  # a follow-up subject that starts with this carries its own line


def follow_up(spots: dict[str, str]) -> str | None:
    """The follow-up subject for the first weak spot in PROBES' order: `weak spot (kind): line`."""
    for kind, line in PROBES.items():
        if kind in spots:
            quote, _, other = spots[kind].partition(" / ")
            text = line.format(quote=_quote(quote, 18), other=_quote(other, 18))
            return f"{WEAK_SPOT} ({kind}): {text}"
    return None


def follow_up_line(subject: str) -> str | None:
    """The line a weak-spot subject carries (None for a key point or a criterion)."""
    if not subject.startswith(WEAK_SPOT + " ("):
        return None
    return subject.split("): ", 1)[1] if "): " in subject else None
