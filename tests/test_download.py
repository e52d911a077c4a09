"""`coach models pull` for real, against a local HTTP server that plays the hub (HF_ENDPOINT=127.0.0.1)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import COACH, free_port
from tests.fakehub import FILE, FakeHub, catalog_entry, serve
from tests.ggufgen import write_gguf


@pytest.fixture
def payload(tmp_path: Path) -> bytes:
    # larger than huggingface-hub's 10 MB write chunk, so a drop mid-file leaves bytes to resume from
    return write_gguf(tmp_path / "src.gguf", tensor_bytes=32 * 2**20).read_bytes()


@pytest.fixture
def hub(payload: bytes):
    server = serve(payload, free_port())
    yield server
    server.shutdown()


@pytest.fixture
def env(tmp_path: Path, payload: bytes, hub: FakeHub) -> dict[str, str]:
    catalog = {"models": [catalog_entry(payload)]}
    cat = tmp_path / "catalog.yaml"
    cat.write_text(yaml.safe_dump(catalog))
    return {**os.environ, "COACH_CATALOG": str(cat), "HF_ENDPOINT": f"http://127.0.0.1:{hub.server_port}",
            "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_ETAG_TIMEOUT": "5"}


def pull(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COACH, "models", "pull", "tiny:F32", "--quiet"], env=env, capture_output=True, text=True,
                          timeout=120)


def models_dir(env: dict[str, str]) -> Path:
    return Path(env["COACH_HOME"]) / "models"


def test_normal_pull_verifies_and_installs(env, payload, hub):
    r = pull(env)
    assert r.returncode == 0, r.stderr
    dest = models_dir(env) / FILE
    assert dest.read_bytes() == payload
    assert ("GET", None) in hub.requests
    assert not list(models_dir(env).glob("*.partial"))
    again = pull(env)  # already there: no second download
    assert again.returncode == 0 and sum(1 for m, _ in hub.requests if m == "GET") == 1
    listed = subprocess.run([COACH, "models", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert "tiny:F32" in listed.stdout and " yes " in listed.stdout


def test_a_dropped_connection_resumes_with_a_range_request(env, payload, hub):
    hub.mode = "drop_once"
    r = pull(env)
    assert r.returncode == 0, r.stderr
    assert (models_dir(env) / FILE).read_bytes() == payload
    ranges = [rng for m, rng in hub.requests if m == "GET" and rng]
    assert ranges and ranges[0].startswith("bytes=") and not ranges[0].startswith("bytes=0-")


def test_a_killed_pull_resumes_from_its_partial_file(env, payload, hub):
    staging = Path(env["COACH_HOME"]) / "downloads"
    staging.mkdir(parents=True)
    (staging / f"{FILE}.partial").write_bytes(payload[:1_000_000])  # what a killed process left
    r = pull(env)
    assert r.returncode == 0, r.stderr
    assert (models_dir(env) / FILE).read_bytes() == payload
    assert ("GET", "bytes=1000000-") in hub.requests


def test_a_corrupt_transfer_is_caught_by_the_checksum(env, hub):
    hub.mode = "corrupt"
    r = pull(env)
    assert r.returncode == 6
    assert "checksum mismatch" in r.stderr and "run the same command" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (models_dir(env) / FILE).exists()
    assert not list((Path(env["COACH_HOME"]) / "downloads").glob("*"))


def test_no_network_is_one_clear_line(env):
    env = {**env, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"}  # nobody listens there
    r = pull(env)
    assert r.returncode == 6
    assert r.stderr.startswith("coach: error: cannot reach") and "check the network" in r.stderr
    assert not models_dir(env).exists() or not any(models_dir(env).iterdir())


def test_no_disk_space_refuses_before_downloading(env, hub, monkeypatch):
    import shutil

    from coach.config import Settings
    from coach.errors import InsufficientDisk
    from coach.models.catalog import pull as pull_inproc

    monkeypatch.setenv("HF_ENDPOINT", env["HF_ENDPOINT"])
    monkeypatch.setenv("COACH_CATALOG", env["COACH_CATALOG"])
    monkeypatch.setattr("coach.models.download.shutil.disk_usage", lambda p: shutil._ntuple_diskusage(1, 1, 1000))
    with pytest.raises(InsufficientDisk, match="GB needed"):
        pull_inproc("tiny:F32", Settings.from_env(), progress=False)
    assert not any(p.endswith(FILE) for p in hub.paths), hub.paths


def test_unknown_name_exits_nonzero_with_the_list(env):
    r = subprocess.run([COACH, "models", "pull", "nope:Q4"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "valid names: tiny:F32" in r.stderr
