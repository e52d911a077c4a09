"""The Gradio UI: `build_demo(settings)` builds the page from coach/; `launch` serves it on 127.0.0.1.

Private by default: bound to loopback, no share link, analytics off, no fonts or scripts from a CDN.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from collections.abc import Iterator  # noqa: E402

import gradio as gr  # noqa: E402

from coach.config import Settings  # noqa: E402
from coach.engine import LlamaBackend  # noqa: E402
from coach.models import ModelRef, resolve  # noqa: E402

SYSTEM = "You are a concise interview coach for product roles at AI labs. Answer in a few sentences."
# System fonts only: the default theme would fetch web fonts from a CDN.
THEME = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])


def model_banner(ref: ModelRef) -> str:
    return f"**Model running:** {ref.describe()}"


def build_demo(settings: Settings) -> gr.Blocks:
    ref = resolve(settings.model, settings)
    backend = LlamaBackend(ref.path, n_ctx=settings.n_ctx, n_threads=settings.n_threads,
                           n_gpu_layers=settings.n_gpu_layers, seed=settings.seed)

    def chat(message: str, history: list[dict]) -> Iterator[str]:
        text = (message or "").strip()
        if not text:
            yield "Type a message first."
            return
        turns = [{"role": m["role"], "content": str(m["content"])}
                 for m in history if m.get("role") in ("user", "assistant")]
        messages = [{"role": "system", "content": SYSTEM}, *turns, {"role": "user", "content": text}]
        reply = ""
        for chunk in backend.stream("chat", messages, max_tokens=300):
            reply += chunk
            yield reply

    with gr.Blocks(title="Interview coach") as demo:
        gr.Markdown("# Interview coach")
        gr.Markdown(model_banner(ref), elem_id="model-banner")
        # no "share" button on the chatbot: it posts to a public forum
        chatbot = gr.Chatbot(elem_id="chatbot", height=420, buttons=["copy", "copy_all"])
        gr.ChatInterface(chat, api_name="chat", chatbot=chatbot,
                         textbox=gr.Textbox(placeholder="Ask the model something…", elem_id="chat-input"))
    return demo


def launch(settings: Settings) -> None:
    demo = build_demo(settings)
    print(f"coach: open http://{settings.host}:{settings.port}", flush=True)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=settings.host, server_port=settings.port, share=False, inbrowser=False, theme=THEME,
        footer_links=[],
    )


if __name__ == "__main__":
    launch(Settings.from_env())
