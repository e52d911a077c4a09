"""The Benchmark tab: speed, memory and quality per quantization level on this machine, with the
recommendation, the plot and the result files. A ladder is built locally from one installed file."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pandas as pd

from coach.bench import Options, recommend, run
from coach.errors import CoachError
from coach.ladder import LADDER, build_ladder
from coach.models import ModelRow, resolve
from coach.ui.common import Ctx
from coach.ui.models_tab import installed
from coach.views import BENCH_COLUMNS


class BenchTab:
    def __init__(self, ctx: Ctx, catalog: list[ModelRow]) -> None:
        self.ctx = ctx
        with gr.Tab("Benchmark", id="bench"):
            gr.Markdown("Speed, memory and quality per quantization level, measured on this machine. A ladder "
                        "is built locally from one file, so this works offline on the embedded model.")
            with gr.Row():
                self.models = gr.Dropdown(installed(catalog), multiselect=True, label="Installed models",
                                          elem_id="bench-models", allow_custom_value=True)
                self.ladder_src = gr.Dropdown(["", *installed(catalog)], value="", label="Or build a ladder from",
                                              elem_id="bench-ladder", allow_custom_value=True, scale=2)
                self.rungs = gr.CheckboxGroup(list(LADDER), value=["Q8_0", "Q4_K_M"], label="Rungs",
                                              elem_id="bench-rungs", scale=2)
                self.reps = gr.Number(1, precision=0, minimum=1, maximum=10, label="Repetitions", elem_id="bench-reps")
            self.run_btn = gr.Button("Run the benchmark", variant="primary", elem_id="bench-run")
            self.recommendation = gr.Markdown("", elem_id="bench-recommendation")
            self.table = gr.Dataframe(interactive=False, elem_id="bench-table")
            self.plot = gr.Image(label="Speed against size (colour: agreement with the reference)", elem_id="bench-plot",
                                 show_label=False, buttons=["download", "fullscreen"])
            self.files = gr.File(file_count="multiple", elem_id="bench-files",
                                 label="Results: CSV, JSON (with the machine manifest), interactive plot")

    @property
    def outputs(self) -> list[Any]:
        return [self.table, self.plot, self.recommendation, self.files]

    def run(self, names: list[str], ladder_src: str, rungs: list[str], reps: float,
            progress: gr.Progress = gr.Progress(track_tqdm=True)) -> dict[Any, Any]:  # noqa: B008
        settings = self.ctx.settings
        self.ctx.refuse_if_shared("The benchmark")
        try:
            files = [resolve(n, settings) for n in names or []]
            if ladder_src:
                chosen = tuple(rungs or ["Q8_0", "Q4_K_M"])
                progress(0.0, desc=f"building the ladder: {', '.join(chosen)} (cached after the first time)")
                files += build_ladder(ladder_src, settings, chosen)
            if not files:
                return {self.table: pd.DataFrame(), self.plot: None,
                        self.recommendation: "Pick at least one model or a ladder source.", self.files: None}
            rows, out = run(files, settings, Options(reps=int(reps or 1), threads=settings.n_threads,
                                                     gpu_layers=settings.n_gpu_layers), progress=True)
        except CoachError as exc:
            return {self.table: pd.DataFrame(), self.plot: None, self.recommendation: f"**Benchmark failed:** {exc}",
                    self.files: None}
        df = pd.DataFrame([{c: getattr(r, c) for c in BENCH_COLUMNS} for r in rows], columns=BENCH_COLUMNS).round(3)
        plot_png = out / "plot.png"
        results = [str(f) for f in sorted(out.iterdir()) if f.suffix in {".csv", ".json", ".html"}]
        return {self.table: df, self.plot: str(plot_png) if plot_png.exists() else None,
                self.recommendation: f"**{recommend(rows)}**\n\nFiles in `{out}`", self.files: results or None}
