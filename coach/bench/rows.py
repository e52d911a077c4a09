"""One benchmark row: what `coach bench` measured for one file (speed, waits, memory, quality)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BenchRow:
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
