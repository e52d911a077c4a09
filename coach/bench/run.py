"""The benchmark: speed, memory and quality per quantization level, and a recommendation for this machine.

Each file is measured in its own worker process (`python -m coach.bench.run --worker`): its peak RSS is its
own, and a file that crashes llama.cpp costs one failed row, not the run. Rows are written as they
finish, so Ctrl-C keeps them. Quality is KL divergence and top-1 agreement of next-token distributions
against the highest-precision file in the set, on a fixed interview-domain text; the reference's
log-probabilities go to a memory-mapped file, so comparing costs one chunk of rows at a time.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from coach.bench.rows import BenchRow
from coach.config import DATA_DIR, Settings
from coach.errors import CoachError
from coach.models.catalog import ModelRef
from coach.models.download import sha256_file
from coach.models.fit import Footprint, available_ram, fits_cpu
from coach.models.gguf import read_header
from coach.models.machine import gpu_used_mb, manifest, memory_bandwidth, peak_rss_mb, vram_of

# Approximate bits per weight, to order files by precision (the highest is the quality reference).
BITS = {"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q5_K_S": 5.5, "Q5_1": 6,
        "Q5_0": 5.5, "Q4_K_M": 4.8, "Q4_K_S": 4.6, "Q4_1": 5.0, "Q4_0": 4.5, "IQ4_XS": 4.3, "Q3_K_L": 4.3,
        "Q3_K_M": 3.9, "Q3_K_S": 3.5, "Q2_K": 3.4}
QUALITY_TEXT = DATA_DIR / "quality_text.txt"
log = logging.getLogger(__name__)

MIN_TOP1 = 0.90  # the recommendation's quality bar: agreement with the reference on the next token
TIE = 0.03  # generation speeds this close are a tie (the spread between repetitions reaches ~3% here)


# ------------------------------------------------------------------ the worker (one process per file)


def _median_spread(xs: list[float]) -> tuple[float, float]:
    return float(statistics.median(xs)), float(max(xs) - min(xs)) if len(xs) > 1 else 0.0


def measure(path: Path, *, threads: int, gpu_layers: int | None, n_ctx: int, reps: int, ref_logprobs: Path | None,
            write_ref: Path | None) -> dict[str, Any]:
    from coach.engine import LlamaBackend

    info = read_header(path)
    gpu_before = gpu_used_mb()
    t0 = time.perf_counter()
    be = LlamaBackend(path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=gpu_layers, check_memory=False)
    load_s = time.perf_counter() - t0
    words = QUALITY_TEXT.read_text().split()
    text_tokens = be.tokenize_text(" ".join(words * 4))
    pp_tokens = text_tokens[:512]
    be.measure.time_prompt(pp_tokens[:32])  # warm-up: fault the weights in
    pp, gen = [], []
    for _ in range(reps):
        pp.append(len(pp_tokens) / be.measure.time_prompt(pp_tokens))
        gen.append(be.measure.decode_rate(pp_tokens[:16], 127))
    ttft_open, ttft_follow, ttft_debrief = turn_shapes(be, words)
    vram_mb = vram_of(os.getpid(), gpu_before) if be.n_gpu_layers else 0.0  # while the model and its KV cache are loaded
    be.close()

    # Peak memory of the app's shapes, taken before the quality pass (its logits buffer is a measuring cost).
    peak_rss = peak_rss_mb()

    kl = top1 = None
    if ref_logprobs is not None or write_ref is not None:  # not for shape files: their text is noise
        kl, top1 = _quality(path, text_tokens, threads, be.n_gpu_layers, ref_logprobs, write_ref)
    pp_m, pp_s = _median_spread(pp)
    gen_m, gen_s = _median_spread(gen)
    return {"load_s": load_s, "pp_tps": pp_m, "pp_spread": pp_s, "gen_tps": gen_m, "gen_spread": gen_s,
            "ttft_open_ms": ttft_open * 1000, "ttft_follow_ms": ttft_follow * 1000, "ttft_debrief_ms": ttft_debrief * 1000,
            "peak_rss_mb": peak_rss,
            "kv_mb": info.kv_bytes_per_token() * min(n_ctx, info.n_ctx_train) * be.n_slots / 2**20,
            "gpu_layers": be.n_gpu_layers, "vram_mb": vram_mb, "kl": kl, "top1": top1}


def _quality(path: Path, text_tokens: list[int], threads: int, gpu_layers: int, ref_logprobs: Path | None,
             write_ref: Path | None) -> tuple[float | None, float | None]:
    """KL divergence and top-1 agreement with the reference file's next-token distribution."""
    import llama_cpp

    kl = top1 = None
    q_tokens = text_tokens[: min(len(text_tokens), 480)]
    qllm = llama_cpp.Llama(model_path=str(path), n_ctx=512, n_threads=threads, logits_all=True, verbose=False,
                           n_gpu_layers=gpu_layers)
    qllm.eval(q_tokens)
    n, vocab = len(q_tokens), qllm.n_vocab()
    ref = np.load(ref_logprobs, mmap_mode="r") if ref_logprobs is not None and write_ref is None else None
    out = np.lib.format.open_memmap(write_ref, mode="w+", dtype=np.float32, shape=(n, vocab)) if write_ref else None
    if ref is not None:
        n = min(n, len(ref))
    kls: list[float] = []
    agree = 0
    for i in range(0, n, 64):  # bounded memory: 64 rows of logits at a time, the reference memory-mapped
        logp = np.asarray(qllm.scores[i:min(i + 64, n)], dtype=np.float64)
        logp -= logp.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        if out is not None:
            out[i:i + len(logp)] = logp
        elif ref is not None:
            r = np.asarray(ref[i:i + len(logp)], dtype=np.float64)
            kls.extend((np.exp(r) * (r - logp)).sum(axis=1))
            agree += int((r.argmax(axis=1) == logp.argmax(axis=1)).sum())
    qllm.close()
    if out is not None:
        out.flush()
        del out
        kl, top1 = 0.0, 1.0
    elif ref is not None:
        kl, top1 = float(np.mean(kls)), agree / n
    return kl, top1


