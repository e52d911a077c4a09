"""The store through real processes: a kill -9 loses at most the turn in flight, Ctrl-C saves, and the
session resumes and exports."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.conftest import COACH, sigint_default, tiny_env

STRONG = ("I would not lead with the headline number. I'd reproduce what the customer measured, separate time to first "
          "token from throughput, fix any overclaim this week and give sales a cost-adjusted comparison on their workload.")
WEAK = "We need better messaging."


def _answered(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as c:
        try:
            return int(c.execute("SELECT COUNT(*) FROM turns WHERE answer IS NOT NULL").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_kill_dash_nine_loses_at_most_the_turn_in_flight_and_resume_finishes(tmp_path: Path, tiny_mistral: Path):
    home = tmp_path / "home"
    env = {**os.environ, "COACH_HOME": str(home), **tiny_env(tiny_mistral)}  # the flow, not the words
    db = home / "coach.db"
    proc = subprocess.Popen([COACH, "--seed", "4", "rehearse"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    proc.stdin.write(f"{STRONG}\n\n{WEAK}\n\n")
    proc.stdin.flush()
    deadline = time.time() + 180
    while _answered(db) < 2 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # no chance to clean up
    proc.wait(timeout=30)
    assert _answered(db) == 2
    listed = subprocess.run([COACH, "sessions", "list"], env=env, capture_output=True, text=True, timeout=60)
    sid = listed.stdout.splitlines()[1].split()[0]
    assert " active " in listed.stdout
    answers = "".join(f"{STRONG}\n\n" for _ in range(30))
    r = subprocess.run([COACH, "sessions", "resume", sid], env=env, input=answers, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "== Debrief:" in r.stdout
    assert " finished " in subprocess.run([COACH, "sessions", "list"], env=env, capture_output=True, text=True,
                                          timeout=60).stdout
    out = tmp_path / "report.html"
    e = subprocess.run([COACH, "sessions", "export", sid, "--out", str(out)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert e.returncode == 0 and out.read_text().startswith("<!doctype html>")


def test_ctrl_c_saves_and_exits_cleanly(tmp_path: Path, tiny_mistral: Path):
    env = {**os.environ, "COACH_HOME": str(tmp_path / "home"), **tiny_env(tiny_mistral)}
    proc = subprocess.Popen([COACH, "rehearse", "--scenario", "pm_loop"], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.time() + 120
    db = tmp_path / "home" / "coach.db"
    while time.time() < deadline:  # wait for the first question to be stored
        if db.exists():
            with sqlite3.connect(db) as c:
                try:
                    if c.execute("SELECT COUNT(*) FROM turns").fetchone()[0]:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)  # stdin still open: only the signal can end it (communicate() would send EOF)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and "saved. Resume with: coach sessions resume" in err
