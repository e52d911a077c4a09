"""Every benchmark script runs once, as a user would run it, on the embedded model with the smallest settings
that still go through its whole path: the scripts behind the README's numbers must not rot. (Their numbers
here mean nothing: the 135M stand-in, a busy CI machine; the docs quote runs on real shapes.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

MODEL = "smollm2-135m-instruct"
SCRIPTS = {  # script: (arguments, what its output must contain)
    "engine_bench.py": (["--model", MODEL, "--turns", "3", "--reps", "1", "--gen-tokens", "8", "--max-tokens", "8"],
                        "time to first token across a three-speaker panel"),
    "grader_bench.py": (["--reps", "2", "--threads", "1"], "warm grade median"),
    "memory_bench.py": (["--model", MODEL], "peak RSS GB"),
    "panel_bench.py": (["--model", MODEL, "--turns", "3", "--typing-s", "2", "--real-time", "2"],
                       "Send -> first word: median"),
    "prefill_batch_bench.py": (["--model", MODEL, "--batches", "4,64", "--context", "64", "--seconds", "0.3"],
                               "a turn's wait for the model while a 64-token batch runs"),
    "ui_startup.py": (["--reps", "1"], "run command -> usable page: median"),
    "voice_bench.py": (["--recognizers", "pocketsphinx", "--parts", "a", "--shape", ""], "PocketSphinx"),
    "wording_bench.py": (["--corpus", "--set", "aside", "--limit", "12"], "streamed through Interview.ask"),
    "wording_train.py": (["--sets", "fresh", "--out", "slips.npz"], "cross-validated AUC"),  # cwd: a scratch folder
    "cohort_bench.py": (["--model", MODEL, "--n", "1", "--turns", "1", "--kind", "llama-cpp-python", "--warm-s", "5",
                         "--slots", "4", "--wpm", "3000"], "| candidates |"),
}


def test_every_script_is_smoked():
    assert set(SCRIPTS) | {"wording_corpus.py"} == {p.name for p in (REPO / "bench").glob("*.py")}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_the_script_runs_once(script: str, tmp_path):
    if script == "voice_bench.py" and not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng speaks the benchmark's answers (apt install espeak-ng)")
    args, marker = SCRIPTS[script]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-3000:])
    assert marker in r.stdout, r.stdout[-3000:]