def turn_shapes(be: Any, words: list[str]) -> tuple[float, float, float]:
    """Seconds to the first token on the app's three waits, measured the way the app runs them
    (`coach.interview.session`): the opening question with the persona card already evaluated at session start
    (or loaded from the on-disk prefix cache); a follow-up after type-ahead has read the answer while
    it was typed, so only the end of the answer and the instruction are left; the committee's summary
    after the record was read turn by turn, so only its last instruction is left."""
    from coach.interview.threads import ANSWERED, AS_PLANNED, PLAN, SUMMARY_REQUEST, WALKED_IN, YOUR_TURN

    card = {"role": "system", "content": " ".join(words[:160])}
    reminder = "(You are Dana Reyes, senior researcher. Stay in role.)"
    be.forget()
    opening = [card, {"role": "user", "content": f"{reminder}\n\n{WALKED_IN}\n\n{YOUR_TURN}Introduce yourself in a "
                      "few words as Dana Reyes, then ask. Ask this question in your own voice, in at most two "
                      "sentences: What would you tell sales this week?"}]
    be.prefill("panelist", [card, {"role": "user", "content": reminder}])
    be.complete("panelist", opening, max_tokens=8, temperature=0)
    ttft_open = be.timings.ttft_s if be.timings else 0.0
    plan = PLAN + "Ask this question in your own voice, in at most two sentences: How would you measure it?"
    answer = " ".join(words[160:260])
    thread = [*opening, {"role": "assistant", "content": "What would you tell sales this week?"}]
    be.prefill("panelist", [*thread, {"role": "user", "content": f"{reminder}\n\n{plan}\n\n{ANSWERED}{answer}"}])
    be.complete("panelist", [*thread, {"role": "user", "content": f'{reminder}\n\n{plan}\n\n{ANSWERED}{answer}"'
                                                                  f"\n\n{AS_PLANNED}"}], max_tokens=8, temperature=0)
    ttft_follow = be.timings.ttft_s if be.timings else 0.0
    committee = {"role": "system", "content": "You chair the hiring committee."}
    record = "The panel's record, turn by turn:\n\n" + " ".join(words[:340])
    be.prefill("committee", [committee, {"role": "user", "content": record}])
    be.complete("committee", [committee, {"role": "user", "content": f"{record}\n\n{SUMMARY_REQUEST}"}],
                max_tokens=8, temperature=0)
    ttft_debrief = be.timings.ttft_s if be.timings else 0.0
    return ttft_open, ttft_follow, ttft_debrief


