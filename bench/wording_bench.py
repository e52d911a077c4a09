"""How a panelist's wording fares: on the labelled corpus (`--corpus`), or on a real model's sessions.

`--corpus` streams every voicing of tests/data/wording/ (written the way a 7-8B instruct model writes,
for real actions of all five scenarios) through the real `Interview`, in Mistral v3 token pieces under the
engine's stop strings and budget, and prints per kind of action what the candidate would have seen: good
wording standing whole, good wording cut mid-sentence, a question shown twice, bad wording with any
offending word on screen, bad wording standing; and whether the app's own written question passes the
same checks. `--set aside` is the fifth kept aside for the final measurement.

    .venv/bin/python bench/wording_bench.py --corpus [--set tune|aside|all] [--misses]

Each turn ends one of three ways: the model's wording alone; the model's wording followed by the written
question (it stood, but did not ask the question); or the written question alone (nothing the model said
passed the checks). A random-weight shape file says nothing about wording: run this on a real model.

    .venv/bin/python bench/wording_bench.py [--model NAME] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import collections
import tempfile
from pathlib import Path

from coach.config import Settings
from coach.grading.grader import Grader
from coach.interview.loader import load_local
from coach.interview.prompts import load_scenarios
from coach.interview.session import Interview
from coach.store import Store

ANSWERS = [
    "I would reproduce what the customer measured first: hardware, prompt lengths, first token or sustained "
    "decoding. If our claim does not hold we correct it this week and give sales a cost-adjusted comparison.",
    "We need better messaging.",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--corpus", action="store_true", help="measure on the labelled corpus instead of a model")
    ap.add_argument("--set", default="dev",
                    choices=["tune", "aside", "dev", "fresh", "fresh2", "fresh3", "fresh4", "fresh5"],
                    help="tune, aside (the first round's held-out part), dev (both), fresh, fresh2, fresh3 (written "
                         "after the first, second and third rounds), fresh4 and fresh5 (written after the fourth "
                         "and the fifth by writers who had not seen the checks, each measured once at the end)")
    ap.add_argument("--misses", action="store_true", help="print every item that missed its goal")
    ap.add_argument("--limit", type=int, help="only the first N voicings and notes of the set (a quick check)")
    args = ap.parse_args()
    if args.corpus:
        return corpus(args.set, args.misses, args.limit)
    settings = Settings.from_env(model=args.model, n_ctx=4096)
    be = load_local(settings)
    grader = Grader.from_settings(settings)
    store = Store(Path(tempfile.mkdtemp()) / "wording.db")
    ends: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    scenarios = load_scenarios()
    for sid in scenarios:
        for seed in (int(s) for s in args.seeds.split(",")):
            iv = Interview.start(sid, backend=be, grader=grader, store=store, seed=seed)
            i = 0
            while not iv.done:
                "".join(iv.ask())
                if iv.current is not None:
                    iv.answer(ANSWERS[i % 2], spent_s=60)
                    i += 1
            be.forget()
            for t in store.turns(iv.session_id):
                end = ("model" if not t["fallback"] else "written only" if t["spoken"] == t["canonical"]
                       else "model + written")
                ends[end] += 1
                by_kind[t["kind"]][end] += 1
                if t["fallback"]:
                    reasons[t["fallback"]] += 1
    total = sum(ends.values())
    print(f"{total} turns over {len(scenarios)} scenarios x seeds {args.seeds}, model {be.info.path.name}")
    for end in ("model", "model + written", "written only"):
        print(f"  {end:16} {ends[end]:4d}  {ends[end] / total:6.1%}")
    for kind, c in sorted(by_kind.items()):
        print(f"  {kind:10} " + ", ".join(f"{k} {v}" for k, v in c.most_common()))
    print("  why the written line was needed: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common()))
    return 0


def corpus(which: str, misses: bool, limit: int | None = None) -> int:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench import wording_corpus as wc

    actions = wc.load_actions()
    if which in wc.FRESH_SETS:
        items = wc.load_items(wc.FRESH_SETS[which])
        notes = wc.load_notes(wc.FRESH_NOTES) if which == "fresh" else []
    else:
        items = [i for i in wc.load_items() if which in ("dev", i.set)]
        notes = [n for n in wc.load_notes() if which in ("dev", n.set)]
    if limit is not None:
        items, notes = items[:limit], notes[:limit]
    tallies = wc.measure(items, actions)
    print(f"{len(items)} voicings ({which}) for {len({i.action for i in items})} actions, streamed through Interview.ask "
          "in Mistral v3 token pieces")
    print(f"{'kind':11} {'good whole':>14} {'good cut':>9} {'twice':>6} {'bad shown':>10} {'  of which 4+':>13} "
          f"{'bad standing':>13} {'written passes':>15}")
    total = wc.Tally()
    for t in tallies.values():
        for f in ("good", "good_whole", "good_cut", "twice", "bad", "bad_shown", "bad_shown_4", "bad_fragment",
                  "bad_standing", "written", "written_pass"):
            setattr(total, f, getattr(total, f) + getattr(t, f))
    for kind, t in [*tallies.items(), ("all", total)]:
        print(f"{kind:11} {_frac(t.good_whole, t.good):>14} {t.good_cut:>9} {t.twice:>6} {_frac(t.bad_shown, t.bad):>10} "
              f"{t.bad_shown_4:>13} {_frac(t.bad_standing, t.bad):>13} {_frac(t.written_pass, t.written):>15}")
    nt = wc.measure_notes(notes, actions)
    print(f"{'chair note':11} {_frac(nt.good_whole, nt.good):>14} {nt.good_cut:>9} {'-':>6} "
          f"{_frac(nt.bad_shown, nt.bad):>10} "
          f"{nt.bad_shown_4:>13} {_frac(nt.bad_standing, nt.bad):>13} {'-':>15}")
    # what the candidate waits for: the typing mark at once, then the first whole sentence
    from statistics import median, quantiles

    from coach.engine.scripted import mistral_pieces
    from coach.wording.sentences import split

    first = sorted(len(mistral_pieces(split(i.text)[0])) for i in items if i.label == "good")
    print(f"first sentence of a good voicing: median {median(first):.0f} tokens, 90th percentile "
          f"{quantiles(first, n=10)[-1]:.0f} (Mistral v3); shown when it is whole, the typing mark meanwhile")
    if misses:
        for kind, t in [*tallies.items(), ("note", nt)]:
            for m in t.misses:
                print(f"\n[{kind}] {m}")
    return 0


def _frac(n: int, d: int) -> str:
    return f"{n}/{d} ({n / d:.0%})" if d else "-"


if __name__ == "__main__":
    raise SystemExit(main())
