"""This machine, measured: memory bandwidth, the manifest a benchmark run records, peak RSS and VRAM of a
process. Used by the benchmark and by `coach doctor`."""

from __future__ import annotations

import functools
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from coach.config import Settings


@functools.lru_cache(maxsize=1)
def bandwidth_once() -> float:
    """This machine's copy bandwidth (GB/s), measured once a process (a short 128 MB copy): what the Models
    table's "feels like" column and the recommendation's speed estimate both read."""
    return memory_bandwidth(size_mb=128, reps=3)


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


def peak_rss_mb() -> float:
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


def vram_of(pid: int, baseline_mb: float | None = None) -> float:
    """MiB of GPU memory `pid` holds, from nvidia-smi; 0.0 without an NVIDIA GPU or the tool. In a container
    or VM nvidia-smi may list no process at all (it sees the host's process ids): then, given
    `baseline_mb` (`gpu_used_mb()` before the model loaded), the GPU's growth in use since then."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0.0
    held = parse_vram(out, pid)
    if held == 0.0 and baseline_mb is not None:
        used = gpu_used_mb()
        return max(0.0, used - baseline_mb) if used is not None else 0.0
    return held


def gpu_used_mb() -> float | None:
    """MiB in use on the busiest NVIDIA GPU, from nvidia-smi; None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return max(float(x) for x in out.split())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


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
