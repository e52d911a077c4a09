#!/usr/bin/env bash
# Build llama.cpp's own llama-server from the llama.cpp that llama-cpp-python vendors (its sdist on PyPI),
# so the model server is the same llama.cpp as the coach's engine. Installs it as .venv/bin/llama-server,
# where `coach serve-model`, the tests and bench/cohort_bench.py find it (or set COACH_LLAMA_SERVER).
# About 25 minutes on 2 cores; CMAKE_ARGS="-DGGML_CUDA=on" builds it for an NVIDIA GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml | head -1 | cut -d= -f3)
WORK=${WORK:-build/llama-server}
mkdir -p "$WORK"
[ -f "$WORK/llama_cpp_python-$VERSION.tar.gz" ] || .venv/bin/python -m pip download -q --no-deps --no-binary :all: \
    -d "$WORK" "llama-cpp-python==$VERSION"
[ -d "$WORK/llama_cpp_python-$VERSION" ] || tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
# the same CPU flags as the engine's build (no AMX where llama.cpp's AMX path dies on this CPU)
{ read -r _; read -r FLAGS || true; } < <(scripts/llama_backend.sh)
eval "set -- ${CMAKE_ARGS:-$FLAGS}"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=OFF "$@" >/dev/null
cmake --build "$WORK/build" --target llama-server -j "$(nproc)"
install -m 755 "$WORK/build/bin/llama-server" .venv/bin/llama-server
echo "built: .venv/bin/llama-server ($("$WORK/build/bin/llama-server" --version 2>&1 | head -1))"
