"""Panel benchmark: what a candidate waits for, through the real `Interview` (engine, grader, store).

Segments rotate researcher -> GTM lead -> product manager, one question each, so the speaker changes at
almost every turn (a weak answer earns a follow-up from the same panelist).

Default mode (`--typing-s 60`): the app as it runs. The on-disk prefix cache starts empty, as on a new
model: the persona cards and every opening prompt are read when the model loads (as the UI's ModelHolder
does, timed), then the first session ever on the model is timed from Start to its first word; then a
second session's opening (from the same disk cache); each answer is
typed over `--typing-s` seconds, a few words at a time, while type-ahead reads it; the wait is from
Send to the first word of the next question (grading included); at the end, the committee's summary,
from the last Send. Turns in `--real-time` are typed in real time; the others are fed at once and we
wait for type-ahead to finish (and report how long it needed: under the typing time, real typing
hides it the same way).

What the panelists say (`--say corpus`, the default): a random-weight file writes noise, which the wording
checks refuse at its first sentence, so the wait would depend on where the noise happens to put a full
stop. Instead the engine runs its own sampler chain on every step (its cost is real) and keeps, token by
token, a good voicing from the labelled corpus (`tests/data/wording/`) for the same kind of turn, the same
question where the corpus has one: the decode is the model's real speed on realistic text, and "first
word" is the first whole sentence the wording checks let through, as a candidate sees it. `--say model`
keeps the model's own tokens.

`--compare` runs the older comparison instead: per-speaker cache on and off, no typing.

    .venv/bin/python bench/panel_bench.py [--model NAME_OR_PATH | --shape NAME:QUANT] [--turns 20] [--say corpus|model]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from coach.bench.ladder import bench_file
from coach.config import Settings
from coach.engine import LlamaBackend
from coach.grading.grader import Grader
from coach.grading.rubrics import Bank, load_all
from coach.interview.loader import load_local, read_ahead
from coach.interview.prompts import Persona, Scenario, Segment, load_personas, load_scenarios
from coach.interview.session import Interview, TypeAhead
from coach.models.catalog import ModelRef
from coach.models.machine import gpu_used_mb, vram_of
from coach.store import Store

ANSWER = ("I would not lead with the headline number. First I would reproduce what the customer measured: the "
          "hardware, the prompt lengths, and whether they timed the first token or sustained decoding. If our launch "
          "claim does not hold, we correct it this week. Then sales gets a one-page comparison of cost-adjusted "
          "throughput on the buyer's own workload, where our numbers do hold, plus an offer to run it with them.")


class Forced:
    """A sampler chain that runs as usual (its cost is real) but keeps the next token of `target`, then the
    end of the turn."""

    def __init__(self, real: Any, target: list[int], eos: int) -> None:
        self.real, self.target, self.eos, self.i = real, target, eos, 0

    def sample(self, ctx: Any, idx: int) -> int:
        self.real.sample(ctx, idx)
        tok = self.target[self.i] if self.i < len(self.target) else self.eos
        self.i += 1
        return tok

    def accept(self, tok: int) -> None:
        self.real.accept(tok)

    def close(self) -> None:
        self.real.close()


class Script:
    """What the panel says under `--say corpus`: per turn, a good voicing of the corpus for the same kind of
    turn (the same question when the corpus has one), cycling; the chair's note from the good notes."""

    def __init__(self) -> None:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bench.wording_corpus import load_actions, load_items, load_notes

        actions = load_actions()
        self.by: dict[tuple[str, str], list[str]] = {}
        for it in load_items():
            if it.label == "good":
                a = actions[it.action]
                self.by.setdefault((a["kind"], a.get("question_id") or ""), []).append(it.text)
                self.by.setdefault((a["kind"], ""), []).append(it.text)
        self.notes = [n.text for n in load_notes() if n.label == "good"]
        self.n = 0
        self.text = ""

    def pick(self, kind: str, question_id: str | None) -> None:
        pool = self.by.get((kind, question_id or "")) or self.by[(kind, "")]
        self.text = pool[self.n % len(pool)]
        self.n += 1

    def note(self) -> None:
        self.text = self.notes[self.n % len(self.notes)]
        self.n += 1

    def force(self, be: LlamaBackend) -> None:
        """From now on `be` says `self.text` (tokenized by the file's own vocabulary) on every turn."""
        be.sampler_hook = lambda sampler: Forced(sampler, be.tokenize_text(self.text), be.eos_token)



