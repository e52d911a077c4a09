"""The labelled wording corpus: real actions of every scenario, replayed through the real `Interview`.

An action is one turn of a scripted session (scenario, seed, and the answers given before it), so any
item written for it can be streamed through exactly the path the UI and the CLI use: `Interview.ask()`
with a `ScriptedBackend` that says the item in Mistral v3 token pieces under the engine's stop strings and
budget. `outcome()` says what the candidate would have seen.

    .venv/bin/python bench/wording_corpus.py --actions tests/data/wording/actions.yaml   # (re)write the actions
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from coach.engine.scripted import ScriptedBackend
from coach.grading.grader import Grader
from coach.interview.panel import Action
from coach.interview.prompts import load_scenarios, scenario_parts
from coach.interview.session import Interview
from coach.store import Store
from coach.wording.sentences import asks, split

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "wording"
KINDS = ("ask", "follow_up", "contradict", "close")


# ---------------------------------------------------------------- the actions

def _answers(bank: Any, qid: str | None, kind: str, n_in_segment: int) -> str:
    """The scripted candidate: weak on each segment's first question (so follow-ups happen), a short
    partial answer to a follow-up, a strong answer otherwise (bank exemplars)."""
    if qid is None:
        return ""
    q = bank.get(qid)
    if kind == "follow_up":
        return q.bad[-1]
    return q.bad[0] if n_in_segment == 0 else q.good[0]


def walk(scenario: str, seed: int, grader: Grader, store: Store) -> list[dict[str, Any]]:
    """Every action of one scripted session, with what the panelist read and the replay script."""
    sc, bank, personas = scenario_parts(scenario)
    backend = ScriptedBackend(lambda speaker, messages: "")
    iv = Interview.start(scenario, backend=backend, grader=grader, store=store, seed=seed)
    answers: list[str] = []
    out: list[dict[str, Any]] = []
    seg, n_in_seg = None, 0
    while not iv.done:
        a = iv.next_action()
        idx = iv.turn_count
        "".join(iv.ask())
        if a.segment != seg:
            seg, n_in_seg = a.segment, 0
        p = personas[a.panelist]
        thread = iv.hearing.threads[a.panelist]
        item: dict[str, Any] = {
            "id": f"{scenario}-s{seed}-t{idx:02d}-{a.kind}", "scenario": scenario, "seed": seed, "turn": idx,
            "kind": a.kind, "panelist": a.panelist, "name": p.name, "role": p.role, "voice": p.voice,
            "question_id": a.question_id, "canonical": a.canonical, "instruction": a.instruction,
            "read": thread[-2]["content"] if len(thread) >= 2 else "",
            "hidden_priorities": list(p.hidden_priorities),
            "opener": a.kind == "ask" and a.instruction.startswith("Introduce yourself"),
            "replay": list(answers),
        }
        if a.question_id:
            q = bank.get(a.question_id)
            item["question"] = q.text
            item["key_points"] = [k.text for k in q.key_points]
        if a.kind == "contradict":
            pair = next(t for t in sc.tension_pairs if t.question == a.question_id and t.by == a.panelist)
            item["framing"], item["against"] = pair.framing, personas[pair.against].name
        if a.kind == "follow_up":
            item["missed_point"] = a.instruction.split("left out:")[-1].strip()
            item["last_answer"] = answers[-1]
        out.append(item)
        if iv.done:
            break
        ans = _answers(bank, a.question_id, a.kind, n_in_seg)
        if a.kind != "follow_up":
            n_in_seg += 1
        iv.answer(ans, spent_s=60)
        answers.append(ans)
    return out


def write_actions(path: Path, seeds: tuple[int, ...] = (1, 2, 3)) -> list[dict[str, Any]]:
    """Every action of seed 1 on every scenario, plus the follow-ups, contradictions and goodbyes of the
    other seeds that seed 1 does not have (the scarcer kinds)."""
    grader = Grader()
    store = Store(Path(tempfile.mkdtemp()) / "actions.db")
    actions: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for sid in load_scenarios():
        for seed in seeds:
            for a in walk(sid, seed, grader, store):
                key = (a["kind"], a["scenario"], a["panelist"], a["canonical"], a.get("missed_point", ""))
                if key in seen or (seed != seeds[0] and a["kind"] == "ask"):
                    continue
                seen.add(key)
                actions.append(a)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"actions": actions}, sort_keys=False, width=110, allow_unicode=True))
    return actions


# ---------------------------------------------------------------- the corpus

@dataclass
class Item:
    action: str
    label: str  # "good" or "bad"
    text: str
    why: str = ""  # for a bad item: its failure kind
    offending: str = ""  # for a bad item: the words that must never reach the screen
    set: str = "tune"  # "tune" or "aside" (looked at only at the end)
    extra: dict[str, Any] = field(default_factory=dict)


def aside(action_id: str) -> bool:
    """A fifth of the actions, fixed by a hash of their id, kept aside with every item written for them."""
    return int(hashlib.sha256(action_id.encode()).hexdigest(), 16) % 5 == 0


def load_actions(path: Path = DATA / "actions.yaml") -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in yaml.safe_load(path.read_text())["actions"]}


def load_notes(path: Path = DATA / "notes.yaml") -> list[Item]:
    """The committee chair's notes, one record (a whole session, replayed to its goodbye) per scenario."""
    raw = yaml.safe_load(path.read_text())["notes"]
    return [Item(action=r["record"], label=r["label"], text=r["text"], why=r.get("why", ""),
                 offending=r.get("offending", ""),
                 set="fresh" if path == FRESH_NOTES else "aside" if aside(r["record"] + r["text"][:12]) else "tune")
            for r in raw]


