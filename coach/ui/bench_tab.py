"""The Benchmark tab: speed, memory and quality per quantization level on this machine, with the
recommendation, the plot and the result files. A ladder is built locally from one installed file.

One benchmark at a time for the whole page: two at once would share the cores and each report a fraction
of the real speed, so a second is refused (from any browser tab) while one runs. A run can be cancelled,
and it stops when its tab goes away; its progress bar moves with the files done and the time spent on the
one being measured."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import psutil

from coach.bench.ladder import LADDER, build_ladder
from coach.bench.run import BenchRow, Options, recommend, run
from coach.errors import CoachError
from coach.models.catalog import ModelRow, resolve
from coach.report.views import BENCH_COLUMNS, BENCH_LABELS
from coach.ui.common import Ctx
from coach.ui.models_tab import installed

TYPICAL_FILE_S = 60.0  # how the bar paces the file being measured (it slows as it nears the file's share)


def stop_workers() -> int:
    """End this process's measuring workers (`python -m coach.bench.run --worker`); returns how many."""
    n = 0
    for child in psutil.Process().children(recursive=True):
        try:
            if "--worker" in child.cmdline() and "coach.bench.run" in child.cmdline():
                child.kill()
                n += 1
        except psutil.Error:
            continue
    return n


def bench_frame(rows: list[BenchRow]) -> pd.DataFrame:
    """The results with labels a person reads; the reference file's agreement says "reference" (it was
    compared with itself), not 100%."""
    ok = [r for r in rows if r.status == "ok"]
    reference = ok[0] if ok and any(r.top1 is not None for r in ok) else None
    data = []
    for r in rows:
        d: dict[str, Any] = {c: getattr(r, c) for c in BENCH_COLUMNS}
        for k in ("gen_tps", "pp_tps", "size_mb", "peak_rss_mb", "ttft_open_ms", "ttft_follow_ms"):
            d[k] = round(d[k], 1) if isinstance(d[k], float) else d[k]
        d["top1"] = "reference" if r is reference else (f"{r.top1:.1%}" if r.top1 is not None else "—")
        d["kl"] = "reference" if r is reference else (f"{r.kl:.4f}" if r.kl is not None else "—")
        d["bandwidth_share"] = f"{r.bandwidth_share:.0%}" if r.bandwidth_share else "—"
        data.append(d)
    return pd.DataFrame(data, columns=BENCH_COLUMNS).rename(columns=BENCH_LABELS)


def advice(rows: list[BenchRow]) -> str:
    """The recommendation, only when there is something to compare: one file is measured, not chosen."""
    ok = [r for r in rows if r.status == "ok"]
    if len(ok) == 1:
        r = ok[0]
        return (f"Measured one file: {r.quant} ({r.name}) writes {r.gen_tps:.1f} tokens/s here. Nothing to "
                "compare it with, so no recommendation: add a second model or a ladder of two rungs or more.")
    # the reference agrees with itself by construction: say what it is, not "100%"
    return re.sub(r"top-1 agreement 100%", "the reference the others are compared with", recommend(rows))