# ------------------------------------------------------------------ the run

@dataclass
class Options:
    reps: int = 3
    threads: int | None = None
    gpu_layers: int | None = None
    thread_sweep: bool = False
    out_dir: Path | None = None
    timeout_s: int = 1800
    speed_only: bool = False  # random-weight shape files: no quality columns, their text is noise


def run(files: list[ModelRef], settings: Settings, opts: Options, *, progress: bool = True) -> tuple[list[BenchRow], Path]:
    import matplotlib.figure  # noqa: F401 - imported up front: a Ctrl-C during this import would leave it half-loaded
    from tqdm import tqdm

    threads = opts.threads or settings.n_threads
    out = opts.out_dir or settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    man = manifest(settings, threads)
    man["bandwidth_gbps"] = round(memory_bandwidth(), 2)
    ordered = sorted(files, key=lambda r: -BITS.get(r.quant, 0))
    ref_path = out / "reference_logprobs.npy"
    rows: list[BenchRow] = []
    have_ref = False
    bar = tqdm(ordered, desc="bench", unit="file", disable=not progress)
    try:
        for ref in bar:
            bar.set_postfix_str(ref.name)
            row = BenchRow(ref.name, ref.quant, str(ref.path), "ok", threads=threads)
            try:
                info = read_header(ref.path)
                row.size_mb = info.size_bytes / 2**20
                fp = Footprint.of(info, settings.n_ctx)  # the worker's one context, by the one fit rule
                need = fp.ram_only
                if not fits_cpu(fp, available_ram()):
                    row.status = "skipped"
                    row.error = f"needs about {need / 2**30:.1f} GiB, {available_ram() / 2**30:.1f} GiB free"
                else:
                    row.sha256 = sha256_file(ref.path)
                    data = _worker(ref.path, threads, opts, settings.n_ctx,
                                   None if opts.speed_only or not have_ref else ref_path,
                                   None if opts.speed_only or have_ref else ref_path)
                    for k, v in data.items():
                        setattr(row, k, v)
                    have_ref = True
                    bytes_per_token = info.size_bytes  # every weight is read once per generated token
                    row.achieved_gbps = row.gen_tps * bytes_per_token / 1e9
                    # a share of system-RAM bandwidth says nothing once layers run from VRAM: left at 0
                    cpu_only = not row.gpu_layers
                    row.bandwidth_share = (row.achieved_gbps / man["bandwidth_gbps"]
                                           if man["bandwidth_gbps"] and cpu_only else 0.0)
                    if opts.thread_sweep:
                        sweep = {}
                        for th in range(1, (psutil.cpu_count() or 1) + 1):
                            sweep[th] = round(_worker(ref.path, th, Options(reps=1, gpu_layers=opts.gpu_layers),
                                                      settings.n_ctx, None, None)["gen_tps"], 2)
                        man.setdefault("thread_sweep", {})[ref.name] = sweep
            except CoachError as exc:
                row.status, row.error = "failed", str(exc)
            rows.append(row)
            write_outputs(rows, man, out, settings)
    except KeyboardInterrupt:
        man["interrupted"] = True
        try:
            write_outputs(rows, man, out, settings)
        except Exception as exc:  # noqa: BLE001 - the rows were saved after each file; keep Ctrl-C a Ctrl-C
            log.warning("after Ctrl-C, rewriting the outputs failed (%s); the rows saved so far stand", exc)
        raise
    finally:
        bar.close()
        ref_path.unlink(missing_ok=True)  # scratch: n_tokens x n_vocab floats
    return rows, out


