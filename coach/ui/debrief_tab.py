"""The Debrief tab: the committee's decision, each panelist's verdict, the per-criterion chart and the
report files to keep."""

from __future__ import annotations

from typing import Any

import gradio as gr

from coach.grading.debrief import Debrief
from coach.report.debrief import debrief_details, debrief_files, debrief_markdown
from coach.ui.common import Ctx


class DebriefTab:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        with gr.Tab("Debrief", id="debrief"):
            # the committee chair's written summary streams here, on its own: re-sending the whole debrief
            # for every word made the browser redraw a long page a hundred times over
            self.chair = gr.Markdown("", elem_id="debrief-chair")
            self.md = gr.Markdown("Finish a panel to see the committee's decision.", elem_id="debrief")
            with gr.Row(elem_id="fix-first"):  # one per gap of the "fix these three first" block
                self.retry_btns = [gr.Button("", visible=False, size="sm", elem_id=f"retry-gap-{i + 1}")
                                   for i in range(3)]
            self.gaps = gr.State([])  # [session id, turn index] of each gap
            self.plot = gr.Image(label="Per-criterion scores by panelist", elem_id="debrief-plot",
                                 buttons=["download", "fullscreen"], interactive=False, show_label=False)
            with gr.Row():
                self.dl_md = gr.DownloadButton("Markdown", elem_id="dl-md")
                self.dl_json = gr.DownloadButton("JSON", elem_id="dl-json")
                self.dl_html = gr.DownloadButton("HTML report", elem_id="dl-html")
            self.details = gr.Markdown("", elem_id="debrief-details")  # question by question, weak answers

    @property
    def outputs(self) -> list[Any]:
        return [self.md, self.plot, self.dl_md, self.dl_json, self.dl_html, self.details, *self.retry_btns, self.gaps,
                self.chair]

    def show(self, d: Debrief, session_id: str, owner: str = "") -> dict[Any, Any]:
        """Every part of the tab for one session's debrief (its files are written to its user's export folder)."""
        files = debrief_files(d, self.ctx.export_dir(owner) / session_id, self.ctx.colours)
        gaps = d.costliest()
        buttons = {b: gr.update(value=f"Retry question {gaps[i]['n']}", visible=True) if i < len(gaps)
                   else gr.update(visible=False) for i, b in enumerate(self.retry_btns)}
        return {self.md: debrief_markdown(d), self.plot: str(files["png"]), self.dl_md: str(files["md"]),
                self.dl_json: str(files["json"]), self.dl_html: str(files["html"]), self.details: debrief_details(d),
                **buttons, self.gaps: [[session_id, g["idx"]] for g in gaps], self.chair: ""}
