"""`coach bench` on a real ladder of the embedded model: every column, the recommendation, a failed file,
a file too large for RAM, and Ctrl-C keeping the finished rows."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from coach.bench import Options, Row, parse_vram, recommend, run, vram_of
from tests.conftest import COACH, sigint_default
from tests.ggufgen import write_gguf


def test_a_two_rung_ladder_plus_a_broken_file(tmp_path: Path):
    home, out = tmp_path / "home", tmp_path / "out"
    bad = write_gguf(tmp_path / "alien.gguf", arch="no-such-architecture")  # a valid header llama.cpp cannot load
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model at all " * 100)  # not even a GGUF
    env = {**os.environ, "COACH_HOME": str(home)}
    r = subprocess.run([COACH, "bench", "--ladder", "smollm2-135m-instruct", "--rungs", "Q8_0,Q4_K_M", str(bad), str(junk),
                        "--reps", "1", "--quiet", "--out", str(out)], env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "On this machine:" in r.stdout
    rows = {row["quant"]: row for row in csv.DictReader((out / "rows.csv").open())}
    assert set(rows) == {"Q8_0", "Q4_K_M", "F32", "?"}
    assert rows["F32"]["status"] == "failed" and "could not load" in rows["F32"]["error"]
    assert rows["?"]["status"] == "failed" and "not a GGUF" in rows["?"]["error"]
    ref, q4 = rows["Q8_0"], rows["Q4_K_M"]
    for row in (ref, q4):
        assert row["status"] == "ok"
        for col in ("load_s", "pp_tps", "gen_tps", "ttft_open_ms", "ttft_follow_ms", "ttft_debrief_ms", "kv_mb",
                    "achieved_gbps"):
            assert float(row[col]) > 0, col
        assert float(row["peak_rss_mb"]) > float(row["size_mb"]) > 50
        assert 0 < float(row["bandwidth_share"]) < 1.5 and len(row["sha256"]) == 64
    assert float(ref["kl"]) == 0 and float(ref["top1"]) == 1
    # memory is the worker's own (not inherited from the bench process) and follows the weights it maps
    assert float(ref["peak_rss_mb"]) - float(q4["peak_rss_mb"]) > 0.5 * (float(ref["size_mb"]) - float(q4["size_mb"]))
    assert float(q4["kl"]) > 0 and 0.3 < float(q4["top1"]) < 1
    doc = json.loads((out / "rows.json").read_text())
    man = doc["manifest"]
    assert man["cores_logical"] >= 1 and man["bandwidth_gbps"] > 0 and man["llama_cpp_python"]
    assert doc["recommendation"].startswith("On this machine:")
    assert (out / "plot.png").stat().st_size > 1000 and "<svg" in (out / "plot.html").read_text()
    with sqlite3.connect(home / "coach.db") as db:
        assert db.execute("SELECT COUNT(*) FROM bench_rows").fetchone()[0] == 4


def test_ctrl_c_keeps_the_finished_rows(tmp_path: Path):
    out = tmp_path / "out"
    env = {**os.environ, "COACH_HOME": str(tmp_path / "home")}
    log = (tmp_path / "stderr.txt").open("w+")  # a file, not a pipe: nothing can block on a full buffer
    proc = subprocess.Popen([COACH, "bench", "--ladder", "smollm2-135m-instruct", "--rungs", "Q8_0,Q4_K_M,Q2_K",
                             "--reps", "1", "--quiet", "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=log, text=True, preexec_fn=sigint_default)
    deadline = time.time() + 400
    while time.time() < deadline and not (out / "rows.csv").exists():
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    log.seek(0)
    err = log.read()
    assert proc.returncode == 130 and "finished rows are saved" in err, err[-3000:]
    rows = list(csv.DictReader((out / "rows.csv").open()))
    assert 1 <= len(rows) < 3 and rows[0]["status"] == "ok"


def test_a_file_too_large_for_free_ram_is_skipped_with_the_reason(tmp_path: Path, embedded, settings, monkeypatch):
    monkeypatch.setattr("coach.bench.available_ram", lambda: 10 * 2**20)
    rows, out = run([embedded], settings, Options(reps=1, out_dir=tmp_path / "o"), progress=False)
    assert rows[0].status == "skipped" and "GiB free" in rows[0].error
    assert recommend(rows) == "No file could be measured on this machine."


def test_recommendation_picks_the_fastest_file_that_meets_the_quality_bar():
    def row(q: str, tps: float, top1: float) -> Row:
        return Row(q, q, q, "ok", size_mb=1000, gen_tps=tps, top1=top1)

    rows = [row("Q8_0", 5.0, 1.0), row("Q4_K_M", 9.1, 0.94), row("Q2_K", 12.0, 0.71)]
    assert recommend(rows).startswith("On this machine: Q4_K_M (Q4_K_M), 9.1 tok/s, 1.05 GB")
    # a speed difference inside the run's noise is a tie, and the more faithful file wins it
    tie = recommend([*rows, row("Q5_K_M", 8.95, 0.97)])
    assert tie.startswith("On this machine: Q5_K_M") and "as fast as Q4_K_M within 3%" in tie
    assert recommend([row("Q3_K_M", 12.0, 0.8)]).endswith("none met the quality bar, so the most faithful one.")


def test_vram_is_this_process_share_of_nvidia_smi():
    out = "4242, 5120\n777, 300\n4242, 12\n9, [N/A]\n"
    assert parse_vram(out, 4242) == 5132 and parse_vram(out, 777) == 300 and parse_vram(out, 9) == 0
    assert parse_vram("", 1) == 0
    if shutil.which("nvidia-smi") is None:
        assert vram_of(os.getpid()) == 0.0  # no GPU here: the column says 0, the run goes on
