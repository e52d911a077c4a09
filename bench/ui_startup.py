"""Time from the run command to a usable page: `coach ui` until the page and its app config answer.

    .venv/bin/python bench/ui_startup.py [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

COACH = str(Path(sys.executable).with_name("coach"))


def once() -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "COACH_HOME": tempfile.mkdtemp()}
    t0 = time.perf_counter()
    proc = subprocess.Popen([COACH, "ui", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=1).read()
                return time.perf_counter() - t0
            except OSError:
                if proc.poll() is not None or time.perf_counter() - t0 > 120:
                    raise SystemExit("coach ui did not come up") from None
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    times = [once() for _ in range(args.reps)]
    print(f"run command -> usable page: median {statistics.median(times):.1f} s "
          f"(min {min(times):.1f}, max {max(times):.1f}, {args.reps} runs, embedded model, installed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
