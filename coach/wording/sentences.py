"""Sentences out of a token stream: where one ends ("Dr." and "a.m." do not end one), and which ask.

A sentence is complete once its end mark is followed by the start of another (a capital, a quote, a
digit), a line break, or the end of the stream. The mark alone is not enough: "Dr. Marchal" and "3 p.m.
on Monday" go on, and so a sentence is only released when the next visible character has arrived.
"""

from __future__ import annotations

import re

# Words that end with a full stop without ending the sentence (lower case, without the stop).
ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof st sr jr vs v etc e.g i.e a.m p.m u.s u.k e.u approx est no nos fig cf inc ltd co corp "
    "dept mt jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun ph.d m.sc b.sc "
    "al eq resp".split())
# "etc." does end a sentence when a capital follows; these never do (a name or a number always follows)
_NEVER_ENDS = frozenset("dr mr mrs ms prof st no nos fig vs v cf approx".split())
_END = re.compile(r"([.!?…]+)([\"'”’)\]]*)(\s+)")
_QUESTION_VERBS = frozenset(
    "walk talk tell explain describe give show help convince design choose pick rewrite estimate sketch outline "
    "list name make draft defend justify argue propose prioritise prioritize size compare define plan pitch frame "
    "position persuade share paint map spell recommend decide identify cut package reconcile diagnose rank quantify "
    "price prove predict summarise summarize respond sell build write reframe find take say put translate turn "
    "break lay run answer tackle weigh assess evaluate handle".split())
_NOT_A_REQUEST = re.compile(r"(?i)(make sure|make no mistake|name (is|was)|plan (is|was)|price (is|was)|list (is|was)|"
                             r"frame (is|was)|design (is|was)|help(s|ed)? (us|them)|take (your|my|our|a|the) (time|moment|"
                             r"second|minute|breath|point)|take care|turn (is|was)|run (is|was)|say (hi|hello)|"
                             r"put (simply|another way|differently|bluntly)|break (is|was)|answer (is|was))\b")
_ASK_PHRASES = re.compile(
    r"\b(i'?d (like|love) (you )?to (hear|know|understand|see)|i want (you )?to (hear|know|understand|see)|"
    r"i'?m (curious|interested) (how|what|why|whether|about|to hear|in hearing)|i would (like|love) to hear|"
    r"(can|could|would|will) you|how (would|do|did|does|will|can|should) you|what (would|do|did|will|should) you|"
    r"i'?d like your (take|view|thoughts)|your (take|thinking) on|let'?s hear|help me understand|"
    r"talk me through|walk me through|take me through|run me through|"
    r"i'?d (?:like|love) you to \w+|i (?:want|need) you to \w+)\b", re.I)


def ends(text: str, final: bool = False) -> list[int]:
    """Offsets just past each complete sentence in `text` (its trailing whitespace included). With
    `final`, the end of the text closes the last sentence too."""
    out: list[int] = []
    for m in _END.finditer(text):
        rest = text[m.end():]
        mark = m.group(1)
        if "\n" in m.group(3):
            out.append(m.end())
            continue
        if not rest:
            continue  # the next character decides
        if mark == ".":
            word = re.search(r"([\w.']+)$", text[:m.start()])
            w = word.group(1).lower().rstrip(".") if word else ""
            if w in _NEVER_ENDS or (w in ABBREVIATIONS and not rest[:1].isupper()):
                continue
            if len(w) == 1 and w.isalpha() and not rest[:1].isupper():
                continue  # an initial, "a.m"-like piece
            if rest[:1].islower():
                continue
        out.append(m.end())
    # line breaks end a sentence even without a mark
    for m in re.finditer(r"\S(\s*\n\s*)(?=\S)", text):
        if m.end() not in out:
            out.append(m.end())
    out.sort()
    if final and text.strip() and (not out or out[-1] < len(text.rstrip())):
        out.append(len(text))
    return out


def split(text: str) -> list[str]:
    """The whole text as sentences (each with its trailing whitespace)."""
    cuts = ends(text, final=True)
    return [text[a:b] for a, b in zip([0, *cuts], cuts, strict=False) if text[a:b].strip()]


def asks(sentence: str) -> bool:
    """Whether a sentence puts a question to the candidate: a question mark, or a request ("Walk me
    through ...", "I'd like to hear how ...", "Design a rollout plan ...")."""
    s = sentence.strip()
    if not s:
        return False
    if "?" in s:
        return True
    # a request: the sentence, or a clause of it after a comma, dash, colon or semicolon, opens with a verb
    # that asks ("So, walk me ...", "Day 30, the CEO wants to know - give me ...")
    for clause in re.split(r"[,;:—–]|\s-\s", s):
        body = re.sub(r"^[\W_]+", "", clause.strip())
        body = re.sub(r"^(so|now|then|okay|ok|right|well|and|but|first|next|finally|please|instead|again|just|"
                      r"in that case|with that|given that|for me|here|honestly|quickly|briefly|concretely)\b[\s,]*",
                      "", body, flags=re.I)
        first = re.match(r"[A-Za-z']+", body)
        if first and first.group(0).lower() in _QUESTION_VERBS and not _NOT_A_REQUEST.match(body):
            return True
    return bool(_ASK_PHRASES.search(s)) and not s.rstrip().endswith("!")


def complete(sentence: str) -> bool:
    """Whether a sentence ends the way a finished one does (a mark, or a closing quote after one)."""
    return bool(re.search(r"[.!?…:][\"'”’)\]]*\s*$", sentence))
