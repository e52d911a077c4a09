"""Peak memory of a loaded model with `use_mmap` on and off (llama.cpp repacks CPU weights either way).

Each setting runs in its own process: load, evaluate a 64-token prompt, generate 8 tokens, then read
the kernel's peak resident set (VmHWM).

    .venv/bin/python bench/memory_bench.py [--model NAME_OR_PATH | --shape NAME:QUANT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def child(path: str, mmap: bool) -> None:
    import time

    from coach.engine import LlamaBackend

    t0 = time.perf_counter()
    be = LlamaBackend(path, use_mmap=mmap, check_memory=False)
    load = time.perf_counter() - t0
    be.complete("x", [{"role": "user", "content": "word " * 60}], max_tokens=8, temperature=0)
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kv = be.info.kv_bytes_per_token() * be.cells * be.n_slots
    print(json.dumps({"use_mmap": mmap, "load_s": round(load, 1),
                      "peak_rss_gb": int(status["VmHWM"].split()[0]) * 1024 / 1e9,
                      "rss_gb": int(status["VmRSS"].split()[0]) * 1024 / 1e9, "kv_gb": kv / 1e9,
                      "file_gb": be.info.size_bytes / 1e9}))
    be.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model")
    ap.add_argument("--shape")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], a.child[1] == "1")
        return 0
    from coach.bench.ladder import bench_file
    from coach.config import Settings

    path = bench_file(Settings.from_env(model=a.model), a.shape).path
    print(f"{'use_mmap':8} {'load s':>6} {'peak RSS GB':>11} {'RSS after GB':>12} {'file GB':>7} {'KV GB':>6} "
          f"{'peak - file - KV':>16}")
    for mmap in (True, False):
        out = subprocess.run([sys.executable, __file__, "--child", str(path), "1" if mmap else "0"],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        print(f"{str(mmap):8} {r['load_s']:6.1f} {r['peak_rss_gb']:11.2f} {r['rss_gb']:12.2f} {r['file_gb']:7.2f} "
              f"{r['kv_gb']:6.2f} {r['peak_rss_gb'] - r['file_gb'] - r['kv_gb']:16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