FRESH = DATA / "parts" / "voicings_fresh.yaml"  # written after the first round, for the aside actions
FRESH2 = DATA / "parts" / "voicings_fresh2.yaml"  # written after the second round
FRESH3 = DATA / "parts" / "voicings_fresh3.yaml"  # written after the third, measured once at the end
# written after the fourth round by a writer who had not seen the checks; measured once at the end
FRESH4 = DATA / "fresh4" / "voicings_fresh4.yaml"
# written after the fifth round by a writer who had not seen the checks; measured once, after the learned check
FRESH5 = DATA / "fresh5" / "voicings_fresh5.yaml"
FRESH_SETS = {"fresh": FRESH, "fresh2": FRESH2, "fresh3": FRESH3, "fresh4": FRESH4, "fresh5": FRESH5}
FRESH_NOTES = DATA / "parts" / "notes_fresh.yaml"


def load_items(path: Path = DATA / "voicings.yaml") -> list[Item]:
    """The development voicings (`tune`, and `aside`: the part kept aside in the first round, looked at
    since), or, given `FRESH`, `FRESH2` or `FRESH3`, a set written afterwards for the same aside actions."""
    raw = yaml.safe_load(path.read_text())["voicings"]
    fresh = next((name for name, p in FRESH_SETS.items() if p == path), None)
    return [Item(action=r["action"], label=r["label"], text=r["text"], why=r.get("why", ""),
                 offending=r.get("offending", ""),
                 set=fresh or ("aside" if aside(r["action"]) else "tune")) for r in raw]


# ---------------------------------------------------------------- replaying one item