def _worker(path: Path, threads: int, opts: Options, n_ctx: int, ref: Path | None, write_ref: Path | None) -> dict:
    args = [sys.executable, "-m", "coach.bench.run", "--worker", str(path), "--threads", str(threads), "--reps",
            str(opts.reps), "--n-ctx", str(n_ctx)]
    if opts.gpu_layers is not None:
        args += ["--gpu-layers", str(opts.gpu_layers)]
    if ref is not None:
        args += ["--ref", str(ref)]
    if write_ref is not None:
        args += ["--write-ref", str(write_ref)]
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=opts.timeout_s)
    except subprocess.TimeoutExpired:
        raise CoachError(f"timed out after {opts.timeout_s} s") from None
    if p.returncode < 0:  # killed by a signal: llama.cpp crashed, or the OOM killer took it
        raise CoachError(f"the measuring process was killed by signal {-p.returncode}"
                         + (" (out of memory?)" if -p.returncode == 9 else " (llama.cpp crashed on this file)"))
    if p.returncode != 0:
        lines = [line for line in (p.stderr or p.stdout).strip().splitlines() if line.strip()]
        raise CoachError(lines[-1][:300] if lines else f"worker exited with {p.returncode}")
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def recommend(rows: list[BenchRow]) -> str:
    """The fastest file that meets the quality bar; among files within TIE of its speed (a difference
    the run's own spread can produce), the most faithful one."""
    ok = [r for r in rows if r.status == "ok"]
    if not ok:
        return "No file could be measured on this machine."
    if all(r.top1 is None for r in ok) and len(ok) and all(r.name.endswith(".shape") for r in ok):
        fastest = max(ok, key=lambda r: r.gen_tps)
        return (f"Speed and memory only (random-weight shape files; their text is noise): {fastest.quant} is the "
                f"fastest here at {fastest.gen_tps:.1f} tok/s, first word of a follow-up after "
                f"{fastest.ttft_follow_ms / 1000:.1f} s, peak RSS {fastest.peak_rss_mb / 1000:.1f} GB. "
                "Pull the real file for quality.")
    good = [r for r in ok if (r.top1 if r.top1 is not None else 1.0) >= MIN_TOP1]
    if not good:
        pick = max(ok, key=lambda r: r.top1 or 0)
        why = "none met the quality bar, so the most faithful one"
    else:
        fastest = max(good, key=lambda r: r.gen_tps)
        near = [r for r in good if r.gen_tps >= (1 - TIE) * fastest.gen_tps]
        pick = max(near, key=lambda r: (r.top1 if r.top1 is not None else 1.0, r.gen_tps))
        why = f"the fastest file whose next token agrees with the reference at least {MIN_TOP1:.0%} of the time"
        if pick is not fastest:
            why = (f"as fast as {fastest.quant} within {TIE:.0%} ({fastest.gen_tps:.1f} tok/s) and more faithful; "
                   f"both agree with the reference at least {MIN_TOP1:.0%} of the time")
    gb = pick.size_mb * 2**20 / 1e9
    return (f"On this machine: {pick.quant} ({pick.name}), {pick.gen_tps:.1f} tok/s, {gb:.2f} GB, "
            f"top-1 agreement {(pick.top1 or 0):.0%} — {why}.")


def write_outputs(rows: list[BenchRow], man: dict[str, Any], out: Path, settings: Settings) -> None:
    names = [f.name for f in fields(BenchRow)]
    tmp = out / "rows.csv.tmp"
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    os.replace(tmp, out / "rows.csv")
    doc = {"manifest": man, "recommendation": recommend(rows), "rows": [asdict(r) for r in rows]}
    (out / "rows.json.tmp").write_text(json.dumps(doc, indent=2))
    os.replace(out / "rows.json.tmp", out / "rows.json")
    _store_rows(rows, man, out, settings)
    if any(r.status == "ok" for r in rows):
        from coach.bench.plot import bench_plot

        bench_plot(rows, out, recommend(rows))


def _store_rows(rows: list[BenchRow], man: dict[str, Any], out: Path, settings: Settings) -> None:
    from coach.store import Store

    store = Store.open_default(settings.home)
    try:
        store.save_bench(out.name, man, [asdict(r) for r in rows])
    finally:
        store.close()


def _worker_main(argv: list[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", type=Path, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--n-ctx", type=int, default=8192)
    ap.add_argument("--gpu-layers", type=int)
    ap.add_argument("--ref", type=Path)
    ap.add_argument("--write-ref", type=Path)
    a = ap.parse_args(argv)
    try:
        data = measure(a.worker, threads=a.threads, gpu_layers=a.gpu_layers, n_ctx=a.n_ctx, reps=a.reps,
                       ref_logprobs=a.ref, write_ref=a.write_ref)
    except CoachError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("error: out of memory measuring this file; it does not fit next to what else is running",
              file=sys.stderr)
        return 1
    except Exception as exc:  # the worker's boundary: one line for the row, the trace in the log
        from coach.crash import log_crash

        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:200]} (trace in {log_crash(exc)})",
              file=sys.stderr)
        return 1
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
