"""The written questions cite only colleagues who have spoken: pure logic over the panel, every scenario,
12 seeds, strong, weak and slow answers (a colleague not yet heard from is hearsay: "I hear sales wants")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from coach.interview.panel import Action, Panel
from coach.interview.prompts import Persona

GROUP = re.compile(r"\b(?:my colleagues?|your other interviewers|everyone on this panel|each of us)\b", re.I)


ROLES = {"gtm": r"go-to-market lead|GTM lead", "researcher": r"researcher|research scientist", "pm": r"product manager"}


def role(p: Persona) -> re.Pattern[str]:
    return re.compile(rf"\b(?:{ROLES[p.id]})\b", re.I)


def refs(p: Persona) -> re.Pattern[str]:
    """How a written line could name panelist `p`: their names, their role, its short forms."""
    names = "|".join(re.escape(w) for w in p.name.replace("Dr. ", "").split())
    return re.compile(rf"\b(?:{names}|{ROLES[p.id]})\b", re.I)


@dataclass
class Grade:
    total: float
    criteria: dict[str, float] = field(default_factory=dict)
    missed: list[str] = field(default_factory=list)


def paths(panel: Panel, seed: int):
    """Every action of a session, with who had spoken before it: answers alternate strong and weak (the
    weak one misses a different key point each time), at a pace that lets time boxes end segments."""
    for pace in (40.0, 140.0):
        st, spoken, i = panel.start(seed, quick=pace > 100), set(), 0
        while True:
            a = panel.next_action(st)
            yield a, frozenset(spoken)
            if a.kind == "close":
                break
            spoken.add(a.panelist)
            q = panel.bank.get(a.question_id) if a.question_id else None
            points = q.key_points if q else []
            weak = (i + seed) % 2 == 0
            miss = [points[(i + seed) % len(points)].text] if weak and points else []
            panel.record(st, a, Grade(1.5 if weak else 4.5, {"technical_accuracy": 2.0}, miss), "ok", pace)
            i += 1



def test_no_written_question_cites_a_colleague_who_has_not_spoken(world):
    personas, banks, scenarios = world
    checked = 0
    for sid, sc in scenarios.items():
        panel = Panel(sc, banks[sc.rubric], personas)
        for seed in range(12):
            for a, spoken in paths(panel, seed):
                others = [p for p in personas.values() if p.id != a.panelist]
                for p in others:
                    for text in (a.canonical, a.instruction):
                        if p.id not in spoken and refs(p).search(text):
                            pytest.fail(f"{sid} seed {seed}: {a.panelist} cites {p.id} before they spoke: {text!r}")
                if GROUP.search(a.canonical):  # "my colleague and I disagree": someone else has spoken
                    assert spoken - {a.panelist}, (sid, seed, a.canonical)
                # never "the GTM lead says" of oneself
                assert not role(personas[a.panelist]).search(a.canonical), (sid, a.canonical)
                checked += 1
    assert checked > 1000


def test_a_contradiction_states_each_claim_once(world):
    """The framing and the question it leads into share no run of four words (no claim said twice), and a
    contradiction names the colleague it pushes back on by their own role."""
    personas, banks, scenarios = world
    for sc in scenarios.values():
        for t in sc.tension_pairs:
            q = banks[sc.rubric].get(t.question).text
            words = [re.findall(r"[a-z0-9']+", x.lower()) for x in (t.framing, q)]
            grams = [{tuple(w[i:i + 4]) for i in range(len(w) - 3)} for w in words]
            assert not grams[0] & grams[1], (sc.id, t.question, grams[0] & grams[1])
            action = Panel(sc, banks[sc.rubric], personas).question_action(
                next(i for i, s in enumerate(sc.segments) if s.panelist == t.by), 0, {t.against, t.by})
            if action.question_id == t.question:
                assert action.kind == "contradict"
                for p in personas.values():
                    if p.id != t.against and p.id != t.by:
                        assert not refs(p).search(action.canonical), (sc.id, action.canonical)
                assert refs(personas[t.against]).search(t.framing), (sc.id, t.framing)


def test_a_follow_up_fits_its_question(world):
    """The deep dive's rewrite question gets its own written probe, whatever the missed point; a probe on
    the disagreement after a plain question cites no colleague."""
    personas, banks, scenarios = world
    sc = scenarios["pmm_deep_dive"]
    panel = Panel(sc, banks[sc.rubric], personas)
    follow: list[Action] = [a for seed in range(12) for a, _ in paths(panel, seed) if a.kind == "follow_up"]
    rewrite = {a.canonical for a in follow if a.question_id == "dd-rewrite-model-card"}
    assert rewrite == {sc.probes["dd-rewrite-model-card"].strip()}
    assert not any(GROUP.search(a.canonical) for a in follow if a.question_id != "dd-quant-tiers")
