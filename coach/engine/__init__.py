"""The engine: the `ChatBackend` seam and the in-process llama.cpp backend behind it.

`llama.py` keeps every speaker's prompt resident in llama.cpp's KV cache; `layout.py` chooses, per model
template, a prompt layout in which each speaker's prefix never moves.
"""

from coach.engine.base import ChatBackend, TurnTimings
from coach.engine.layout import Layout, Message
from coach.engine.llama import LlamaBackend
from coach.engine.native import PREFILL_BATCH_S, auto_gpu_layers

__all__ = ["PREFILL_BATCH_S", "ChatBackend", "Layout", "LlamaBackend", "Message", "TurnTimings", "auto_gpu_layers"]
