"""The Gradio UI: one module per tab, `build_demo(settings)` wires them, `launch` serves on 127.0.0.1.

Private by default: bound to loopback, no share link, analytics off, no fonts or scripts from a CDN.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from coach.ui.demo import build_demo, launch  # noqa: E402

__all__ = ["build_demo", "launch"]
