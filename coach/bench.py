"""The benchmark: speed, memory and quality per quantization level, and a recommendation for this machine.

Each file is measured in its own worker process (`python -m coach.bench --worker`): its peak RSS is its
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
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from coach.config import DATA_DIR, Settings
from coach.download import _sha256
from coach.errors import CoachError, ConfigError
from coach.gguf import read_header
from coach.models import ModelRef, available_ram, check_disk, quantize, resolve

LADDER = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
# Approximate bits per weight, to order files by precision (the highest is the quality reference).
BITS = {"F32": 32, "F16": 16, "BF16": 16, "Q8_0": 8.5, "Q6_K": 6.6, "Q5_K_M": 5.7, "Q5_K_S": 5.5, "Q5_1": 6,
        "Q5_0": 5.5, "Q4_K_M": 4.8, "Q4_K_S": 4.6, "Q4_1": 5.0, "Q4_0": 4.5, "IQ4_XS": 4.3, "Q3_K_L": 4.3,
        "Q3_K_M": 3.9, "Q3_K_S": 3.5, "Q2_K": 3.4}
QUALITY_TEXT = DATA_DIR / "quality_text.txt"
log = logging.getLogger(__name__)

MIN_TOP1 = 0.90  # the recommendation's quality bar: agreement with the reference on the next token
TIE = 0.03  # generation speeds this close are a tie (the spread between repetitions reaches ~3% here)


@dataclass
class Row:
    name: str
    quant: str
    path: str
    status: str  # ok | failed | skipped
    error: str = ""
    size_mb: float = 0.0
    load_s: float = 0.0
    pp_tps: float = 0.0
    pp_spread: float = 0.0
    gen_tps: float = 0.0
    gen_spread: float = 0.0
    ttft_open_ms: float = 0.0
    ttft_follow_ms: float = 0.0
    ttft_debrief_ms: float = 0.0
    peak_rss_mb: float = 0.0
    kv_mb: float = 0.0
    gpu_layers: int = 0
    vram_mb: float = 0.0
    kl: float | None = None
    top1: float | None = None
    achieved_gbps: float = 0.0
    bandwidth_share: float = 0.0
    threads: int = 0
    sha256: str = ""


# ------------------------------------------------------------------ files

def build_ladder(src: str, settings: Settings, rungs: tuple[str, ...] = LADDER) -> list[ModelRef]:
    """Quantize `src` into each rung, cached by the source file's hash (a rebuilt rung is reused)."""
    ref = resolve(src, settings)
    digest = _sha256(ref.path)[:16]
    out_dir = settings.home / "ladder" / digest
    out_dir.mkdir(parents=True, exist_ok=True)
    refs = []
    for q in rungs:
        dest = out_dir / f"{ref.path.stem.split('.')[0]}.{q}.gguf"
        if not dest.exists():
            quantize(str(ref.path), q, settings, out=dest, register=False)
        refs.append(ModelRef(dest.stem, dest, "local", q, f"{ref.title} {q}"))
    return refs


def build_shapes(spec: str, settings: Settings, *, progress: bool = True) -> list[ModelRef]:
    """`NAME[:QUANT,QUANT]`: random-weight files with the catalog model's exact shape and real tokenizer,
    one per rung, cached under $COACH_HOME/shapes (a second run reuses them). Speed and memory only."""
    from coach.models import load_catalog
    from coach.shapes import DIRECT, Shape, shape_bytes, write_shape

    name, _, rungs_s = spec.partition(":")
    catalog = load_catalog()
    entry = catalog.get(name)
    if entry is None or entry.shape is None:
        shaped = [m.name for m in catalog.models if m.shape is not None]
        raise ConfigError(f"no shape for {name!r} in the catalog; models with a shape: {', '.join(shaped)}")
    rungs = [r.strip().upper() for r in rungs_s.split(",") if r.strip()] or [entry.recommended]
    shape = Shape(**entry.shape.model_dump(), context_length=entry.context_length)
    out_dir = settings.home / "shapes"
    refs = []
    for q in rungs:
        dest = out_dir / f"{name}.{q}.shape.gguf"
        if not dest.exists():
            check_disk(out_dir, shape_bytes(shape, q if q in DIRECT else "Q8_0") * (1 if q in DIRECT else 2))
            if q in DIRECT:
                print(f"writing {dest.name} (random weights, {entry.title}'s shape)…", file=sys.stderr)
                write_shape(dest, shape, q, name=entry.title, progress=progress)
            else:  # llama.cpp's own quantizer from the Q8_0 shape file: slower, but any type it knows
                base = out_dir / f"{name}.Q8_0.shape.gguf"
                if not base.exists():
                    write_shape(base, shape, "Q8_0", name=entry.title, progress=progress)
                print(f"quantizing {base.name} to {q}…", file=sys.stderr)
                quantize(str(base), q, settings, out=dest, register=False)
        refs.append(ModelRef(dest.name.removesuffix(".gguf"), dest, "local", q, f"{entry.title} {q} (shape)"))
    return refs


