"""The `coach` command at a real terminal: one-line errors, non-zero exits, nothing half-written."""

import subprocess
from pathlib import Path

from tests.conftest import COACH


def run(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COACH, *args], capture_output=True, text=True, timeout=timeout)


def test_models_list_shows_catalog_ram_and_default():
    r = run("models", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:4] == ["NAME", "INSTALLED", "SIZE", "RAM"]
    q4 = next(line for line in lines if line.startswith("mistral-7b-instruct-v0.3:Q4_K_M"))
    assert " no " in q4 and "recommended" in q4
    emb = next(line for line in lines if line.startswith("smollm2-135m-instruct:Q4_1"))
    assert "yes" in emb and "default" in emb


def test_chat_runs_the_engine_and_names_the_model():
    r = run("chat", "--prompt", "Say hello in three words.", "--max-tokens", "12")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()
    assert "model: SmolLM2 135M" in r.stderr and ("coach models pull ministral-3-" in r.stderr  # what fits here
                                                  or "no current Mistral fits" in r.stderr)
    assert "tok/s" in r.stderr


def test_unknown_model_is_one_line_with_the_valid_names():
    r = run("--model", "gpt-5", "chat", "--prompt", "hi")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "valid names:" in r.stderr and "mistral-7b-instruct-v0.3:Q4_K_M" in r.stderr


def test_add_rejects_a_truncated_gguf_and_writes_nothing(tmp_path: Path, embedded):
    cut = tmp_path / "half.gguf"
    cut.write_bytes(embedded.path.read_bytes()[:4_000_000])
    r = run("models", "add", str(cut))
    assert r.returncode == 3 and "truncated" in r.stderr and r.stderr.count("\n") == 1


def test_missing_file_is_one_line():
    r = run("--model", "/nope/model.gguf", "chat", "--prompt", "hi")
    assert r.returncode == 2 and "no such file" in r.stderr


def test_quantize_then_list_then_rm(tmp_path: Path):
    r = run("models", "quantize", "smollm2-135m-instruct", "Q8_0", timeout=300)
    assert r.returncode == 0, r.stderr
    name = r.stdout.split()[1].rstrip(":")
    assert name in run("models", "list").stdout
    assert run("models", "rm", name).returncode == 0
    assert name not in run("models", "list").stdout