class ReplayGrader(Grader):
    """The real grader, remembering each (question, answer) grade: a replay grades the same scripted
    answers again and again, and the same answer always gets the same grade."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: dict[tuple[str, str], Any] = {}

    def grade(self, bank: Any, q: Any, answer: str, spoken_s: float | None = None) -> Any:
        key = (q.id, answer)
        if key not in self._seen or spoken_s is not None:
            self._seen[key] = super().grade(bank, q, answer, spoken_s=spoken_s)
        return copy.deepcopy(self._seen[key])


def replay(action: dict[str, Any], say: str, grader: Grader, store: Store,
           note: str = "") -> tuple[str, dict[str, Any], Interview]:
    """Stream `say` as the model's wording of `action`, through the real `Interview`: the session is
    replayed to that turn (the written question on earlier turns, the scripted answers), then `ask()`.
    Returns what was shown, the stored turn and the interview."""
    turn = {"n": 0}

    def script(speaker: str, messages: list[Any]) -> str:
        if speaker.endswith("/committee"):
            return note
        return say if turn["n"] == action["turn"] else ""

    backend = ScriptedBackend(script)
    iv = Interview.start(action["scenario"], backend=backend, grader=grader, store=store, seed=action["seed"])
    for ans in action["replay"]:
        "".join(iv.ask())
        turn["n"] += 1
        iv.answer(ans, spent_s=60)
    _recorded(iv, action)
    shown = "".join(iv.ask())
    row = store.turns(iv.session_id)[-1]
    assert row["kind"] == action["kind"], (action["id"], row["kind"])
    return shown, row, iv


def _recorded(iv: Interview, action: dict[str, Any]) -> None:
    """The panel decides the replayed turn as it was recorded: the item was written for that action, and the
    panel's rules (a weak spot named by the grader, a question for the panel before the goodbye) change."""
    def decide(a: Action) -> Action:
        if (a.kind, a.panelist, a.canonical, a.instruction) == (action["kind"], action["panelist"],
                                                                action["canonical"], action["instruction"]):
            return a
        return Action(action["kind"], action["panelist"], action["question_id"], action["canonical"],
                      action["instruction"], max(0, a.segment))

    iv.replay(decide)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


@dataclass
class Outcome:
    stood_whole: bool  # the item's whole text is what was shown, and nothing else
    cut: bool  # the model's wording broke off mid-sentence before the written question
    twice: bool  # the model's wording asked a question and the written question followed it
    offending_shown: int  # the longest run of the item's offending words that reached the screen
    shown: str


def outcome(item_text: str, offending: str, shown: str, row: dict[str, Any]) -> Outcome:
    """What the candidate saw of one item, as the five numbers the bench counts."""
    said = shown.strip()
    canonical = row["canonical"].strip()
    written = bool(row["fallback"]) and said.endswith(canonical)
    model_part = said[: len(said) - len(canonical)] if written else said
    cut = written and model_part.rstrip().endswith("…")
    model_part = model_part.rstrip(" \n…")
    twice = written and row["kind"] != "close" and any(asks(x) for x in split(model_part))
    off = _offending_shown(item_text, offending, model_part)
    whole = _norm(said) == _norm(item_text) and not row["fallback"]
    return Outcome(whole, cut, twice, off, said)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _offending_shown(item: str, offending: str, shown: str) -> int:
    """How many words of the item's offending span reached the screen: the model's words are shown in
    order, so what was shown of the item is the part of it that `shown` matches from its start."""
    if not offending or offending not in item:
        return 0
    a, b = _words(item), _words(shown)
    n = 0
    while n < len(a) and n < len(b) and a[n] == b[n]:
        n += 1
    start = len(_words(item[: item.index(offending)]))
    end = start + len(_words(offending))
    return max(0, min(n, end) - start)


# ---------------------------------------------------------------- the measurement

@dataclass
class Tally:
    good: int = 0
    good_whole: int = 0
    good_cut: int = 0
    twice: int = 0
    bad: int = 0
    bad_shown: int = 0  # any offending word on screen
    bad_shown_4: int = 0  # four or more offending words in a row
    bad_fragment: int = 0  # one to three offending words in a row
    bad_standing: int = 0  # the bad item stood as the whole turn
    written: int = 0
    written_pass: int = 0
    misses: list[str] = field(default_factory=list)