class BenchTab:
    def __init__(self, ctx: Ctx, catalog: list[ModelRow]) -> None:
        self.ctx = ctx
        self._busy = threading.Lock()  # one benchmark at a time, whichever tab asks
        self._running: dict[str, Any] = {}  # the run in progress: when it started, its cancel switch
        with gr.Tab("Benchmark", id="bench"):
            gr.Markdown("Speed, memory and quality per quantization level, measured on this machine. A ladder "
                        "is built locally from one file, so this works offline on the embedded model. One "
                        "benchmark runs at a time: two would share the cores and each would read slow.")
            with gr.Row():
                self.models = gr.Dropdown(installed(catalog), multiselect=True, label="Installed models",
                                          elem_id="bench-models", allow_custom_value=True)
                self.ladder_src = gr.Dropdown(["", *installed(catalog)], value="", label="Or build a ladder from",
                                              elem_id="bench-ladder", allow_custom_value=True, scale=2)
                self.rungs = gr.CheckboxGroup(list(LADDER), value=["Q8_0", "Q4_K_M"], label="Rungs",
                                              elem_id="bench-rungs", scale=2)
                self.reps = gr.Number(1, precision=0, minimum=1, maximum=10, label="Repetitions", elem_id="bench-reps")
            with gr.Row():
                self.run_btn = gr.Button("Run the benchmark", variant="primary", elem_id="bench-run", scale=3)
                self.cancel_btn = gr.Button("Cancel", elem_id="bench-cancel", scale=1)
            self.recommendation = gr.Markdown("", elem_id="bench-recommendation")
            self.table = gr.Dataframe(interactive=False, elem_id="bench-table")
            self.plot = gr.Image(label="Speed against size (colour: agreement with the reference)", elem_id="bench-plot",
                                 show_label=False, buttons=["download", "fullscreen"])
            self.files = gr.File(file_count="multiple", elem_id="bench-files",
                                 label="Results: CSV, JSON (with the machine manifest), interactive plot")

    @property
    def outputs(self) -> list[Any]:
        return [self.table, self.plot, self.recommendation, self.files]

    def _empty(self, message: str) -> dict[Any, Any]:
        return {self.table: pd.DataFrame(), self.plot: None, self.recommendation: message, self.files: None}

    def cancel(self) -> str:
        """Stop the benchmark in progress (the rows finished so far are kept)."""
        stop = self._running.get("cancel")
        if stop is None:
            return "No benchmark is running."
        stop.set()
        stop_workers()
        return "**Cancelling…** the file being measured is stopped; the rows finished so far are kept."

    def run(self, names: list[str], ladder_src: str, rungs: list[str], reps: float,
            progress: gr.Progress = gr.Progress()) -> Iterator[dict[Any, Any]]:  # noqa: B008
        self.ctx.refuse_if_shared("The benchmark")
        if not self._busy.acquire(blocking=False):
            since = time.strftime("%H:%M", time.localtime(self._running.get("since", time.time())))
            yield self._empty(f"**A benchmark is already running** (since {since}, maybe in another tab). Two at "
                              "once would each measure a fraction of the real speed: wait for it, or press Cancel.")
            return
        cancel = threading.Event()
        self._running = {"since": time.time(), "cancel": cancel}
        try:
            yield from self._run(names, ladder_src, rungs, reps, progress, cancel)
        finally:  # finished, failed, cancelled, or the tab went away (the generator is closed)
            if not cancel.is_set() and self._running.get("thread") is not None and \
                    self._running["thread"].is_alive():
                cancel.set()
                stop_workers()
            self._running = {}
            self._busy.release()

    def _run(self, names: list[str], ladder_src: str, rungs: list[str], reps: float, progress: gr.Progress,
             cancel: threading.Event) -> Iterator[dict[Any, Any]]:
        settings = self.ctx.settings
        try:
            files = [resolve(n, settings) for n in names or []]
            if ladder_src:
                chosen = tuple(rungs or ["Q8_0", "Q4_K_M"])
                progress(0.0, desc=f"building the ladder: {', '.join(chosen)} (cached after the first time)")
                files += build_ladder(ladder_src, settings, chosen)
        except CoachError as exc:
            yield self._empty(f"**Benchmark failed:** {exc}")
            return
        if not files:
            yield self._empty("Pick at least one model or a ladder source.")
            return
        out = settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
        opts = Options(reps=int(reps or 1), threads=settings.n_threads, gpu_layers=settings.n_gpu_layers, out_dir=out)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["rows"], _ = run(files, settings, opts, progress=False)
            except Exception as exc:  # noqa: BLE001  (said on the page below)
                result["error"] = exc

        thread = threading.Thread(target=work, daemon=True, name="coach-bench")
        self._running["thread"] = thread
        thread.start()
        t0, done_before, file_t0 = time.time(), 0, time.time()
        while thread.is_alive():
            done = _rows_done(out)
            if done != done_before:
                done_before, file_t0 = done, time.time()
            if cancel.is_set():
                stop_workers()  # each worker that starts after the cancel is stopped too
            # the files done, and the one being measured moving towards its share (never past it)
            part = 1 - math.exp(-(time.time() - file_t0) / TYPICAL_FILE_S)
            n = len(files)
            progress((done + 0.95 * part) / n, desc=f"measuring file {min(done + 1, n)} of {n}: "
                                                    f"{files[min(done, n - 1)].name} ({time.time() - t0:.0f} s)")
            thread.join(0.5)
        if "error" in result:
            yield self._empty(f"**Benchmark failed:** {result['error']}")
            return
        rows: list[BenchRow] = result["rows"]
        plot_png = out / "plot.png"
        results = [str(f) for f in sorted(out.iterdir()) if f.suffix in {".csv", ".json", ".html"}]
        head = "**Cancelled:** the rows below finished before it stopped.\n\n" if cancel.is_set() else ""
        yield {self.table: bench_frame(rows), self.plot: str(plot_png) if plot_png.exists() else None,
               self.recommendation: f"{head}**{advice(rows)}**\n\nFiles in `{out}`", self.files: results or None}


def _rows_done(out: Path) -> int:
    """Files finished so far: the run rewrites rows.csv after each one."""
    try:
        return max(0, len((out / "rows.csv").read_text().splitlines()) - 1)
    except OSError:
        return 0
