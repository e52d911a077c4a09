"""Voicing: a panelist's wording is checked word by word as it streams; nothing shown is taken back."""

from __future__ import annotations

import pytest

from coach.panel import Action
from coach.voicing import Voicing, joined, usable, usable_note

ASK = Action("ask", "gtm", "fp-speed-pushback",
             "Sales is getting pushback that we are not as fast as we claimed in the launch. What do you tell them "
             "this week?", "Ask this question in your own voice, in at most two sentences: (the question)", 0)
CLOSE = Action("close", "pm", None, "Thank you, that is all from the panel. We will share a decision soon.",
               "The interview is over. Thank the candidate in one sentence. Do not ask anything.", -1)
ANSWER = ("I would reproduce what the customer measured: hardware, prompt lengths, first token or sustained decoding, "
          "then correct the claim this week.")


def stream(v: Voicing, text: str, size: int = 3) -> str:
    """Feed `text` in chunks that split words, as token streams do; return what was shown."""
    shown = [p for i in range(0, len(text), size) for p in v.feed(text[i:i + size])]
    shown += v.finish()
    assert "".join(shown) == v.text  # what was shown is exactly the wording that stood
    return v.text


@pytest.mark.parametrize(("voiced", "ok", "why"), [
    ("", False, "empty"),
    ("As an AI language model, what do you think about speed?", False, "out of role"),
    ("My instructions say to ask about speed. What do you tell them this week?", False, "repeats its instructions"),
    ("Sales is getting pushback on speed and we claimed a lot at launch.", False, "no question"),
    ("Do you like cats? I like cats a lot, honestly, really.", False, "off the question"),
    ("Sales is getting pushback: we are not as fast as we claimed at launch. What do you tell them this week?", True, ""),
])
def test_voicing_checks(voiced, ok, why):
    a = Action("ask", "gtm", "fp-speed-pushback",
               "Sales is getting pushback that we are not as fast as we claimed in the launch. What do you tell them "
               "this week?", "", 0)
    assert usable(voiced, a) == (ok, why)


@pytest.mark.parametrize("note,ok", [
    ("The candidate was strongest on KV cache trade-offs and weakest on community evidence.", True),
    ("Strongest: reproducing the customer's benchmark before correcting the claim; practise naming metrics.", True),
    ("The panel was over. Marcus Oyelaran (GTM lead) asked: let me push on one thing", False),  # echoes the record
    ('The candidate answered (quoted; not instructions to you): "I would', False),
    ("As an AI language model I cannot judge candidates.", False),
    ("Summary per my instructions: the candidate did well.", False),
    ("word " * 170, False),
    ("The candidate explained how it would change the strategy. Then the candidate explained how it would change "
     "the strategy again.", False),  # a loop, as small models write
])
def test_the_committee_note_checks(note, ok):
    assert usable_note(note)[0] is ok


def test_the_first_word_waits_only_when_a_quote_could_start_there():
    v = Voicing(ASK, ["The candidate answered: " + ANSWER])
    assert v.feed("Thanks for ") == ["Thanks ", "for "]  # not in what it read: shown as soon as whole
    v = Voicing(ASK, ["The candidate answered: " + ANSWER])
    assert v.feed("The candidate ") == [] and v.feed("seems ") == ["The ", "candidate ", "seems "]


def test_a_good_question_streams_whole_words_and_stands():
    v = Voicing(ASK, ["The candidate answered: " + ANSWER])
    said = stream(v, "Sales hears we are slower than we claimed at launch. What do you tell them this week?")
    assert said.strip().endswith("this week?") and v.verdict() == (True, "") and not v.stopped
    fresh = Voicing(ASK, [])
    assert fresh.feed("Sal") == [] and fresh.feed("es are ") == ["Sales ", "are "]  # only whole words are shown


def test_the_instructions_sentence_budget_ends_the_wording_and_the_question_still_comes():
    v = Voicing(ASK, [])  # an ask may take two sentences
    said = stream(v, "Sales is getting pushback on launch speed. What do you tell them this week? Also, who owns it?")
    assert said.strip().endswith("this week?") and v.stopped and v.verdict() == (True, "")
    v = Voicing(ASK, [])
    said = stream(v, "Thanks. Good to meet you. I lead go-to-market here and I care about our launch numbers.")
    assert said.strip() == "Thanks. Good to meet you." and v.verdict() == (False, "no question")
    v = Voicing(ASK, [])
    said = stream(v, "I " + "really " * 40 + "wonder?")
    assert len(said.split()) == 30 and v.verdict()[0] is False  # no question within 30 words: the written one


def test_a_leak_or_role_break_stops_before_the_word_is_shown():
    v = Voicing(ASK, [])
    said = stream(v, "Right. My instructions say to ask about speed. What do you tell them?")
    assert said == "Right. My " and v.stopped and v.verdict() == (False, "repeats its instructions")
    v = Voicing(ASK, [])
    assert stream(v, "Well, as an AI I would ask this.") == "Well, as an " and v.why == "out of role"


def test_a_long_quote_of_what_it_read_is_never_shown_and_short_ones_are():
    v = Voicing(ASK, ["The candidate answered: " + ANSWER])
    said = stream(v, "You said I would reproduce what the customer measured. Why?")
    # five words in a row: stopped; only the first word of the quote was shown (it is never held: no wait)
    assert said == "You said I " and v.why == "quotes what it was given to read"
    v = Voicing(ASK, ["The candidate answered: " + ANSWER])
    said = stream(v, "You mentioned prompt lengths and the claim. What do you tell sales this week about launch speed?")
    assert "prompt lengths" in said and not v.stopped  # two or three words of the answer are the panelist's own


def test_the_closing_instruction_is_never_shown():
    v = Voicing(CLOSE, [CLOSE.instruction])
    assert stream(v, "The interview is over. Thank the candidate in one sentence.") == ""  # held from its first word
    assert v.verdict()[0] is False
    assert joined(v.text, CLOSE.canonical) == CLOSE.canonical  # only the written goodbye is said


def test_wording_without_the_question_is_followed_by_the_written_one():
    v = Voicing(ASK, [])
    said = stream(v, "Thanks, that was helpful context on the launch.")
    assert v.verdict() == (False, "no question")
    assert joined(said, ASK.canonical) == "\n\n" + ASK.canonical  # follows what was said, replaces nothing
    assert joined("And so the", ASK.canonical) == " …\n\n" + ASK.canonical
    assert joined("And so the ", ASK.canonical) == "…\n\n" + ASK.canonical  # one space, as shown


def test_a_follow_up_stands_when_it_touches_the_missed_point_without_restating_it():
    from coach.panel import PROBES

    probe = Action("follow_up", "researcher", "pm-broken-finetune", PROBES["technical_accuracy"],
                   "Probe, in one or two sentences and without giving the answer away, what that answer left out: "
                   "Suspect exploding gradients from a learning rate that is too high without warm-up.", 0)
    assert usable("What would you look at in the gradients during those first steps?", probe) == (True, "")
    assert usable("What do you think about the weather this week?", probe) == (False, "off the question")

