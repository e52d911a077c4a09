"""The History tab: every stored session with a trend chart; resume one, show its debrief, or answer one
of its questions again and compare the grades."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import gradio as gr
import pandas as pd

from coach.auth import owner_of
from coach.errors import CoachError
from coach.report.views import SESSION_COLUMNS, clip, session_rows, trend_chart
from coach.ui.common import Ctx
from coach.ui.debrief_tab import DebriefTab


class HistoryTab:
    def __init__(self, ctx: Ctx, debrief: DebriefTab) -> None:
        self.ctx, self.debrief = ctx, debrief
        with gr.Tab("History", id="history"):
            self.refresh = gr.Button("Refresh", elem_id="history-refresh")
            self.table = gr.Dataframe(interactive=False, elem_id="history-table")
            self.trend = gr.Image(label="Scores over time", elem_id="trend", interactive=False, show_label=False,
                                  buttons=["download", "fullscreen"])
            self.pick = gr.Dropdown([], label="Session", elem_id="history-session", allow_custom_value=True)
            with gr.Row():
                self.resume_btn = gr.Button("Resume", elem_id="resume")
                self.show_btn = gr.Button("Show its debrief", elem_id="show-debrief")
                self.abandon_btn = gr.Button("Abandon", elem_id="abandon")
                self.delete_btn = gr.Button("Delete", variant="stop", elem_id="delete")
            self.done_md = gr.Markdown("", elem_id="history-done")
            self.take_over = gr.Checkbox(False, label="Take over if it is open in another browser (this browser's "
                                                      "own sessions come back without it)", elem_id="take-over")
            self.pick_turn = gr.Dropdown([], label="Retry one question", elem_id="retry-turn", allow_custom_value=True)
            self.retry_box = gr.Textbox(lines=3, label="New answer", elem_id="retry-answer")
            self.retry_btn = gr.Button("Grade the new answer", elem_id="retry")
            self.retry_md = gr.Markdown("", elem_id="retry-result")
        self.tabs: Any = None  # the page's tabs (set by build_demo): showing a debrief opens its tab

    def sessions(self, request: gr.Request | None = None) -> dict[Any, Any]:
        rows = self.ctx.history_of(request).sessions()
        scored = [r for r in rows if r["mean_total"] is not None]
        out = self.ctx.export_dir(owner_of(request))
        out.mkdir(parents=True, exist_ok=True)
        trend = trend_chart(scored, out / f"trend-{time.time_ns()}.png") if scored else None
        return {self.table: pd.DataFrame(session_rows(rows), columns=SESSION_COLUMNS),
                self.pick: gr.update(choices=[(f"{r['label']} · {r['answered']} answers · {r['status']}", r["id"])
                                              for r in rows]),
                self.trend: str(trend) if trend else None}

    def questions(self, sid: str, request: gr.Request | None = None) -> Any:
        """The Retry picker: the session's graded questions, numbered from 1 as the debrief numbers them."""
        if not sid:
            return gr.update(choices=[])
        graded = self.ctx.history_of(request).graded_questions(sid)
        return gr.update(choices=[(clip(text, 110), idx) for idx, text in graded], value=None)

    CONFIRM_JS = "(sid) => (sid && confirm('Delete this session and everything stored with it, for good?')) ? sid : ''"

    def abandon(self, sid: str, request: gr.Request | None = None) -> str:
        if not sid:
            return "Pick a session first."
        self.ctx.history_of(request).abandon(sid)
        return "Marked **abandoned**; Resume still picks it up."

    def delete(self, sid: str, request: gr.Request | None = None) -> str:
        if not sid:
            return "Nothing deleted."
        live = self.ctx.live.get(sid)
        if live is not None:
            live.stop_background()
        self.ctx.history_of(request).delete(sid)
        return "Deleted."

    def retry_from(self, i: int) -> Callable[..., dict[Any, Any]]:
        """The debrief's i-th "retry this question": History opens on that session and question."""

        def go(gaps: list[list[Any]] | None, request: gr.Request | None = None) -> dict[Any, Any]:
            if not gaps or i >= len(gaps):
                return {self.tabs: gr.update(selected="history")}
            sid, idx = gaps[i][0], int(gaps[i][1])
            graded = self.ctx.history_of(request).graded_questions(sid)
            return {self.tabs: gr.update(selected="history"), self.pick: sid,
                    self.pick_turn: gr.update(choices=[(clip(t, 110), x) for x, t in graded], value=idx),
                    self.retry_box: "", self.retry_md: ""}

        return go

    def show_debrief(self, sid: str, request: gr.Request | None = None) -> dict[Any, Any]:
        """The session's debrief, in the Debrief tab, which opens."""
        if not sid:
            return {self.debrief.md: "Pick a session first.", self.tabs: gr.update(selected="debrief")}
        return {**self.debrief.show(self.ctx.history_of(request).debrief(sid), sid, owner_of(request)),
                self.tabs: gr.update(selected="debrief")}

    def retry(self, sid: str, idx: int | None, text: str, request: gr.Request | None = None) -> str:
        if not sid or idx is None:
            return "Pick a session and one of its questions."
        try:
            r = self.ctx.history_of(request).retry(sid, int(idx), text)
        except CoachError as exc:
            return f"**Could not grade it:** {exc}"
        return (f"**Before {r.before:.2f} → now {r.grade.total:.2f}** ({r.change}); saved: this list and the "
                f"session's debrief show it.\n\n{r.grade.summary()}\n\n**Next time:** {r.grade.improvement}")
