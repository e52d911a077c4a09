"""Start a model server for a cohort: llama.cpp's own `llama-server` when it is installed, else
llama-cpp-python's server (`pip install 'llama-cpp-python[server]'`). `coach serve-model` runs this in
the foreground; the tests and `bench/cohort_bench.py` start one in the background on the embedded model.

Both keep each panelist's prefix: llama-server with one slot per concurrent speaker (`--parallel`)
and prompt caching (`cache_prompt`, on by default); llama-cpp-python's server with its prompt cache
(`--cache true`), which saves the state after every turn and restores the longest matching prefix.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from coach.errors import CoachError, ConfigError


@dataclass
class ServerCommand:
    kind: str  # "llama-server" or "llama-cpp-python"
    argv: list[str]


def server_command(gguf: Path, *, host: str = "127.0.0.1", port: int = 8080, n_ctx: int = 8192,
                   slots: int = 4, gpu_layers: int = -1, threads: int | None = None,
                   kind: str | None = None, binary: Path | None = None) -> ServerCommand:
    """The command line that serves `gguf` with `slots` resident prompts of `n_ctx` tokens each. llama-server
    is `binary` (Settings.llama_server, `--llama-server`), else COACH_LLAMA_SERVER, else on PATH, else beside
    this Python (where scripts/build_llama_server.sh puts it)."""
    beside = Path(sys.executable).with_name("llama-server")
    binary_s = str(binary) if binary else os.environ.get("COACH_LLAMA_SERVER") or shutil.which("llama-server") or \
        (str(beside) if beside.exists() else None)
    if binary_s and kind != "llama-cpp-python" and not Path(binary_s).is_file():
        raise ConfigError(f"llama-server {binary_s} is not a file; give the path of llama.cpp's llama-server "
                          "(--llama-server or COACH_LLAMA_SERVER)")
    if kind == "llama-server" and not binary_s:
        raise ConfigError("llama-server is not on PATH; build llama.cpp (docs/cohort.md) or give its path "
                          "with --llama-server or COACH_LLAMA_SERVER")
    if binary_s and kind != "llama-cpp-python":
        argv = [binary_s, "-m", str(gguf), "--host", host, "--port", str(port), "-c", str(n_ctx * slots),
                "-np", str(slots), "-ngl", str(gpu_layers), "--no-webui", "--metrics"]
        if threads:
            argv += ["-t", str(threads)]
        return ServerCommand("llama-server", argv)
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"no model server is installed ({exc.name} is missing): pip install "
                          "'llama-cpp-python[server]==0.3.36', or put llama.cpp's llama-server on PATH") from None
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", host, "--port", str(port),
            "--n_ctx", str(n_ctx), "--cache", "true", "--cache_size", str(2 << 30),
            "--n_gpu_layers", str(gpu_layers), "--verbose", "true"]
    if threads:
        argv += ["--n_threads", str(threads)]
    return ServerCommand("llama-cpp-python", argv)


class ModelServer:
    """A model server in the background, up once it lists its model; `stop()` ends it."""

    def __init__(self, cmd: ServerCommand, port: int, log: IO[bytes] | int | None = subprocess.DEVNULL,
                 host: str = "127.0.0.1", wait_s: float = 120.0) -> None:
        self.cmd, self.port = cmd, port
        self.url = f"http://{host}:{port}"
        self.proc = subprocess.Popen(cmd.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CoachError(f"the {cmd.kind} model server exited with code {self.proc.returncode} at start")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise CoachError(f"the {cmd.kind} model server did not answer within {wait_s:.0f} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
