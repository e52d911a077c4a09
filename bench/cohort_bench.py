"""Cohort benchmark: N simulated candidates on one coach server in front of one model server.

Starts a model server on the model (`coach.engine.serve`: llama.cpp's llama-server when installed, else
llama-cpp-python's) and `coach ui --backend URL --auth-header X-Coach-User`, then runs N candidates at
once, each signed in as itself through the UI's API (gradio_client). A candidate reads the question,
types a scripted answer at `--wpm` words a minute (the answer box is sent when the typing time is up),
and waits for the next panelist's first word. Candidates start `--stagger` seconds apart, as a cohort
drifts in.

Reports, per N: time to first word after Send (p50, p95), turns per minute across the cohort, the
share of prompt tokens the model server reused (from its reported timings; for llama-cpp-python's
server, from its log's prefix-match lines), errors, turns lost (sent but not stored), and cross-talk
(a candidate's words in another's transcript or session).

    .venv/bin/python bench/cohort_bench.py [--model NAME_OR_PATH] [--n 1,4,16] [--turns 3] [--wpm 40]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from coach.config import Settings
from coach.engine.serve import ModelServer, server_command
from coach.models.catalog import resolve

COACH = str(Path(sys.executable).with_name("coach"))
HEADER = "X-Coach-User"
ANSWER = ("As candidate {tag} I would reproduce what the customer measured first: hardware, prompt lengths, first "
          "token or sustained decoding. If our claim does not hold we correct it this week and give sales a "
          "cost-adjusted comparison on the buyer's own workload.")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def text_of(message: dict) -> str:
    content = message.get("content", "")
    return content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)


class Candidate(threading.Thread):
    def __init__(self, url: str, tag: str, turns: int, wpm: float, delay: float, drafts: bool = True) -> None:
        super().__init__(daemon=True)
        self.url, self.tag, self.turns, self.wpm, self.delay = url, tag, turns, wpm, delay
        self.drafts = drafts  # send the answer so far while typing (type-ahead on the model server)
        self.waits: list[float] = []  # Send (or Start) -> first word of the next panelist
        self.errors: list[str] = []
        self.sent = 0
        self.chat: list[dict] = []

    def _stream(self, client, *args, api: str) -> float | None:
        """Submit, and time the first output whose last message is a panelist's, with words in it."""
        t0 = time.perf_counter()
        job = client.submit(*args, api_name=api)
        first = None
        for out in job:
            chat = out[0] if isinstance(out, (list, tuple)) else None
            if first is None and chat and chat[-1].get("role") == "assistant" and \
                    len(text_of(chat[-1]).split("\n\n", 1)[-1].split()) >= 1 and len(chat) > len(self.chat):
                first = time.perf_counter() - t0
        result = job.outputs()[-1] if job.outputs() else None
        if result:
            self.chat = result[0]
            status = result[1] if len(result) > 1 else ""
            if status and ("could not" in status.lower() or "not saved" in status.lower()):
                self.errors.append(status[:200])
        return first

    def run(self) -> None:
        from gradio_client import Client

        time.sleep(self.delay)
        try:
            c = Client(self.url, headers={HEADER: self.tag}, verbose=False)
            w = self._stream(c, "PMM final panel", "", 7, False, api="/start")
            if w is not None:
                self.waits.append(w)
            answer = ANSWER.format(tag=self.tag)
            words = answer.split()
            for _ in range(self.turns):
                for i in range(5, len(words) + 5, 5):  # typing, five words at a time, as the browser sends drafts
                    time.sleep(min(5, len(words) - i + 5) / self.wpm * 60)
                    if self.drafts:
                        c.predict(" ".join(words[:i]), api_name="/draft")
                self.sent += 1
                w = self._stream(c, answer, False, api="/answer")
                if w is None:
                    self.errors.append("no next question")
                else:
                    self.waits.append(w)
        except Exception as exc:  # counted, not raised: the cohort goes on
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def log_reuse(log: Path, start: int) -> tuple[int, int] | None:
    """llama-cpp-python's server log: 'N prefix-match hit, remaining M prompt tokens to eval'."""
    text = log.read_bytes()[start:].decode(errors="replace")
    hits = [(int(a), int(b)) for a, b in re.findall(r"(\d+) prefix-match hit, remaining (\d+) prompt tokens", text)]
    return (sum(a for a, _ in hits), sum(a + b for a, b in hits)) if hits else None