def _scores(scores: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" for k, v in scores.items())


def measure(items: list[Item], actions: dict[str, dict[str, Any]], grader: Grader | None = None,
            progress: Callable[[int, int], None] | None = None) -> dict[str, Tally]:
    """Every item (and each action's own written question) through `replay`; a tally per kind."""
    grader = grader or ReplayGrader()
    store = Store(Path(tempfile.mkdtemp()) / "corpus.db")
    tallies: dict[str, Tally] = {k: Tally() for k in KINDS}
    todo = [(i.action, i) for i in items]
    for n, (aid, item) in enumerate(todo):
        a = actions[aid]
        t = tallies[a["kind"]]
        shown, row, iv = replay(a, item.text, grader, store)
        o = outcome(item.text, item.offending, shown, row)
        gate = getattr(iv, "voicing", None)  # (absent before the sentence gate: the bench also measures the old code)
        refused = getattr(gate, "refused", None)
        why = f"{row['fallback']}" + (f" at {refused[0].strip()!r} {_scores(refused[1].scores)}" if refused else "")
        if item.label == "good":
            t.good += 1
            t.good_whole += o.stood_whole
            t.good_cut += o.cut
            t.twice += o.twice
            if not o.stood_whole:
                t.misses.append(f"GOOD {aid} [{why}]\n  item:  {item.text}\n  shown: {o.shown}")
        else:
            t.bad += 1
            t.bad_shown += o.offending_shown > 0
            t.bad_shown_4 += o.offending_shown >= 4
            t.bad_fragment += 0 < o.offending_shown < 4
            standing = not row["fallback"] and _norm(o.shown) == _norm(item.text)
            t.bad_standing += standing
            if o.offending_shown or standing:
                t.misses.append(f"BAD/{item.why} {aid} [{why}] shown={o.offending_shown}\n"
                                f"  item:  {item.text}\n  shown: {o.shown}")
        if progress:
            progress(n + 1, len(todo))
    for aid in sorted({i.action for i in items}):
        a = actions[aid]
        t = tallies[a["kind"]]
        shown, row, _ = replay(a, a["canonical"], grader, store)
        t.written += 1
        ok = not row["fallback"] and _norm(shown) == _norm(a["canonical"])
        t.written_pass += ok
        if not ok:
            t.misses.append(f"WRITTEN {aid} [{row['fallback']}]\n  shown: {shown.strip()}")
    return tallies


def measure_notes(notes: list[Item], actions: dict[str, dict[str, Any]], grader: Grader | None = None) -> Tally:
    """Every note through `Interview.committee_note` at the end of its scenario's replayed session."""
    grader = grader or ReplayGrader()
    store = Store(Path(tempfile.mkdtemp()) / "notes.db")
    closes = {a["scenario"]: a for a in actions.values() if a["kind"] == "close"}
    t = Tally()
    for item in notes:
        _, _, iv = replay(closes[item.action.removeprefix("note-")], "", grader, store, note=item.text)
        shown = "".join(iv.committee_note())
        off = _offending_shown(item.text, item.offending, shown)
        if item.label == "good":
            t.good += 1
            whole = _norm(shown) == _norm(item.text)
            t.good_whole += whole
            t.good_cut += bool(shown.strip()) and not re.search(r"[.!?…][\"'”’)]*\s*$", shown)
            if not whole:
                t.misses.append(f"GOOD NOTE {item.action}\n  item:  {item.text}\n  shown: {shown}")
        else:
            t.bad += 1
            t.bad_shown += off > 0
            t.bad_shown_4 += off >= 4
            t.bad_fragment += 0 < off < 4
            t.bad_standing += _norm(shown) == _norm(item.text)
            if off:
                t.misses.append(f"BAD NOTE/{item.why} {item.action} shown={off}\n  item:  {item.text}\n  shown: {shown}")
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--actions", type=Path, help="write the actions file here")
    args = ap.parse_args(argv)
    if args.actions:
        acts = write_actions(args.actions)
        kinds = {k: sum(a["kind"] == k for a in acts) for k in KINDS}
        print(f"{len(acts)} actions -> {args.actions}: {kinds}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
