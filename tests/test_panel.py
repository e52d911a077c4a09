"""The panel: pure state-machine logic (fake grades), then whole sessions on the real embedded models."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from coach.panel import Action, Panel
from coach.prompts import load_personas, load_scenarios
from coach.rubrics import load_all


@dataclass
class FakeGrade:
    total: float
    criteria: dict[str, float] = field(default_factory=lambda: {"technical_accuracy": 2.0})
    missed: list[str] = field(default_factory=lambda: ["Name the metric the customer used."])


@pytest.fixture(scope="module")
def world():
    personas, banks = load_personas(), load_all()
    return personas, banks, load_scenarios(personas=personas, banks=banks)


def panel_for(world, scenario_id: str) -> Panel:
    personas, banks, scenarios = world
    sc = scenarios[scenario_id]
    return Panel(sc, banks[sc.rubric], personas)


def run_path(panel: Panel, seed: int, totals: list[float], spent: float = 60.0) -> list[Action]:
    st, path, i = panel.start(seed), [], 0
    while True:
        a = panel.next_action(st)
        path.append(a)
        if a.kind == "close":
            return path
        panel.record(st, a, FakeGrade(totals[i % len(totals)]), "answer", spent)
        i += 1


def test_same_seed_same_path_and_the_order_is_seeded(world):
    p = panel_for(world, "pmm_final_panel")
    assert [(a.kind, a.panelist, a.question_id) for a in run_path(p, 7, [4.5])] == \
           [(a.kind, a.panelist, a.question_id) for a in run_path(p, 7, [4.5])]
    orders = {tuple(p.start(seed).order) for seed in range(12)}
    assert len(orders) > 2  # the order changes with the seed and is never announced
    fixed = panel_for(world, "pm_loop")
    assert fixed.start(1).order == fixed.start(2).order == [0, 1, 2]


def test_a_contradiction_always_follows_the_colleague_it_contradicts(world):
    for sid in ("pmm_final_panel", "pmm_deep_dive", "pmm_live_case", "pm_loop", "tpm_onsite"):
        p = panel_for(world, sid)
        against = {t.question: t.against for t in p.scenario.tension_pairs}
        contradictions = 0
        for seed in range(12):
            path = run_path(p, seed, [4.5], spent=10_000)  # time boxes cut every segment short
            for i, a in enumerate(path):
                if a.kind == "contradict":
                    contradictions += 1
                    assert against[a.question_id] in {b.panelist for b in path[:i]}, (sid, seed, i)
                elif a.question_id in against and a.kind == "ask":  # asked plainly: its colleague had not spoken
                    assert against[a.question_id] not in {b.panelist for b in path[:i]}, (sid, seed, i)
        assert contradictions >= 12, sid  # at least one a session, on average
    p = panel_for(world, "pmm_final_panel")
    first = p.next_action(p.start(0))
    assert first.kind == "ask"  # nobody has spoken yet: the opener never contradicts anyone
    assert not first.canonical.startswith(tuple(t.framing for t in p.scenario.tension_pairs))


def test_weak_answers_get_one_follow_up_per_segment_on_the_missed_point(world):
    p = panel_for(world, "pmm_final_panel")
    strong = run_path(p, 1, [4.6])
    assert not any(a.kind == "follow_up" for a in strong)
    weak = run_path(p, 1, [1.5])
    follow = [a for a in weak if a.kind == "follow_up"]
    assert len(follow) == 3  # one per segment, no more
    from coach.panel import PROBES

    assert follow[0].canonical == PROBES["technical_accuracy"]  # the weak area, never the missing answer
    assert "Name the metric the customer used." in follow[0].instruction  # the model is told what to probe
    i = weak.index(follow[0])
    assert weak[i - 1].panelist == follow[0].panelist and weak[i - 1].question_id == follow[0].question_id


def test_time_box_ends_a_segment_early(world):
    p = panel_for(world, "pmm_final_panel")
    st = p.start(0)
    a = p.next_action(st)
    p.record(st, a, FakeGrade(4.8), "ok", spent_s=10_000)
    assert st.log[-1]["segment_end"] == "time box"
    assert p.next_action(st).panelist != a.panelist
    relaxed = run_path(p, 0, [4.8], spent=1)
    assert sum(a.kind in ("ask", "contradict") for a in relaxed) == 6  # with time, every question is asked
