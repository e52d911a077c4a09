#!/usr/bin/env bash
# Which llama.cpp backend this machine should build, printed as two lines: the backend name, then the
# CMAKE_ARGS to build llama-cpp-python with. A hint for the user, if any, goes to stderr.
#   - the user's own CMAKE_ARGS win (backend "custom");
#   - Apple silicon: Metal, llama.cpp's default there (no flags needed);
#   - a CUDA toolkit (nvcc on PATH, in $CUDA_HOME, $CUDA_PATH or /usr/local/cuda): CUDA;
#   - otherwise the CPU. An NVIDIA GPU without a CUDA toolkit gets a one-line hint.
# On an x86 CPU with AMX (Xeon Sapphire Rapids and later) the CPU code is built without AMX: llama.cpp
# 0.3.36's native build uses AMX tiles without asking the kernel for them, and every prompt batch dies
# with SIGILL (seen on such a machine: `tileloadd` in ggml_backend_amx_mul_mat). Laptops have no AMX.
set -euo pipefail

no_amx=""
if grep -qw amx_tile "${COACH_CPUINFO:-/proc/cpuinfo}" 2>/dev/null; then
    amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    no_amx="-DCMAKE_C_FLAGS=\"$amx\" -DCMAKE_CXX_FLAGS=\"$amx\""
fi

if [ -n "${CMAKE_ARGS:-}" ]; then
    echo custom
    echo "$CMAKE_ARGS"
    exit 0
fi
if [ "$(uname -s)" = Darwin ] && [ "$(uname -m)" = arm64 ]; then
    echo metal
    echo ""
    exit 0
fi
nvcc_found=""
if command -v nvcc >/dev/null 2>&1; then
    nvcc_found=$(command -v nvcc)
else
    for root in "${CUDA_HOME:-}" "${CUDA_PATH:-}" ${COACH_CUDA_ROOTS-/usr/local/cuda}; do
        if [ -n "$root" ] && [ -x "$root/bin/nvcc" ]; then nvcc_found="$root/bin/nvcc"; break; fi
    done
fi
gpu=""
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then gpu=yes; fi
if [ -n "$nvcc_found" ] && [ -n "$gpu" ]; then
    echo cuda
    echo "-DGGML_CUDA=on -DCMAKE_CUDA_COMPILER=$nvcc_found${no_amx:+ $no_amx}"
    exit 0
fi
if [ -n "$gpu" ]; then
    echo "bootstrap: an NVIDIA GPU is here but no CUDA toolkit (nvcc): llama.cpp builds for the CPU only." \
         "Install the CUDA toolkit and rerun ./scripts/bootstrap.sh to offload to the GPU." >&2
elif [ -n "$nvcc_found" ]; then
    # a toolkit with no GPU to see (a build box, a container): CUDA's "native" architecture cannot be chosen
    echo "bootstrap: a CUDA toolkit but no NVIDIA GPU is visible: building for the CPU. To build for a GPU" \
         "elsewhere: CMAKE_ARGS=\"-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90\" ./scripts/bootstrap.sh" >&2
fi
echo cpu
echo "$no_amx"
