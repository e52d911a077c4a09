"""How often a panelist's own wording stands, on a real model: scripted sessions over every scenario.

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
from coach.grader import Grader
from coach.loader import load_backend
from coach.prompts import load_scenarios
from coach.session import Interview
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
    args = ap.parse_args()
    settings = Settings.from_env(model=args.model, n_ctx=4096)
    be = load_backend(settings)
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


if __name__ == "__main__":
    raise SystemExit(main())
