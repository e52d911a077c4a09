"""Grader latency: one answer graded warm (exemplar vectors cached), across torch thread counts.

    .venv/bin/python bench/grader_bench.py [--reps 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

ANSWER = ("Before reacting I'd pull the customer's test setup: which hardware, how long the prompts were, whether "
          "they timed the first token or sustained decoding. If our launch figure can't be reproduced we fix it "
          "publicly. Then account teams get a calculator showing price and latency together on their own traffic.")


def one(threads: int, reps: int) -> None:
    import tempfile
    from pathlib import Path

    from coach.grading.embedder import MiniLMEmbedder
    from coach.grading.grader import Grader
    from coach.grading.rubrics import RUBRICS_DIR, load_bank

    t0 = time.perf_counter()
    bank = load_bank(RUBRICS_DIR / "pmm_final_panel.yaml")
    g = Grader(MiniLMEmbedder(threads=threads), cache_dir=Path(tempfile.mkdtemp()))
    q = bank.get("fp-speed-pushback")
    g.grade(bank, q, "warm up")  # loads the model and embeds the exemplars once
    cold = time.perf_counter() - t0
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        g.grade(bank, q, ANSWER)
        times.append((time.perf_counter() - t) * 1000)
    print(f"threads {threads}: warm grade median {statistics.median(times):6.1f} ms, p90 "
          f"{sorted(times)[int(0.9 * len(times)) - 1]:6.1f} ms  (first grade incl. model load {cold:.1f} s)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--threads", type=int, help="measure only this thread count (used by the sweep)")
    args = ap.parse_args()
    if args.threads:
        one(args.threads, args.reps)
        return 0
    for th in (1, 2):  # a fresh process each: torch's thread pool is fixed once used
        subprocess.run([sys.executable, __file__, "--threads", str(th), "--reps", str(args.reps)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
