"""The Models tab: what is installed and what fits, pull from the catalog, add a local file, quantize,
and what this machine can run (`coach doctor`). After each change every model picker on the page is
refreshed."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from coach.bench.ladder import QUANT_TYPES, quantize
from coach.errors import CoachError
from coach.models.catalog import ModelRow, add, get_mistral, list_models, pull, recommended_spec
from coach.models.doctor import report as doctor_report
from coach.models.machine import bandwidth_once
from coach.report.views import model_choices, model_rows
from coach.ui.common import Ctx, in_the_browser


def installed(rows: list[ModelRow]) -> list[str]:
    return [r.name for r in rows if r.installed]


class ModelsTab:
    def __init__(self, ctx: Ctx, catalog: list[ModelRow]) -> None:
        self.ctx = ctx
        with gr.Tab("Models", id="models"):
            # "fits" comes from coach.models.fit's one rule, the same that `coach doctor` and the engine's check use
            self.table = gr.Dataframe(pd.DataFrame(model_rows(catalog, bandwidth_once())), interactive=False,
                                      elem_id="models-table")
            self.advice = gr.Markdown(f"**Recommended here:** {in_the_browser(get_mistral())}",
                                      elem_id="models-recommended")
            with gr.Row():
                self.pull_name = gr.Textbox(label="Pull NAME:QUANT, or a voice model (whisper-base.en, piper-…: "
                                                  "`coach voice list`)", value=recommended_spec())
                self.pull_btn = gr.Button("Pull")
            with gr.Row():
                self.add_path = gr.Textbox(label="Add a local .gguf (path)")
                self.add_name = gr.Textbox(label="Name (optional)")
                self.add_btn = gr.Button("Add")
            with gr.Row():
                self.q_src = gr.Dropdown(installed(catalog), label="Quantize from", allow_custom_value=True)
                self.q_type = gr.Dropdown(list(QUANT_TYPES), value="Q8_0", label="To")
                self.q_btn = gr.Button("Quantize")
            self.status = gr.Markdown("", elem_id="models-status")
            self.doctor_btn = gr.Button("What can this machine run?", elem_id="doctor")
            self.doctor_md = gr.Markdown("", elem_id="doctor-report")
        self.pickers: dict[Any, str] = {}  # every model picker on the page -> "choices", "names" or "ladder"

    def refresh(self) -> dict[Any, Any]:
        """Every picker lists what is installed now (after a pull, add or quantize, or in a new tab)."""
        rows = list_models(self.ctx.settings)  # reads each installed file's header: once per refresh
        names = installed(rows)
        out: dict[Any, Any] = {self.table: pd.DataFrame(model_rows(rows, bandwidth_once()))}
        for picker, kind in self.pickers.items():
            if kind == "choices":
                out[picker] = gr.update(choices=model_choices(rows), value=self.ctx.models.ref.name)
            else:
                out[picker] = gr.update(choices=names if kind == "names" else ["", *names])
        return out

    def do_pull(self, name: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> str:  # noqa: B008
        self.ctx.refuse_if_shared("Pulling a model")
        from coach.voice import catalog as voices

        try:
            if voices.load().get(name.strip()) is not None:  # a recognizer or a voice: the same verified pull
                return f"Ready: `{voices.pull(name.strip(), self.ctx.settings)}` (used from the next recording)"
            return f"Ready: `{pull(name.strip(), self.ctx.settings)}`"
        except CoachError as exc:
            return f"**Pull failed:** {exc}"

    def do_add(self, path: str, name: str) -> str:
        self.ctx.refuse_if_shared("Adding a model")
        try:
            ref = add(path.strip(), self.ctx.settings, name=name.strip() or None)
            return f"Registered **{ref.name}** ({ref.quant})"
        except CoachError as exc:
            return f"**Could not add:** {exc}"

    def do_quantize(self, src: str, qtype: str, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        self.ctx.refuse_if_shared("Quantizing a model")
        try:
            progress(0.1, desc=f"quantizing to {qtype}")
            ref = quantize(src, qtype, self.ctx.settings)
            return f"Made **{ref.name}** at `{ref.path}`"
        except CoachError as exc:
            return f"**Could not quantize:** {exc}"

    def doctor(self) -> str:
        return f"```\n{doctor_report(self.ctx.settings)}\n```"
