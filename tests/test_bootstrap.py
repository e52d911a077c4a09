"""The bootstrap's choice of llama.cpp backend (`scripts/llama_backend.sh`), on faked machines: stand-in
`uname`, `nvcc` and `nvidia-smi` programs on PATH decide what the script sees."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "llama_backend.sh"


def fake(bin_dir: Path, name: str, body: str) -> None:
    p = bin_dir / name
    p.write_text(f"#!/bin/sh\n{body}\n")
    p.chmod(0o755)


def choose(tmp_path: Path, *, system: str = "Linux", machine: str = "x86_64", nvcc: bool = False,
           gpu: bool = False, cmake_args: str | None = None, amx: bool = False) -> tuple[str, str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f" + (" amx_bf16 amx_tile amx_int8" if amx else "") + "\n")
    fake(bin_dir, "uname", f'[ "$1" = -m ] && echo {machine} || echo {system}')
    if nvcc:
        fake(bin_dir, "nvcc", "echo 'Cuda compilation tools, release 13.0'")
    if gpu:
        fake(bin_dir, "nvidia-smi", 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)"')
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "COACH_CUDA_ROOTS": str(tmp_path / "no-cuda"), "HOME": str(tmp_path),
           "COACH_CPUINFO": str(cpuinfo)}
    if cmake_args is not None:
        env["CMAKE_ARGS"] = cmake_args
    p = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=30, check=True)
    backend, _, flags = p.stdout.partition("\n")
    return backend, flags.strip(), p.stderr


@pytest.mark.parametrize(("machine", "want", "flags", "hint"), [
    ({}, "cpu", "", ""),
    ({"nvcc": True, "gpu": True}, "cuda", "-DGGML_CUDA=on -DCMAKE_CUDA_COMPILER=", ""),
    ({"gpu": True}, "cpu", "", "no CUDA toolkit"),
    ({"nvcc": True}, "cpu", "", "no NVIDIA GPU is visible"),
    ({"system": "Darwin", "machine": "arm64"}, "metal", "", ""),
    ({"system": "Darwin", "machine": "x86_64"}, "cpu", "", ""),
    ({"nvcc": True, "gpu": True, "cmake_args": "-DGGML_VULKAN=on"}, "custom", "-DGGML_VULKAN=on", ""),
])
def test_the_backend_follows_the_hardware_and_the_users_flags_win(tmp_path, machine, want, flags, hint):
    backend, got_flags, err = choose(tmp_path, **machine)
    assert backend == want
    assert got_flags.startswith(flags) and (flags or not got_flags)
    assert (hint in err) if hint else not err.strip()


NO_AMX = '-DCMAKE_C_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"'


def test_a_cpu_with_amx_builds_without_it(tmp_path):
    """llama.cpp 0.3.36's native build dies with SIGILL in its AMX matmul (tiles never requested from the
    kernel): on such a CPU the build turns AMX off, for the CPU and the CUDA build alike."""
    backend, flags, _ = choose(tmp_path, amx=True)
    assert backend == "cpu" and flags.startswith(NO_AMX) and "-DCMAKE_CXX_FLAGS=" in flags
    backend, flags, _ = choose(tmp_path, amx=True, nvcc=True, gpu=True)
    assert backend == "cuda" and flags.startswith("-DGGML_CUDA=on") and NO_AMX in flags
    backend, flags, _ = choose(tmp_path, amx=True, cmake_args="-DGGML_NATIVE=OFF")
    assert (backend, flags) == ("custom", "-DGGML_NATIVE=OFF")  # the user's flags still win
    import shlex
    assert shlex.split(NO_AMX) == ["-DCMAKE_C_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"]  # as the build splits it


def test_the_backend_is_part_of_the_bootstrap_stamp():
    """A change of backend must rebuild, not reuse pip's cached CPU wheel: the stamp carries it."""
    text = (REPO / "scripts" / "bootstrap.sh").read_text()
    assert "llama_backend.sh" in text and 'want="$want $BACKEND' in text
    assert "--no-cache-dir --force-reinstall" in text
    stamp = (REPO / ".venv" / ".coach-bootstrap")
    if stamp.exists() and os.environ.get("CI") != "true":
        assert len(stamp.read_text().split()) >= 3  # hash, backend, flags hash
