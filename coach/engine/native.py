"""llama.cpp process-wide parts: GPU layers that fit, the abort callback, the log filter, stop strings."""

from __future__ import annotations

import ctypes
import os
from typing import Any

from coach.models.fit import gpu_layers_that_fit
from coach.models.gguf import GGUFInfo


def auto_gpu_layers(info: GGUFInfo, n_ctx: int, slots: int = 1) -> int:
    """The most layers that fit the GPU: all (-1) when this build can offload and weights plus every
    slot's KV fit in free VRAM, else as many whole layers as fit (the rest run on the CPU), else 0."""
    import llama_cpp

    if not llama_cpp.llama_supports_gpu_offload():
        return 0
    free = free_vram()
    if free is None:
        return -1  # Metal/Vulkan builds: no nvidia-smi; llama.cpp itself falls back if it cannot fit
    return gpu_layers_that_fit(info, n_ctx, slots, free)


def free_vram() -> int | None:
    from coach.models.doctor import nvidia_gpus

    gpus = nvidia_gpus()
    return max(g.free for g in gpus) if gpus else None


# Background reading (prefill) runs in batches. llama.cpp's batched kernels want size: on a 7B Q4_K_M on
# 2 cores, 4-token batches read 8.5 tokens/s and 64-token batches 17.4 (docs/benchmark.md). A batch of 64
# takes 3.7 s there, so a turn that wants the model aborts it through llama.cpp's abort callback (it
# stops within milliseconds; the partial batch is dropped). Where no abort callback can be installed,
# batches are sized to take about PREFILL_BATCH_S, so a turn waits at most that long.
PREFILL_BATCH = 64


PREFILL_BATCH_S = 0.4


_LOG_FILTER: Any = None


def quiet_aborts() -> None:
    """llama.cpp logs, at error level, the cleanup after every aborted batch ("removing memory module
    entries"); an aborted background batch is the engine working as designed, so that line is dropped
    and everything else goes to llama-cpp-python's own logger as before."""
    global _LOG_FILTER
    if _LOG_FILTER is not None:
        return
    import llama_cpp
    from llama_cpp import _logger

    def log(level: int, text: bytes, user_data: Any) -> None:
        if b"removing memory module entries" not in text:
            _logger.llama_log_callback(level, text, user_data)

    _LOG_FILTER = llama_cpp.llama_log_callback(log)
    llama_cpp.llama_log_set(_LOG_FILTER, ctypes.c_void_p(0))


def abort_callback() -> Any:
    """An abort callback that needs no Python: llama.cpp calls it between graph nodes from its compute
    thread, and a Python callback would take the GIL there, a thousand times a batch. libc's strlen on a
    two-byte flag buffer answers the same question: 0 (empty string) goes on, 1 stops. None where libc
    cannot be found (the engine then falls back to short batches)."""
    import llama_cpp

    try:
        libc = ctypes.CDLL(None) if os.name != "nt" else ctypes.cdll.msvcrt
        address = ctypes.cast(libc.strlen, ctypes.c_void_p).value
    except (OSError, AttributeError, TypeError):
        return None
    return llama_cpp.ggml_abort_callback(address) if address else None


def find_stop(text: str, stops: list[str]) -> int | None:
    hits = [text.find(s) for s in stops if s and s in text]
    return min(hits) if hits else None


def partial_stop(text: str, stops: list[str]) -> int:
    """Length of the longest tail of `text` that begins some stop string (held back until resolved)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), 0, -1):
            if s.startswith(text[-n:]):
                best = max(best, n)
                break
    return best


# Used only when a GGUF carries no chat template (rare; old conversions): ChatML.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