def long_panel(turns: int) -> tuple[Scenario, Bank, dict[str, Persona]]:
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


def _peak_rss_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    return 0.0


SHOWN: list[str] = []  # what each timed turn showed, whole


def first_chunk(it) -> float:
    """perf_counter() at the first non-empty chunk; the rest is drained (and kept in SHOWN)."""
    first = None
    text = ""
    for c in it:
        if first is None and c.strip():
            first = time.perf_counter()
        text += c
    SHOWN.append(text)
    return first if first is not None else time.perf_counter()


def voiced(script: Script | None) -> str:
    """Whether the last turn showed the panelist's own wording (the forced voicing) or the written question."""
    if script is None or not SHOWN:
        return ""
    return "voiced" if SHOWN[-1].strip()[:24] == script.text.strip()[:24] else "written"


def typed(ta: TypeAhead, answer: str, seconds: float) -> None:
    """Type `answer` over `seconds`, a word at a time at an even pace."""
    words = answer.split()
    t0 = time.perf_counter()
    for i in range(1, len(words) + 1):
        ta.update(" ".join(words[:i]))
        time.sleep(max(0.0, t0 + seconds * i / len(words) - time.perf_counter()))


def app_run(be: LlamaBackend, settings: Settings, turns: int, typing_s: float, real_time: set[int],
            grader: Grader, cache_dir: Path, script: Script | None = None) -> dict:
    sc, bank, personas = long_panel(turns)
    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    out: dict = {"rows": []}
    t0 = time.perf_counter()
    n = read_ahead(be, cache_dir, [(sc, bank, personas)])  # as the UI does when a model loads
    out["cards_read_s"], out["cards_tokens"] = time.perf_counter() - t0, n
    print(f"cards and openings read at load (before Start): {n} tokens in {out['cards_read_s']:.1f} s", flush=True)
    for session in (1, 2):  # the first fills the on-disk card cache; the second is what a returning user sees
        be.forget()
        t0 = time.perf_counter()
        iv = Interview.start_with(sc, bank, personas, backend=be, grader=grader, store=store, seed=1,
                                  cache_dir=cache_dir)
        import threading

        warm = threading.Thread(target=iv.warm_up, daemon=True)
        warm.start()
        if script:
            a = iv.next_action()
            script.pick(a.kind, a.question_id)
        out[f"open_s_{session}"] = first_chunk(iv.ask()) - t0
        out[f"open_eval_{session}"] = be.timings.prompt_eval_tokens if be.timings else -1
        print(f"session {session}: opening question {out[f'open_s_{session}']:.2f} s after Start "
              f"({out[f'open_eval_{session}']} prompt tokens evaluated)", flush=True)
        if session == 1:
            warm.join()
    for turn in range(2, turns + 1):
        ta = TypeAhead(iv.type_ahead, lambda: iv.backend.turn_waiting, interrupt=iv.backend.interrupt)
        t_type = time.perf_counter()
        if turn in real_time:
            typed(ta, ANSWER, typing_s)
            caught_up = None
        else:
            ta.update(ANSWER)
            while not ta.caught_up(ANSWER):  # wait for type-ahead to finish: what real typing would hide
                time.sleep(0.05)
            caught_up = time.perf_counter() - t_type
        t_send = time.perf_counter()  # Send: the app stops type-ahead inside `answer`, so its stop is in the wait
        ta.stop()
        iv.answer(ANSWER, spent_s=typing_s)
        answered = time.perf_counter() - t_send  # stopping type-ahead, grading, storing
        if iv.done:
            break
        if script:
            a = iv.next_action()
            script.pick(a.kind, a.question_id)
        wait = first_chunk(iv.ask()) - t_send
        t = be.timings
        row = {"turn": turn, "speaker": iv.current.action.panelist if iv.current else "?",
               "kind": iv.current.action.kind if iv.current else "?", "send_to_word_s": wait,
               "eval": t.prompt_eval_tokens if t else -1, "prompt": t.prompt_tokens if t else -1,
               "type_ahead_s": caught_up, "typed": turn in real_time, "tail_ms": t.prompt_eval_ms if t else 0,
               "shown": voiced(script), "answer_s": answered}
        out["rows"].append(row)
        row["engine_ttft_s"] = t.ttft_s if t else 0.0  # the model's first token, from the turn's start
        row["gen_tps"] = t.gen_tokens_per_s if t else 0.0  # the whole turn drained: its decoding speed
        print(f"turn {turn:2d} {row['speaker']:10} {row['kind']:10} Send->first word {wait:6.2f} s "
              f"(answer {answered:4.2f} s, model's first token {row['engine_ttft_s']:5.2f} s of which prompt "
              f"{(t.prompt_eval_ms if t else 0) / 1000:4.2f} s)  "
              f"evaluated {row['eval']:4d} of {row['prompt']:5d} tokens"
              + (f"  (type-ahead needed {caught_up:.1f} s)" if caught_up is not None else "  (typed in real time)")
              + (f"  {row['shown']}" if row["shown"] else ""),
              flush=True)
    # the last answer, then the committee's summary: the debrief's first word, from Send (typed in real
    # time when the last turn is, so any backlog the session built up is in the figure)
    if iv.current is not None:
        ta = TypeAhead(iv.type_ahead, lambda: iv.backend.turn_waiting, interrupt=iv.backend.interrupt)
        if turns in real_time:
            typed(ta, ANSWER, typing_s)
        else:
            ta.update(ANSWER)
            while not ta.caught_up(ANSWER):
                time.sleep(0.05)
    t_send = time.perf_counter()
    if iv.current is not None:
        ta.stop()
        iv.answer(ANSWER, spent_s=typing_s)
    iv.debrief()
    out["verdicts_s"] = time.perf_counter() - t_send  # the committee's decision and verdicts (grader)
    if script:
        script.note()
    t_note = time.perf_counter()
    shown = first_chunk(iv.committee_note())
    t = be.timings
    out["chair_ttft_s"] = (t_note - t_send) + (t.ttft_s if t else 0.0)
    out["debrief_s"] = shown - t_send
    out["debrief_eval"] = t.prompt_eval_tokens if t else -1
    print(f"debrief: decision and verdicts {out['verdicts_s']:.2f} s after the last Send; the chair's first token "
          f"{out['chair_ttft_s']:.2f} s ({out['debrief_eval']} prompt tokens evaluated); its first shown words "
          f"{out['debrief_s']:.2f} s (held until its first whole sentence passes the wording checks) "
          f"{voiced(script)}", flush=True)
    return out