def one_cohort(n: int, args: argparse.Namespace, model_url: str, model_log: Path, work: Path) -> dict:
    home = work / f"home-{n}"
    port = free_port()
    ui_log = work / f"ui-{n}.log"
    env = {**os.environ, "COACH_HOME": str(home)}
    with ui_log.open("w") as out:
        ui = subprocess.Popen([COACH, "ui", "--port", str(port), "--backend", model_url, "--auth-header", HEADER],
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={HEADER: "probe"}), timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    time.sleep(args.warm_s)  # the page is up at once; the grader loads and calibrates in the background
    log_start = model_log.stat().st_size
    cands = [Candidate(url, f"c{n}x{i:02d}", args.turns, args.wpm, i * args.stagger, not args.no_drafts)
             for i in range(n)]
    t0 = time.perf_counter()
    for c in cands:
        c.start()
    for c in cands:
        c.join()
    wall = time.perf_counter() - t0
    ui.terminate()
    ui.wait(timeout=30)

    db = sqlite3.connect(home / "coach.db")
    db.row_factory = sqlite3.Row
    sessions = db.execute("SELECT id, owner FROM sessions").fetchall()
    turns = db.execute("SELECT t.session_id, t.answer, t.spoken, t.timings, s.owner FROM turns t "
                       "JOIN sessions s ON s.id = t.session_id").fetchall()
    stored = sum(1 for t in turns if t["answer"] is not None)
    tags = {c.tag for c in cands}
    crosstalk = 0
    for t in turns:  # a stored answer carries only its owner's tag
        found = {tag for tag in tags if t["answer"] and f"candidate {tag} " in t["answer"]}
        crosstalk += bool(found - {t["owner"]})
    for c in cands:  # a candidate's transcript carries only its own tag
        seen = {tag for tag in tags if any(f"candidate {tag} " in text_of(m) for m in c.chat)}
        crosstalk += bool(seen - {c.tag})
    timed = [json.loads(t["timings"]) for t in turns if t["timings"]]
    reported = [t for t in timed if t.get("cache_reported")]
    if reported:
        reuse = sum(t["cached_tokens"] for t in reported) / max(1, sum(t["prompt_tokens"] for t in reported))
        reuse_src = "server timings"
    else:
        hit = log_reuse(model_log, log_start)
        reuse = hit[0] / hit[1] if hit else float("nan")
        reuse_src = "server log"
    waits = [w for c in cands for w in c.waits]
    sent = sum(c.sent for c in cands)
    return {"n": n, "sessions": len(sessions), "turns": stored, "sent": sent, "lost": sent - stored,
            "ttfw_p50": pct(waits, 0.5), "ttfw_p95": pct(waits, 0.95), "turns_per_min": stored / (wall / 60),
            "reuse": reuse, "reuse_src": reuse_src, "errors": sum(len(c.errors) for c in cands),
            "error_lines": sorted({e for c in cands for e in c.errors})[:3], "crosstalk": crosstalk, "wall_s": wall,
            "owners_ok": {r["owner"] for r in sessions} == tags,
            "start_waits": [round(c.waits[0], 2) for c in cands if c.waits][:16]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="catalog name, registered name or .gguf path (default: the embedded model)")
    ap.add_argument("--n", default="1,4,16", help="cohort sizes, comma-separated")
    ap.add_argument("--turns", type=int, default=3, help="answers per candidate")
    ap.add_argument("--wpm", type=float, default=40.0, help="typing pace, words a minute")
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds between candidates' starts")
    ap.add_argument("--slots", type=int, default=64, help="model server slots (llama-server; 4 per candidate)")
    ap.add_argument("--no-drafts", action="store_true", help="send each answer only whole: no type-ahead")
    ap.add_argument("--kind", choices=["llama-server", "llama-cpp-python"], help="default: llama-server if found")
    ap.add_argument("--threads", type=int, help="model server threads")
    ap.add_argument("--warm-s", type=float, default=25.0, help="wait after the coach server is up (grader warm-up)")
    args = ap.parse_args()
    settings = Settings.from_env()
    ref = resolve(args.model or "smollm2-135m-instruct", settings)
    work = Path(tempfile.mkdtemp(prefix="cohort-bench-"))
    model_log = work / "model-server.log"
    port = free_port()
    cmd = server_command(ref.path, port=port, n_ctx=4096, slots=args.slots, gpu_layers=0, threads=args.threads,
                         kind=args.kind)
    print(f"model: {ref.describe()} on {cmd.kind}; {os.cpu_count()} CPUs; answers of "
          f"{len(ANSWER.split())} words at {args.wpm:.0f} wpm, {args.turns} per candidate", flush=True)
    rows = []
    with model_log.open("ab") as log, ModelServer(cmd, port, log=log) as srv:
        for n in [int(x) for x in args.n.split(",")]:
            r = one_cohort(n, args, srv.url, model_log, work)
            rows.append(r)
            print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}), flush=True)
    print("\n| candidates | turns stored / sent | first word p50 | p95 | turns/min | server cache reuse | errors | "
          "cross-talk |\n|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['turns']} / {r['sent']} | {r['ttfw_p50']:.2f} s | {r['ttfw_p95']:.2f} s | "
              f"{r['turns_per_min']:.1f} | {r['reuse']:.0%} ({r['reuse_src']}) | {r['errors']} | {r['crosstalk']} |")
    bad = any(r["crosstalk"] or r["lost"] or not r["owners_ok"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
