"""`coach doctor`: what this machine has and what it can run, on one screen.

llama.cpp's build (GPU offload or not), each NVIDIA GPU with its free VRAM, RAM, disk in COACH_HOME,
the measured memory bandwidth, and for every catalog model and quant where it would run (GPU, split,
CPU, or not at all) with an estimated generation speed. A wrong build (an NVIDIA GPU and a CPU-only
llama.cpp) gets the one-line fix.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from coach.config import Settings
from coach.models.catalog import entry_footprint, load_catalog, recommend
from coach.models.fit import BUFFERS, ROOM, SESSION_CELLS, SLOTS, SPEED_FLOOR, SPEED_SHARE, cpu_tokens_per_s, fit


@dataclass(frozen=True)
class Gpu:
    name: str
    total: int  # bytes
    free: int


def nvidia_gpus(run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run) -> list[Gpu]:
    """NVIDIA GPUs as nvidia-smi reports them (none when it is missing or fails)."""
    if run is subprocess.run and not shutil.which("nvidia-smi"):
        return []
    try:
        out = run(["nvidia-smi", "--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"],
                  capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            gpus.append(Gpu(parts[0], int(parts[1]) * 2**20, int(parts[2]) * 2**20))
        except (IndexError, ValueError):
            continue
    return gpus


def report(settings: Settings, *, gpus: list[Gpu] | None = None, offload: bool | None = None,
           bandwidth: float | None = None) -> str:
    import llama_cpp

    from coach.models.machine import memory_bandwidth

    gpus = nvidia_gpus() if gpus is None else gpus
    offload = bool(llama_cpp.llama_supports_gpu_offload()) if offload is None else offload
    bw = memory_bandwidth(size_mb=256, reps=3) if bandwidth is None else bandwidth
    vm = psutil.virtual_memory()
    home = settings.home
    probe = next((p for p in (home, *home.parents) if p.exists()), Path("/"))
    disk = shutil.disk_usage(probe).free
    lines = ["llama.cpp: " + ("GPU offload supported" if offload else "CPU only (this build cannot offload)")]
    if gpus and not offload:
        lines.append("  fix: an NVIDIA GPU is here but llama.cpp was built for the CPU; install the CUDA toolkit, "
                     "then: rm .venv/.coach-bootstrap && ./scripts/bootstrap.sh")
    lines += [f"GPU {i}: {g.name}, {g.free / 2**30:.1f} GiB free of {g.total / 2**30:.1f}" for i, g in enumerate(gpus)]
    if not gpus:
        lines.append("GPU: none found (nvidia-smi)")
    lines += [f"RAM: {vm.available / 2**30:.1f} GiB free of {vm.total / 2**30:.1f}",
              f"disk: {disk / 2**30:.1f} GiB free in {home}",
              f"memory bandwidth: {bw:.1f} GB/s (copy, every core)", "",
              f"{'MODEL:QUANT':40} {'SIZE':>8} {'RUNS ON':>14} {'EST. TOK/S':>10}  LICENCE"]
    free_vram = max((g.free for g in gpus), default=0)
    catalog = load_catalog()
    for e in catalog.models:
        for q in e.files:
            size = e.size(q)
            spot = fit(entry_footprint(e, q, settings.n_ctx), vm.available, free_vram, offload)
            where, share = spot.where, spot.share
            if where == "split":
                where = f"split {spot.gpu_layers} layers GPU"
            # decoding reads every weight once a token; CPU speed is bandwidth-bound (GPU layers: faster)
            est = "-" if where == "does not fit" else f"{cpu_tokens_per_s(size * (1 - share) or size, bw):.1f}"
            if where == "GPU":
                est = "GPU-bound"
            older = " (older)" if e.older else ""
            lines.append(f"{e.name + ':' + q:40} {size / 1e9:7.2f}G {where:>14} {est:>10}  {e.licence}{older}")
    # speed counts where the model runs on the CPU: a machine that offloads to a GPU gets the largest that fits
    rec = recommend(vm.total, vm.available, settings.n_ctx, catalog, None if gpus and offload else bw)
    lines += ["", (f"Recommended here: {rec[0].name}:{rec[1]} ({rec[0].title}, {rec[0].licence}), about "
                   f"{rec[2] / 1e9:.1f} GB for a session of {vm.total / 1e9:.0f} GB RAM: "
                   f"`coach models pull {rec[0].name}:{rec[1]}`") if rec else
              "Recommended here: no current Mistral fits with room to spare; the embedded demo model runs"]
    lines += ["", f"RUNS ON counts the weights, {SLOTS} speakers' KV caches of {SESSION_CELLS} cells each (what a "
              f"full-length session needs; grown when a thread needs more, up to --ctx {settings.n_ctx}) and "
              f"{BUFFERS // 2**20} MiB of buffers on each side: one rule (coach/models/fit.py) shared with the engine's "
              "own check and the Models table. The recommendation is the largest current Mistral whose session "
              f"fits in free RAM, takes at most {ROOM:.0%} of the machine's RAM and, on the CPU, is estimated at "
              f"{SPEED_FLOOR:.0f} tokens/s or more (else the fastest that fits: on a slow CPU a smaller model "
              f"answers sooner). EST. TOK/S is an estimate ({SPEED_SHARE:.1f} x the copy bandwidth over the "
              "bytes of weights read per token on the CPU), not a measurement: `coach bench` measures. No GPU was "
              "used to write or test any of this."]
    return "\n".join(lines)
