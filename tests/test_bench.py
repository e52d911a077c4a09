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

from coach.bench.run import BenchRow, Options, recommend, run
from coach.models.machine import parse_vram, vram_of
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
    monkeypatch.setattr("coach.bench.run.available_ram", lambda: 10 * 2**20)
    rows, out = run([embedded], settings, Options(reps=1, out_dir=tmp_path / "o"), progress=False)
    assert rows[0].status == "skipped" and "GiB free" in rows[0].error
    assert recommend(rows) == "No file could be measured on this machine."


def test_recommendation_picks_the_fastest_file_that_meets_the_quality_bar():
    def row(q: str, tps: float, top1: float) -> BenchRow:
        return BenchRow(q, q, q, "ok", size_mb=1000, gen_tps=tps, top1=top1)

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


def test_bench_shape_measures_speed_only_and_reuses_the_file(tmp_path: Path):
    """`coach bench --shape` on a small catalog entry: a random-weight file of exactly its shape with the
    real tokenizer, speed and memory columns only, and a second run that reuses the cached file."""
    import yaml

    from coach.config import catalog_path

    cat = yaml.safe_load(catalog_path().read_text())
    small = {"name": "tiny-mistral", "title": "Tiny Mistral-format model", "repo": "example/tiny", "revision": "main",
             "licence": "Apache-2.0", "context_length": 4096, "params_b": 0.02, "recommended": "Q8_0",
             "files": {"Q8_0": {"filename": "tiny.Q8_0.gguf", "size": 10_000_000}},
             "shape": {"n_layer": 2, "n_embd": 256, "n_head": 4, "n_head_kv": 2, "n_ff": 512, "n_vocab": 32768,
                       "tokenizer": "v3", "chat_format": "mistral-v3"}}
    cat["models"].append(small)
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(cat))
    env = {**os.environ, "COACH_HOME": str(tmp_path / "home"), "COACH_CATALOG": str(tmp_path / "catalog.yaml"),
           "COACH_N_CTX": "1024"}
    runs = []
    for i in range(2):
        r = subprocess.run([COACH, "bench", "--shape", "tiny-mistral:Q8_0,Q4_K_M", "--reps", "1", "--quiet",
                            "--out", str(tmp_path / f"out{i}")], env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-2000:]
        runs.append(r)
    assert "writing tiny-mistral.Q8_0.shape.gguf" in runs[0].stderr
    assert "writing" not in runs[1].stderr  # cached under COACH_HOME/shapes
    assert "Speed and memory only" in runs[1].stdout
    rows = json.loads((tmp_path / "out1" / "rows.json").read_text())["rows"]
    assert {r["quant"] for r in rows} == {"Q8_0", "Q4_K_M"}
    for row in rows:
        assert row["status"] == "ok" and row["kl"] is None and row["top1"] is None
        assert row["gen_tps"] > 0 and row["ttft_follow_ms"] > 0 and row["peak_rss_mb"] > 0
    missing = subprocess.run([COACH, "bench", "--shape", "smollm2-135m-instruct"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode != 0 and "models with a shape: ministral-3-3b-instruct-2512, " in missing.stderr
    assert "ministral-3-8b-instruct-2512" in missing.stderr and ", tiny-mistral" in missing.stderr
