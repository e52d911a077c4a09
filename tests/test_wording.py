"""The wording checks, sentence by sentence: where a sentence ends, which sentences ask, what a panelist
may say (the real MiniLM judges meaning), and what the candidate sees when the real `Interview` streams a
7-8B model's voicing in Mistral v3 token pieces (tests/data/wording/, written before the checks were tuned)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from bench import wording_corpus as wc
from coach.wording.checks import Judge, Turn
from coach.wording.gate import Voicing, joined
from coach.wording.sentences import asks, split


@pytest.mark.parametrize(("text", "sentences"), [
    ("Hi, I'm Dr. Ines Marchal. Walk me through it.", ["Hi, I'm Dr. Ines Marchal. ", "Walk me through it."]),
    ("We start at 9 a.m. on Monday. Why?", ["We start at 9 a.m. on Monday. ", "Why?"]),
    ("3.5x vs. the U.S. one, e.g. on long prompts. Fine?", ["3.5x vs. the U.S. one, e.g. on long prompts. ", "Fine?"]),
    ("Okay.\nTell me more", ["Okay.\n", "Tell me more"]),
])
def test_sentences_end_where_a_reader_would_end_them(text, sentences):
    assert split(text) == sentences


@pytest.mark.parametrize(("sentence", "asking"), [
    ("What do you tell them this week?", True),
    ("Design a rollout plan for a very large model across three data centres.", True),
    ("Day 30, the CEO wants to know if it worked — give me your metrics.", True),
    ("I'd like to hear how you would price it.", True),
    ("Sales says ship, research says wait - decide.", True),
    ("Thanks, that's helpful context.", False),
    ("Suppose the ML team is busy until Thursday.", False),
    ("Set the footnote aside for a moment.", False),
    ("I lead research on inference, so I care about mechanisms.", False),
    ("Quick one: take the launch claim and say it the way a buyer would hear it.", True),
    ("Take your time.", False),
])
def test_which_sentences_ask(sentence, asking):
    assert asks(sentence) is asking


@pytest.fixture(scope="module")
def judge(grader):
    turn = Turn(kind="ask", speaker="Marcus Oyelaran", role="Go-to-market lead",
                colleagues=[("Dr. Ines Marchal", "Senior research scientist"),
                            ("Sofia Lindqvist", "Product manager, model API")],
                topic=["Sales is getting pushback that we are not as fast as we claimed in the launch. What do you tell "
                       "them this week?"],
                secrets=["Can the candidate hold a line when sales pushes for a bigger claim?"],
                answers=["Find out which workload, hardware and metric the customer measured before answering."],
                read=["Ask this question in your own voice, in at most two sentences."],
                heard=["I would reproduce what the customer measured: hardware, prompt lengths, first token or decoding."])
    return Judge(turn, grader.embedder)


@pytest.mark.parametrize(("sentence", "ok", "why"), [
    ("Good morning, I'm Marcus Oyelaran and I run go-to-market here.", True, ""),
    ("Something for sales, with our coding assistant and the system prompt docs in mind.", True, ""),
    ("Sales hears we are slower than we claimed at launch; what do they say to buyers this week?", True, ""),
    ("Sure! Here's how Marcus might ask it:", False, "out of role"),
    ("That was a great answer, you nailed it.", False, "grades the answer aloud"),
    ("I'm Sofia Lindqvist, and I own the API.", False, "speaks as a colleague"),
    ("Honestly, I want to see whether you cave when my reps push for a bigger claim.", False,
     "says a hidden priority aloud"),
    ("What is your favourite holiday destination and why?", False, "off the question"),
    ("Ask this question in your own voice, please.", False, "out of role"),
    ("That's flat-out wrong, and any buyer would catch it in five minutes.", False, "grades the answer aloud"),
    ("(raises an eyebrow) Slower than what, exactly?", False, "out of role"),
    ("Sofia asked me to add that the API docs overstate the speed as well.", False, "speaks for a colleague"),
    ("Hint: think about which workload and hardware they measured on.", False, "gives the answer away"),
    ("Would you first find out which workload, hardware and metric the customer measured?", False,
     "gives the answer away"),
    ("Part of this round is seeing whether you hold the line when my reps push.", False,
     "says a hidden priority aloud"),
    ("(Pushback delivered; awaiting the candidate's response.)", False, "out of role"),
    ("Let me give you one from this week's deals.", True, ""),
    ("Okay, brand story, got it.", True, ""),
    ("Avoiding benchmarks is not a strategy; it is a retreat.", False, "comments instead of leading in"),
    ("Honestly, that rebrand story left me cold.", False, "comments instead of leading in"),
])
def test_a_sentence_is_judged_by_its_words_and_its_meaning(judge, sentence, ok, why):
    v = judge.judge(sentence)
    assert (v.ok, v.why) == (ok, why)


def test_the_learned_check_ships_and_tells_a_slip_from_a_plain_question(judge):
    """The trained file ships (weights, threshold, the bank of corpus sentences it compares with), and on a
    sentence of neither kind it has seen it puts a verdict on the answer above a plain question."""
    import numpy as np

    from coach.wording import learned

    m = learned._model()
    assert m is not None, "coach/data/wording_slips.npz is missing: run bench/wording_train.py"
    w, _, threshold, bank, bank_slip = m
    assert 0.0 < threshold < 1.0 and bank.shape == (len(bank_slip), learned.DIM) and 0 < bank_slip.sum() < len(bank_slip)
    x = judge.signals("What do the reps actually say on their calls with buyers this week?")
    assert w.shape == (len(x) + 3,)  # the signals, then the three nearest-neighbour figures
    plain = learned.slip(x)
    verdict = learned.slip(judge.signals("Frankly, that reply would get a rep laughed out of the buyer's office.",
                                         "", False))
    assert verdict > threshold > plain
    assert learned.slip(np.zeros(7, dtype=np.float32)) == 0.0  # signals of another shape: the check stays quiet


def feed(v: Voicing, text: str, size: int = 3) -> str:
    shown = [p for i in range(0, len(text), size) for p in v.feed(text[i:i + size])] + v.finish()
    assert "".join(shown) == v.text
    return v.text


def test_only_whole_sentences_show_and_a_refused_one_shows_nothing(judge):
    v = Voicing("ask", judge)
    assert v.feed("Thanks for that. What do") == ["Thanks for that. "]  # the question waits for its end
    v = Voicing("ask", judge)
    said = feed(v, "Thanks for that. That was a great answer. What do you tell sales this week?")
    assert said == "Thanks for that. " and v.why == "grades the answer aloud" and v.verdict()[0] is False
    assert joined(said, "Q?") == "\n\nQ?"  # the written question follows whole sentences: never a "…"


def test_the_turn_ends_with_its_question(judge):
    """A statement after the question is the panelist answering it or adding what was not asked: the
    turn ends at the question, and what stood is the whole turn (no written question after it)."""
    v = Voicing("ask", judge)
    said = feed(v, "Sales says we are slower than the launch claimed. What do they tell buyers this week? "
                   "Yes, they should just repeat the launch numbers with more confidence.")
    assert said.strip().endswith("this week?") and v.verdict() == (True, "")
    v = Voicing("ask", judge)
    said = feed(v, "What do sales tell buyers this week? I mean the reps on the calls, not marketing.")
    assert said.strip().endswith("not marketing.")


def test_a_sentence_cut_by_the_token_budget_is_never_shown(judge):
    v = Voicing("ask", judge)
    v.feed("Thanks. What do you tell sales about the launch speed this")
    assert v.finish(complete_stream=False) == [] and v.text == "Thanks. "


@pytest.fixture(scope="module")
def corpus():
    return wc.load_actions(), wc.load_items(), wc.ReplayGrader(), wc.Store(Path(tempfile.mkdtemp()) / "c.db")


def test_through_the_interview_a_good_voicing_with_an_introduction_stands_whole(corpus):
    actions, items, grader, store = corpus
    item = next(i for i in items if i.label == "good" and actions[i.action]["opener"] and "I'm" in i.text
                and len(split(i.text)) >= 3)
    shown, row, _ = wc.replay(actions[item.action], item.text, grader, store)
    assert shown.strip() == item.text.strip() and row["fallback"] is None  # the UI, CLI and voice all stream ask()


def test_through_the_interview_a_bad_voicing_shows_nothing_of_its_offending_part(corpus):
    actions, items, grader, store = corpus
    bad = [i for i in items if i.label == "bad" and i.why in ("grading_aloud", "hidden_priority", "as_colleague")
           and not i.text.startswith(i.offending)][:6]
    assert bad
    for item in bad:
        shown, row, _ = wc.replay(actions[item.action], item.text, grader, store)
        o = wc.outcome(item.text, item.offending, shown, row)
        assert o.offending_shown == 0, (item.text, shown)
        assert not o.cut and not o.twice
        assert shown.strip().endswith(row["canonical"].strip()) or row["fallback"] is None


@pytest.mark.timeout(1800)  # minutes on a busy machine; the suite's 600 s limit is for hangs, not for load
@pytest.mark.parametrize("part", ["dev", "fresh", "fresh2", "fresh3", "fresh4", "fresh5"])
def test_the_corpus_meets_its_goals(corpus, part):
    """Every sixth item of each part of the corpus (the development voicings; the three sets written later
    for the actions kept aside), and the written question of each action sampled: good wording stands,
    nothing is cut or asked twice, written questions pass, and bad wording reaches the screen no more
    often than docs/wording.md measured on the whole part (fresh5 was never tuned on: 8%)."""
    actions, items, grader, _ = corpus
    sample = items[::6] if part == "dev" else wc.load_items(wc.FRESH_SETS[part])[::6]
    tallies = wc.measure(sample, actions, grader)
    for kind, t in tallies.items():
        assert t.good_cut == 0 and t.twice == 0, kind
        floor = 0.5 if part == "fresh5" else 0.8  # fresh5, never tuned on: contradictions 8 of 12 (docs/wording.md);
        # its sample holds 2, of which 1 stands
        assert t.good_whole >= floor * t.good, (kind, t.misses)
        assert t.written_pass == t.written, (kind, t.misses)
    bad = sum(t.bad for t in tallies.values())
    measured = {"dev": 3 / 145, "fresh": 0 / 68, "fresh2": 8 / 68, "fresh3": 18 / 68, "fresh4": 33 / 85,
                "fresh5": 7 / 85}[part]
    assert sum(t.bad_shown for t in tallies.values()) <= measured * bad + 1, \
        [m for t in tallies.values() for m in t.misses]


def test_the_committee_note_shows_whole_sentences_that_pass(corpus):
    actions, _, grader, _ = corpus
    notes = [n for n in wc.load_notes() if n.why != "invented"]  # claims the record never made: not checked yet
    t = wc.measure_notes(notes[::4], actions, grader)
    assert t.good_cut == 0 and t.good_whole >= 0.8 * t.good, t.misses
    assert t.bad_shown_4 <= 0.2 * t.bad, t.misses


def test_each_weak_spot_probe_stands_as_the_written_follow_up(corpus):
    """The grader's weak spots (no example, a dodge, a false claim...) give a follow-up its own written probe
    (`grading.tips.PROBES`): streamed through the real `Interview` as the model's wording, each stands whole,
    quoting the candidate's words where it does, like any other written question."""
    from coach.grading.tips import PROBES, _quote

    actions, _, grader, store = corpus
    base = next(a for a in actions.values() if a["kind"] == "follow_up")
    words = base["last_answer"].split()
    for kind, line in PROBES.items():
        text = line.format(quote=_quote(" ".join(words[:7]), 18), other=_quote(" ".join(words[7:]), 18))
        action = {**base, "canonical": text,
                  "instruction": f"Probe, in one or two sentences and without giving the answer away, this weak "
                                 f"spot of that answer: {text}"}
        shown, row, _ = wc.replay(action, text, grader, store)
        assert not row["fallback"] and shown.strip() == text, (kind, row["fallback"], shown)
