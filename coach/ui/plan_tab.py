"""The Plan tab: the questions and criteria you scored lowest, when each is due again, each criterion's trend
across sessions, and a drill of the due ones (started in the Panel tab)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import pandas as pd

from coach.auth import owner_of
from coach.prep.plan import GOOD, REVIEWS_D, Plan, build_plan, criterion_label
from coach.report.views import clip, criteria_chart
from coach.ui.common import Ctx

COLUMNS = ["Due", "Last score", "Tries", "Weakest criterion", "Asked by", "Question"]


class PlanTab:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        with gr.Tab("Plan", id="plan") as self.tab:
            self.refresh = gr.Button("Refresh", elem_id="plan-refresh")
            self.summary = gr.Markdown("", elem_id="plan-summary")
            self.table = gr.Dataframe(interactive=False, elem_id="plan-table", wrap=True)
            self.criteria = gr.Markdown("", elem_id="plan-criteria")
            self.trend = gr.Image(label="Each criterion by session", elem_id="plan-trend", interactive=False,
                                  show_label=False, buttons=["download", "fullscreen"])
            with gr.Row():
                self.practice = gr.Checkbox(True, label="Practice mode (hints and a strong answer)",
                                            elem_id="drill-practice")
                self.drill_btn = gr.Button("Start a drill of the due questions", variant="primary",
                                           elem_id="drill")

    @property
    def outputs(self) -> list[Any]:
        return [self.summary, self.table, self.criteria, self.trend]

    def plan_of(self, request: gr.Request | None) -> Plan:
        return build_plan(self.ctx.store, owner_of(request))

    def show(self, request: gr.Request | None = None) -> dict[Any, Any]:
        plan, now = self.plan_of(request), time.time()
        if not plan.items:
            return {self.summary: "Nothing graded yet: rehearse a round in the **Panel** tab, and your weak spots "
                                  "show here.", self.table: pd.DataFrame([], columns=COLUMNS), self.criteria: "",
                    self.trend: None}
        planned, due = plan.planned, plan.due(now)
        days = ", ".join(str(d) for d in REVIEWS_D)
        summary = (f"**{len(planned)} question{'s' * (len(planned) != 1)} to work on, {len(due)} due now.** A score "
                   f"under {GOOD} brings a question back after {days} days; a good answer moves it on, and after "
                   f"the {REVIEWS_D[-1]}-day review it leaves the plan.")
        if plan.learned:
            summary += f" Out of the plan: {len(plan.learned)}."
        names = {k: p.name for k, p in self.ctx.personas.items()}
        rows = [[i.when(now), f"{i.last.total:.2f}", len(i.attempts), criterion_label(i.weakest_criterion),
                 names.get(i.panelist, i.panelist), clip(i.text, 90)] for i in planned]
        crit = "**Criteria, lowest first:** " + " · ".join(f"{criterion_label(c)} {m:.2f} ({n} answers)"
                                                            for c, m, n in plan.criteria)
        chart = None
        if plan.trend:
            out = self.ctx.export_dir(owner_of(request))
            out.mkdir(parents=True, exist_ok=True)
            chart = str(criteria_chart([(t.created, t.criteria) for t in plan.trend], out / f"plan-{time.time_ns()}.png"))
        return {self.summary: summary, self.table: pd.DataFrame(rows, columns=COLUMNS), self.criteria: crit,
                self.trend: chart}

    def drill_questions(self, request: gr.Request | None) -> tuple[list[str], str]:
        """The drill's question ids and what the status line says about them ('' when none is planned)."""
        items, early = self.plan_of(request).drill()
        if not items:
            return [], ""
        note = f"Nothing was due yet: the {len(items)} soonest due, weakest first. " if early else ""
        return [i.question_id for i in items], note