def bench_file(settings: Settings, shape: str | None) -> ModelRef:
    """The file a benchmark script measures: a catalog model's shape (`NAME:QUANT`, written once and cached)
    or, without one, the model the settings name (the best installed by default)."""
    return build_shapes(shape, settings, progress=False)[0] if shape else resolve(settings.model, settings)


def memory_bandwidth(size_mb: int = 512, reps: int = 5, threads: int | None = None) -> float:
    """This machine's copy bandwidth in GB/s (bytes read plus written), best of `reps`, with one copying
    thread per physical core: one thread alone reaches about half of it here (23.6 vs 44.1 GB/s, 2 cores),
    and llama.cpp decodes with every core, so a one-thread figure would overstate each file's share."""
    from concurrent.futures import ThreadPoolExecutor

    threads = threads or psutil.cpu_count(logical=False) or 1
    a = np.ones(size_mb * 2**20 // 8)
    b = np.empty_like(a)
    bounds = np.linspace(0, len(a), threads + 1, dtype=np.int64)
    parts = list(zip(bounds[:-1], bounds[1:], strict=True))
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:  # numpy releases the GIL while it copies
        for _ in range(reps):
            t = time.perf_counter()
            list(pool.map(lambda p: np.copyto(b[p[0]:p[1]], a[p[0]:p[1]]), parts))
            best = max(best, 2 * a.nbytes / (time.perf_counter() - t) / 1e9)
    return best


def manifest(settings: Settings, threads: int) -> dict[str, Any]:
    import llama_cpp

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores_physical": psutil.cpu_count(logical=False), "cores_logical": psutil.cpu_count(),
            "ram_gb": round(psutil.virtual_memory().total / 1e9, 1), "os": platform.platform(),
            "llama_cpp_python": llama_cpp.__version__,
            "llama_cpp_system": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()), "threads": threads,
            "n_ctx": settings.n_ctx, "when": time.strftime("%Y-%m-%d %H:%M:%S")}


# ------------------------------------------------------------------ the worker (one process per file)

