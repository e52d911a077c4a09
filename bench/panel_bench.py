"""Panel benchmark: a 20-turn panel through the real `Interview` (engine, grader, store), per-speaker
cache on (with prefill while the candidate types) and off.

Segments rotate researcher -> GTM lead -> product manager, one question each, so the speaker changes at
almost every turn (a weak answer earns a follow-up from the same panelist): the worst case for a single
shared context and the case the per-speaker KV state is for.

    .venv/bin/python bench/panel_bench.py [--model NAME_OR_PATH] [--turns 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from coach.config import Settings
from coach.engine import LlamaBackend
from coach.grader import Grader
from coach.models import resolve
from coach.prompts import Scenario, Segment, load_personas, load_scenarios
from coach.rubrics import load_all
from coach.session import Interview
from coach.store import Store

ANSWER = ("I would not lead with the headline number. First I would reproduce what the customer measured: the "
          "hardware, the prompt lengths, and whether they timed the first token or sustained decoding. If our launch "
          "claim does not hold, we correct it this week. Then sales gets a one-page comparison of cost-adjusted "
          "throughput on the buyer's own workload, where our numbers do hold, plus an offer to run it with them.")


def long_panel(turns: int) -> tuple[Scenario, object, dict]:
    personas, banks = load_personas(), load_all()
    base = load_scenarios(personas=personas, banks=banks)["pmm_final_panel"]
    bank = banks[base.rubric]
    qids = [q.id for q in bank.questions]
    order = ["researcher", "gtm", "pm"]
    segs = [Segment(panelist=order[i % 3], time_box_s=3600, questions=[qids[i % len(qids)]]) for i in range(turns)]
    pairs = [t for t in base.tension_pairs if any(s.panelist == t.by and t.question in s.questions for s in segs)]
    sc = base.model_copy(update={"id": "bench_long_panel", "shuffle_segments": False, "segments": segs,
                                 "tension_pairs": pairs[:1] or base.tension_pairs[:1]})
    return sc, bank, personas


def run(settings: Settings, path: Path, turns: int, cache: bool, grader: Grader) -> list[dict]:
    sc, bank, personas = long_panel(turns)
    be = LlamaBackend(path, n_ctx=settings.n_ctx, n_threads=settings.n_threads, n_gpu_layers=settings.n_gpu_layers,
                      speaker_cache=cache)
    be.complete("warm-up", [{"role": "user", "content": "Hello"}], max_tokens=4)
    be.forget()
    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    iv = Interview.start_with(sc, bank, personas, backend=be, grader=grader, store=store, seed=1, max_tokens=48)  # type: ignore[arg-type]
    rows = []
    while not iv.done and len(rows) < turns:
        t0 = time.perf_counter()
        for _ in iv.ask():
            pass
        total = time.perf_counter() - t0
        t = be.timings
        if iv.current is None or t is None:
            break
        rows.append({"turn": len(rows) + 1, "speaker": iv.current.action.panelist, "ttft_s": t.ttft_s,
                     "turn_s": total, "prompt_eval_tokens": t.prompt_eval_tokens, "prompt_tokens": t.prompt_tokens})
        if cache:
            iv.prefill_next()  # what the app does while the candidate types
        iv.answer(ANSWER, spent_s=60)
    be.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--turns", type=int, default=20)
    args = ap.parse_args()
    settings = Settings.from_env(model=args.model)
    ref = resolve(settings.model, settings)
    grader = Grader()
    print(f"model: {ref.name}, threads {settings.n_threads}, {args.turns} turns, speakers rotating")
    marks = [t for t in (1, 5, 10, 15, 20) if t <= args.turns]
    print(f"{'cache':6} " + " ".join(f"{'turn ' + str(t):>19}" for t in marks) + f" {'mean TTFT':>10} {'mean turn':>10}")
    for cache in (True, False):
        rows = run(settings, ref.path, args.turns, cache, grader)
        cells = [f"{r['ttft_s'] * 1000:5.0f}/{r['turn_s'] * 1000:5.0f} ms {r['prompt_eval_tokens']:4d}tk"
                 for r in (rows[t - 1] for t in marks if t <= len(rows))]
        print(f"{'on' if cache else 'off':6} " + " ".join(f"{c:>19}" for c in cells)
              + f" {statistics.mean(r['ttft_s'] for r in rows) * 1000:8.0f}ms"
              + f" {statistics.mean(r['turn_s'] for r in rows) * 1000:8.0f}ms")
    print("  (time to first token / whole turn, and prompt tokens llama.cpp evaluated; 48-token questions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