def compare_run(settings: Settings, ref: ModelRef, turns: int, cache: bool, grader: Grader) -> list[dict]:
    sc, bank, personas = long_panel(turns)
    be = load_local(settings, ref, speaker_cache=cache)
    be.complete("warm-up", [{"role": "user", "content": "Hello"}], max_tokens=4)
    be.forget()
    store = Store(Path(tempfile.mkdtemp()) / "bench.db")
    iv = Interview.start_with(sc, bank, personas, backend=be, grader=grader, store=store, seed=1, max_tokens=48)
    rows: list[dict[str, Any]] = []
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
            iv.type_ahead(ANSWER)  # what the app does while the candidate types
        iv.answer(ANSWER, spent_s=60)
    be.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--shape", metavar="NAME:QUANT", help="a random-weight file with a catalog model's exact shape")
    ap.add_argument("--turns", type=int, default=20)
    ap.add_argument("--typing-s", type=float, default=60.0, help="seconds to type each answer")
    ap.add_argument("--real-time", default="2,10,20", help="turns typed in real time (the others fast-forwarded)")
    ap.add_argument("--compare", action="store_true", help="cache on/off comparison with no typing")
    ap.add_argument("--kv", choices=("f16", "q8_0"), default="f16", help="the KV cache's type (q8_0: flash attention)")
    ap.add_argument("--say", choices=("corpus", "model"), default="corpus",
                    help="corpus: the engine keeps a good corpus voicing token by token; model: its own tokens")
    args = ap.parse_args()
    settings = Settings.from_env(model=args.model)
    ref = bench_file(settings, args.shape)
    grader = Grader.from_settings(settings)
    bank = next(iter(load_all().values()))
    grader.grade(bank, bank.questions[0], ANSWER)  # load the grader's model before anything is timed
    print(f"model: {ref.name} ({ref.path.stat().st_size / 1e9:.2f} GB), threads {settings.n_threads}, "
          f"{args.turns} turns, speakers rotating, KV cache {args.kv}", flush=True)
    if args.compare:
        marks = [t for t in (1, 5, 10, 15, 20) if t <= args.turns]
        print(f"{'cache':6} " + " ".join(f"{'turn ' + str(t):>19}" for t in marks)
              + f" {'mean TTFT':>10} {'mean turn':>10}")
        for cache in (True, False):
            rows = compare_run(settings, ref, args.turns, cache, grader)
            cells = [f"{r['ttft_s'] * 1000:5.0f}/{r['turn_s'] * 1000:5.0f} ms {r['prompt_eval_tokens']:4d}tk"
                     for r in (rows[t - 1] for t in marks if t <= len(rows))]
            print(f"{'on' if cache else 'off':6} " + " ".join(f"{c:>19}" for c in cells)
                  + f" {statistics.mean(r['ttft_s'] for r in rows) * 1000:8.0f}ms"
                  + f" {statistics.mean(r['turn_s'] for r in rows) * 1000:8.0f}ms")
        print("  (time to first token / whole turn, and prompt tokens llama.cpp evaluated; 48-token questions)")
        return 0
    gpu_before = gpu_used_mb()
    be = load_local(settings, ref, kv_type=args.kv)
    print("load average at the start (1/5/15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    print(f"loaded in {be.load_s:.1f} s; KV {be.n_slots} x {be.cells} cells (grown up to {be.n_ctx}); "
          f"use_mmap={be.use_mmap}", flush=True)
    real = {int(x) for x in args.real_time.split(",") if x.strip()}
    script = Script() if args.say == "corpus" else None
    if script:
        script.force(be)
    fresh = Path(tempfile.mkdtemp(prefix="coach-kv-"))  # a new model: nothing cached on disk yet
    out = app_run(be, settings, args.turns, args.typing_s, real, grader, fresh, script)
    kv_gb = be.info.kv_bytes_per_token() * be.cells * be.n_slots / 1e9 * (34 / 64 if args.kv == "q8_0" else 1)
    size_gb = ref.path.stat().st_size / 1e9
    rss = _peak_rss_gb()
    waits = [r["send_to_word_s"] for r in out["rows"]]
    print(f"\nSend -> first word: median {statistics.median(waits):.2f} s, max {max(waits):.2f} s over "
          f"{len(waits)} turns; typed in real time: "
          + ", ".join(f"turn {r['turn']} {r['send_to_word_s']:.2f} s" for r in out["rows"] if r["typed"]))
    tps = [r["gen_tps"] for r in out["rows"] if r["gen_tps"] > 0]
    if tps:
        print(f"generation: median {statistics.median(tps):.1f} tokens/s ({min(tps):.1f}-{max(tps):.1f}) over "
              f"{len(tps)} turns")
    print(f"first session ever on this model: {out['open_s_1']:.2f} s from Start to the first word (cards and "
          f"openings read at load in {out['cards_read_s']:.1f} s); ", end="")
    print(f"opening of a second session: {out['open_s_2']:.2f} s after Start; debrief: verdicts "
          f"{out['verdicts_s']:.2f} s, the chair's first token {out['chair_ttft_s']:.2f} s")
    if be.n_gpu_layers:
        print(f"GPU: {'all' if be.n_gpu_layers < 0 else be.n_gpu_layers} layers offloaded; VRAM at the end "
              f"{vram_of(os.getpid(), gpu_before):.0f} MiB (model, every speaker's KV cache, buffers)")
    print(f"peak RSS {rss:.2f} GB = file {size_gb:.2f} GB + KV {kv_gb:.2f} GB + {rss - size_gb - kv_gb:.2f} GB")
    print("load average at the end (1/5/15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + " (a shared machine: these are loaded-machine numbers when it is above the core count)")
    be.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