def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's getrusage keeps the parent's peak across fork+exec
    (the worker would report the bench process's size), so read VmHWM, which belongs to this image."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def vram_of(pid: int) -> float:
    """MiB of GPU memory `pid` holds, from nvidia-smi; 0.0 without an NVIDIA GPU or the tool."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0.0
    return parse_vram(out, pid)


def parse_vram(out: str, pid: int) -> float:
    total = 0.0
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0] == str(pid):
            try:
                total += float(parts[1])
            except ValueError:  # "[N/A]" where the driver does not report per-process memory
                pass
    return total


def _median_spread(xs: list[float]) -> tuple[float, float]:
    return float(statistics.median(xs)), float(max(xs) - min(xs)) if len(xs) > 1 else 0.0


def measure(path: Path, *, threads: int, gpu_layers: int | None, n_ctx: int, reps: int, ref_logprobs: Path | None,
            write_ref: Path | None) -> dict[str, Any]:
    from coach.engine import LlamaBackend

    info = read_header(path)
    t0 = time.perf_counter()
    be = LlamaBackend(path, n_ctx=n_ctx, n_threads=threads, n_gpu_layers=gpu_layers, check_memory=False)
    load_s = time.perf_counter() - t0
    words = QUALITY_TEXT.read_text().split()
    text_tokens = be.tokenize_text(" ".join(words * 4))
    pp_tokens = text_tokens[:512]
    be.time_prompt(pp_tokens[:32])  # warm-up: fault the weights in
    pp, gen = [], []
    for _ in range(reps):
        pp.append(len(pp_tokens) / be.time_prompt(pp_tokens))
        gen.append(be.decode_rate(pp_tokens[:16], 127))
    ttft_open, ttft_follow, ttft_debrief = turn_shapes(be, words)
    vram_mb = vram_of(os.getpid()) if be.n_gpu_layers else 0.0  # while the model and its KV cache are loaded
    be.close()

    # Peak memory of the app's shapes, taken before the quality pass (its logits buffer is a measuring cost).
    peak_rss_mb = _peak_rss_mb()

    kl = top1 = None
    if ref_logprobs is not None or write_ref is not None:  # not for shape files: their text is noise
        kl, top1 = _quality(path, text_tokens, threads, be.n_gpu_layers, ref_logprobs, write_ref)
    pp_m, pp_s = _median_spread(pp)
    gen_m, gen_s = _median_spread(gen)
    return {"load_s": load_s, "pp_tps": pp_m, "pp_spread": pp_s, "gen_tps": gen_m, "gen_spread": gen_s,
            "ttft_open_ms": ttft_open * 1000, "ttft_follow_ms": ttft_follow * 1000, "ttft_debrief_ms": ttft_debrief * 1000,
            "peak_rss_mb": peak_rss_mb,
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
    (`coach.session`): the opening question with the persona card already evaluated at session start
    (or loaded from the on-disk prefix cache); a follow-up after type-ahead has read the answer while
    it was typed, so only the end of the answer and the instruction are left; the committee's summary
    after the record was read turn by turn, so only its last instruction is left."""
    from coach.session import ANSWERED, AS_PLANNED, PLAN, SUMMARY_REQUEST, WALKED_IN, YOUR_TURN

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


def run(files: list[ModelRef], settings: Settings, opts: Options, *, progress: bool = True) -> tuple[list[Row], Path]:
    import matplotlib.figure  # noqa: F401 - imported up front: a Ctrl-C during this import would leave it half-loaded
    from tqdm import tqdm

    threads = opts.threads or settings.n_threads
    out = opts.out_dir or settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    man = manifest(settings, threads)
    man["bandwidth_gbps"] = round(memory_bandwidth(), 2)
    ordered = sorted(files, key=lambda r: -BITS.get(r.quant, 0))
    ref_path = out / "reference_logprobs.npy"
    rows: list[Row] = []
    have_ref = False
    bar = tqdm(ordered, desc="bench", unit="file", disable=not progress)
    try:
        for ref in bar:
            bar.set_postfix_str(ref.name)
            row = Row(ref.name, ref.quant, str(ref.path), "ok", threads=threads)
            try:
                info = read_header(ref.path)
                row.size_mb = info.size_bytes / 2**20
                need = info.estimate_ram(settings.n_ctx)
                if need > available_ram():
                    row.status = "skipped"
                    row.error = f"needs about {need / 2**30:.1f} GiB, {available_ram() / 2**30:.1f} GiB free"
                else:
                    row.sha256 = _sha256(ref.path)
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
    args = [sys.executable, "-m", "coach.bench", "--worker", str(path), "--threads", str(threads), "--reps",
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


def recommend(rows: list[Row]) -> str:
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


def write_outputs(rows: list[Row], man: dict[str, Any], out: Path, settings: Settings) -> None:
    names = [f.name for f in fields(Row)]
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
        plot(rows, out)


def _store_rows(rows: list[Row], man: dict[str, Any], out: Path, settings: Settings) -> None:
    from coach.store import Store

    store = Store.open_default(settings.home)
    try:
        store.save_bench(out.name, man, [asdict(r) for r in rows])
    finally:
        store.close()


def _label_offsets(ok: list[Row], gb: list[float], width: float = 400, height: float = 245) -> list[tuple[int, int]]:
    """Where each point's label goes (offset in points): right-above, right-below, left-above or
    left-below, whichever first clears the labels already placed and the other points."""
    def span(vs: list[float]) -> tuple[float, float]:
        return min(vs), (max(vs) - min(vs)) or 1.0

    (x0, dx), (y0, dy) = span(gb), span([r.gen_tps for r in ok])
    pts = [((x - x0) / dx * width, (r.gen_tps - y0) / dy * height) for r, x in zip(ok, gb, strict=True)]
    boxes: list[tuple[float, float, float, float]] = []
    offsets = []
    for i, (r, (px, py)) in enumerate(zip(ok, pts, strict=True)):
        w = 5.2 * len(r.quant)
        choice = (7, 5)
        for ox, oy in ((7, 5), (7, -13), (-7 - w, 5), (-7 - w, -13)):
            box = (px + ox, py + oy, px + ox + w, py + oy + 9)
            clear = all(box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in boxes)
            clear = clear and all(not (box[0] - 5 < qx < box[2] + 5 and box[1] - 5 < qy < box[3] + 5)
                                  for j, (qx, qy) in enumerate(pts) if j != i)
            if clear:
                choice = (round(ox), oy)
                break
        boxes.append((px + choice[0], py + choice[1], px + choice[0] + w, py + choice[1] + 9))
        offsets.append(choice)
    return offsets


def plot(rows: list[Row], out: Path) -> None:
    """Speed against size, coloured by quality: a PNG and a self-contained interactive HTML page."""
    import html

    from matplotlib.figure import Figure  # no pyplot: its global state is not safe across UI worker threads

    ok = [r for r in rows if r.status == "ok"]
    fig = Figure(figsize=(7, 4.2), dpi=120)
    ax = fig.subplots()
    gb = [r.size_mb * 2**20 / 1e9 for r in ok]
    sc = ax.scatter(gb, [r.gen_tps for r in ok], c=[(r.top1 or 0) * 100 for r in ok],
                    cmap="viridis", vmin=min(80.0, min((r.top1 or 0) * 100 for r in ok)), vmax=100, s=70)
    for r, x, off in zip(ok, gb, _label_offsets(ok, gb), strict=True):
        ax.annotate(r.quant, (x, r.gen_tps), textcoords="offset points", xytext=off, fontsize=8)
    ax.set_xlabel("file size (GB)")
    ax.set_ylabel("generation (tokens/s)")
    ax.set_title("Speed against size; colour = top-1 agreement with the reference (%)")
    fig.colorbar(sc, ax=ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "plot.png")
    # Interactive HTML: inline SVG, hover titles, no scripts or fonts from anywhere else.
    w, h, pad = 640, 360, 50
    xs, ys = gb, [r.gen_tps for r in ok]
    x0, x1 = 0.0, max(xs) * 1.1 or 1
    y0, y1 = 0.0, max(ys) * 1.15 or 1
    dots = []
    for r, x, y in zip(ok, xs, ys, strict=True):
        cx = pad + (x - x0) / (x1 - x0) * (w - 2 * pad)
        cy = h - pad - (y - y0) / (y1 - y0) * (h - 2 * pad)
        g = int(80 + 175 * (r.top1 or 0))
        tip = (f"{r.quant}: {r.gen_tps:.1f} tok/s, prompt {r.pp_tps:.0f} tok/s, {x:.2f} GB, top-1 "
               f"{(r.top1 or 0):.1%}, KL {(r.kl or 0):.4f}, TTFT {r.ttft_open_ms:.0f} ms, RSS {r.peak_rss_mb:.0f} MB")
        dots.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='7' fill='rgb(40,{g},120)'><title>{html.escape(tip)}"
                    f"</title></circle><text x='{cx + 9:.1f}' y='{cy - 6:.1f}' font-size='11'>{html.escape(r.quant)}</text>")
    page = (f"<!doctype html><meta charset='utf-8'><title>coach bench</title><body style='font-family:system-ui'>"
            f"<h2>Speed against size</h2><p>{html.escape(recommend(rows))}</p>"
            f"<svg width='{w}' height='{h}' style='border:1px solid #ddd'>"
            f"<line x1='{pad}' y1='{h - pad}' x2='{w - pad}' y2='{h - pad}' stroke='#333'/>"
            f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{h - pad}' stroke='#333'/>"
            f"<text x='{w / 2}' y='{h - 12}' font-size='12'>file size (GB), 0 to {x1:.2f}</text>"
            f"<text x='8' y='{pad - 12}' font-size='12'>tokens/s, 0 to {y1:.1f}</text>{''.join(dots)}</svg>"
            f"<p>Hover a point for its numbers.</p></body>")
    (out / "plot.html").write_text(page)


def table(rows: list[Row]) -> str:
    gpu = any(r.gpu_layers for r in rows)  # GPU columns only where something was offloaded
    head = (f"{'file':30} {'quant':7} {'size MB':>8} {'load s':>6} {'pp t/s':>8} {'gen t/s':>12} "
            f"{'TTFT open/follow/debrief ms':>28} {'RSS MB':>7} {'KV MB':>6} {'KL':>7} {'top-1':>6} {'BW %':>5}"
            + (f" {'GPU L':>5} {'VRAM MB':>7}" if gpu else "") + "  status")
    lines = [head]
    for r in rows:
        if r.status != "ok":
            lines.append(f"{r.name[:30]:30} {r.quant:7} {r.size_mb:8.0f} {'':>6} {'':>8} {'':>12} {'':>28} {'':>7} "
                         f"{'':>6} {'':>7} {'':>6} {'':>5}" + (f" {'':>5} {'':>7}" if gpu else "")
                         + f"  {r.status}: {r.error}")
            continue
        ttft = f"{r.ttft_open_ms:.0f}/{r.ttft_follow_ms:.0f}/{r.ttft_debrief_ms:.0f}"
        lines.append(f"{r.name[:30]:30} {r.quant:7} {r.size_mb:8.0f} {r.load_s:6.2f} {r.pp_tps:8.0f} "
                     f"{r.gen_tps:6.1f}±{r.gen_spread:<5.1f} {ttft:>28} {r.peak_rss_mb:7.0f} {r.kv_mb:6.0f} "
                     + (f"{r.kl:7.4f} {r.top1:6.1%}" if r.kl is not None and r.top1 is not None else f"{'—':>7} {'—':>6}")
                     + f" {r.bandwidth_share:5.0%}"
                     + (f" {r.gpu_layers:5d} {r.vram_mb:7.0f}" if gpu else "") + "  ok")
    return "\n".join(lines)


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
        from coach.errors import log_crash

        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:200]} (trace in {log_crash(exc)})",
              file=sys.stderr)
        return 1
    print(json.dumps(data))
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
