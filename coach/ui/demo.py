"""`build_demo(settings)` builds the page from its tabs and wires their handlers; `launch` serves it.

Each browser tab holds its own `Interview` in a `gr.State`; all tabs share one loaded model, whose lock
makes them take turns. Every turn is stored as it happens, so a closed tab loses nothing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from coach.auth import launch_auth
from coach.config import Settings
from coach.engine import LlamaBackend
from coach.grading.grader import Grader
from coach.grading.rubrics import load_all
from coach.interview.history import History
from coach.interview.loader import ModelHolder
from coach.interview.prompts import load_personas, load_scenarios
from coach.models.catalog import list_models
from coach.store import Store
from coach.ui.bench_tab import BenchTab
from coach.ui.common import BROWSER_JS, Ctx, guard, guard_stream, streaming
from coach.ui.debrief_tab import DebriefTab
from coach.ui.history_tab import HistoryTab
from coach.ui.models_tab import ModelsTab
from coach.ui.panel_tab import PanelTab
from coach.ui.plan_tab import PlanTab
from coach.ui.voice_box import HUSH_JS, PLAYER_JS

log = logging.getLogger("coach.ui")
# System fonts only: the default theme would fetch web fonts from a CDN.
THEME = gr.themes.Soft(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CONCURRENCY = 32  # handlers at once: the local model's lock (or the model server's queue) orders the turns
CSS = """
.typing {opacity: .6; animation: typing 1.2s ease-in-out infinite}
@keyframes typing {0%, 100% {opacity: .25} 50% {opacity: .9}}
#title h1 {font-size: 1.35em; margin: 0}
#model-banner {font-size: .8em; line-height: 1.3}
#coach-feedback:not(:has(h4)) {display: none}
#coach-feedback {max-height: max(190px, calc(100vh - 520px)); overflow-y: auto; font-size: .9em}
#clock-row {gap: 8px; align-items: baseline}
#status {text-align: right}
#timer .warn {color: #b3261e; font-weight: 600}
#debrief-details td, #debrief-details th {word-break: normal; overflow-wrap: normal}
#debrief-details td:first-child, #debrief-details th:first-child, #debrief-details td:nth-child(4) {
  white-space: nowrap}
#debrief-details td:nth-child(2) {min-width: 7em}
#panel-chat button[aria-label="Clear"], #panel-chat button[title="Clear"] {display: none}
#brief {font-size: .92em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis}
#brief p {margin: 0; overflow: hidden; text-overflow: ellipsis}
#resume-offer {max-width: 36em}
"""


def build_demo(settings: Settings, *, backend: LlamaBackend | None = None, grader: Grader | None = None,
               store: Store | None = None) -> gr.Blocks:
    store = store or Store.open_default(settings.home)  # a damaged database is said before minutes of loading
    grader = grader or Grader.from_settings(settings)
    personas, banks = load_personas(), load_all()
    ctx = Ctx(settings=settings, models=ModelHolder(settings, backend), grader=grader, store=store,
              history=History(store, grader, personas), personas=personas,
              scenarios=load_scenarios(personas=personas, banks=banks),
              exports=Path(tempfile.mkdtemp(prefix="coach-exports-")))
    catalog = list_models(settings)  # what the pickers list when the page is built; refreshed on each load

    def warm_grader() -> None:  # the grader's model loads in the background so the page is usable at once
        try:
            for b in banks.values():
                grader.warm(b)
        except Exception as exc:  # noqa: BLE001  (only a speed-up; Ctrl-C may tear torch down under it)
            log.info("grader warm-up stopped: %s: %s", type(exc).__name__, exc)

    threading.Thread(target=warm_grader, daemon=True).start()

    with gr.Blocks(title="Interview coach") as demo:
        gr.Markdown("# Interview coach", elem_id="title")
        banner = gr.Markdown(ctx.banner(), elem_id="model-banner")
        with gr.Tabs(elem_id="tabs") as tabs:
            panel = PanelTab(ctx, catalog)
            debrief = DebriefTab(ctx)
            history = HistoryTab(ctx, debrief)
            plan = PlanTab(ctx)
            models = ModelsTab(ctx, catalog)
            bench = BenchTab(ctx, catalog)
        panel.banner, panel.tabs, panel.debrief, history.tabs = banner, tabs, debrief, tabs
        models.pickers = {panel.model: "choices", models.q_src: "names", bench.models: "names",
                          bench.ladder_src: "ladder"}

        def stream(handler: Callable[..., Iterator[dict]]) -> Callable[..., Iterator[dict]]:
            return streaming(handler, panel.chatbot, panel.chat_state, panel.send)

        send_outs = [*panel.outputs, panel.send]
        voice = panel.voice
        panel.start_btn.click(stream(panel.start), [panel.scenario, panel.model, panel.seed, panel.coach_mode,
                                                    panel.quick, panel.iv, panel.armed, voice.speak, panel.practice],
                              [*send_outs, *panel.session_outputs], api_name="start")
        # practice mode: a hint (on the draft so far) and a strong answer (once drafted), beside the answer box
        panel.hint_btn.click(guard(panel.hint), [panel.answer_box, panel.iv], panel.practice_md, api_name="hint")
        panel.strong_btn.click(guard(panel.strong), [panel.answer_box, panel.iv], panel.practice_md,
                               api_name="strong_answer")
        answer_io = ([panel.answer_box, panel.chat_state, panel.iv, panel.coach_mode, voice.heard, voice.speak],
                     [*panel.outputs, panel.answer_box, voice.heard_md, *debrief.outputs, panel.send])
        panel.send.click(stream(panel.answer), *answer_io, api_name="answer").then(
            lambda: "", None, panel.practice_md, api_visibility="private", queue=False)  # the hint was for the last one
        panel.answer_box.submit(stream(panel.answer), *answer_io, api_visibility="private").then(
            lambda: "", None, panel.practice_md, api_visibility="private", queue=False)
        # public, so a script typing an answer (bench/cohort_bench.py) drives type-ahead as a browser does
        panel.answer_box.change(guard(panel.draft), [panel.answer_box, panel.iv], None, api_name="draft",
                                show_progress="hidden", trigger_mode="always_last", queue=False)
        # a recording (stopped, or a file dropped in) becomes the editable text of the answer
        heard_io = ([voice.audio_in, voice.keep, panel.iv], [panel.answer_box, voice.heard, voice.heard_md, voice.audio_in])
        voice.audio_in.stop_recording(guard(voice.transcribe), *heard_io, api_name="transcribe_recording",
                                      api_visibility="private")
        voice.audio_in.upload(guard(voice.transcribe), *heard_io, api_name="transcribe")
        voice.audio_in.start_recording(None, None, None, js=HUSH_JS)  # the candidate speaks: the panel stops
        voice.speech.change(None, voice.speech, None, js=PLAYER_JS)
        voice.speak.change(None, None, None, js=HUSH_JS)
        gr.Timer(1.0).tick(guard(panel.tick), panel.iv, panel.clock, api_visibility="private", show_progress="hidden")

        history_outs = [history.table, history.pick, history.trend]
        history.refresh.click(guard(history.sessions), None, history_outs, api_name="sessions")
        history.pick.input(guard(history.questions), history.pick, history.pick_turn, api_visibility="private")
        resume_outs = [*panel.outputs, tabs, *debrief.outputs, panel.send, *panel.session_outputs]
        history.resume_btn.click(stream(panel.resume), [history.pick, panel.chat_state, history.take_over, voice.speak],
                                 resume_outs, api_name="resume")
        panel.offer_btn.click(stream(panel.resume_offer), [panel.offer_sid, panel.chat_state, voice.speak], resume_outs,
                              api_visibility="private")
        for btn, act, api in ((history.abandon_btn, history.abandon, "session_abandon"),
                              (history.delete_btn, history.delete, "session_delete")):
            btn.click(guard(act), history.pick, history.done_md, api_name=api,
                      js=history.CONFIRM_JS if btn is history.delete_btn else None).then(
                guard(history.sessions), None, history_outs, api_visibility="private")
        for i, button in enumerate(debrief.retry_btns):  # "retry this question": History's retry, that question
            button.click(guard(history.retry_from(i)), debrief.gaps, [tabs, history.pick, history.pick_turn,
                                                                      history.retry_box, history.retry_md],
                         api_visibility="private")
        history.show_btn.click(guard(history.show_debrief), history.pick, [*debrief.outputs, tabs],
                               api_name="session_debrief")
        history.retry_btn.click(guard(history.retry), [history.pick, history.pick_turn, history.retry_box],
                                history.retry_md, api_name="retry").then(guard(history.sessions), None, history_outs,
                                                                         api_visibility="private")

        plan.refresh.click(guard(plan.show), None, plan.outputs, api_name="plan")
        plan.drill_btn.click(stream(panel.drill(plan.drill_questions)),
                             [panel.model, panel.seed, panel.iv, panel.armed, voice.speak, plan.practice],
                             [*send_outs, *panel.session_outputs, tabs], api_name="drill")
        plan.tab.select(guard(plan.show), None, plan.outputs, api_visibility="private")  # current when opened

        pickers = [models.table, *models.pickers]
        models.doctor_btn.click(guard(models.doctor), None, models.doctor_md, api_name="doctor")
        for button, handler, inputs, name in ((models.pull_btn, models.do_pull, models.pull_name, "models_pull"),
                                              (models.add_btn, models.do_add, [models.add_path, models.add_name],
                                               "models_add"),
                                              (models.q_btn, models.do_quantize, [models.q_src, models.q_type],
                                               "models_quantize")):
            button.click(guard(handler), inputs, models.status, api_name=name).then(
                guard(models.refresh), None, pickers).then(guard(voice.describe), None, voice.info,
                                                           api_visibility="private")
        bench.run_btn.click(guard_stream(bench.run), [bench.models, bench.ladder_src, bench.rungs, bench.reps],
                            bench.outputs, api_name="bench")
        bench.cancel_btn.click(guard(bench.cancel), None, bench.recommendation, api_name="bench_cancel", queue=False)
        settings_in: list[Any] = [panel.scenario, panel.seed, panel.coach_mode, panel.quick, voice.speak]
        for control in settings_in:
            control.change(guard(panel.remember), settings_in, panel.saved, api_visibility="private", queue=False,
                           show_progress="hidden")
        demo.load(guard(panel.restore), panel.saved, settings_in, api_visibility="private")
        demo.load(guard(panel.offer), None, [panel.offer_btn, panel.offer_sid], js=BROWSER_JS, api_visibility="private")
        demo.load(guard(history.sessions), None, history_outs, api_visibility="private")
        demo.load(guard(plan.show), None, plan.outputs, api_visibility="private")
        demo.load(guard(models.refresh), None, pickers, api_visibility="private")
        demo.load(guard(voice.describe), None, voice.info, api_visibility="private")
    return demo


def launch(settings: Settings, demo: gr.Blocks | None = None, *, block: bool = True) -> gr.Blocks:
    """Serve the page: on 127.0.0.1 with no sign-in, or beyond it only with sign-in (`coach.auth`)."""
    auth = launch_auth(settings)  # refused before the page is built when the coach would be exposed
    # uvicorn would take the client's address from X-Forwarded-For sent by any 127.0.0.1 peer (or by anyone,
    # with FORWARDED_ALLOW_IPS=*): the coach reads that header itself, from --trusted-proxy peers only
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    t0 = time.perf_counter()
    demo = demo or build_demo(settings)
    print(f"coach: open http://{settings.host}:{settings.port} (built in {time.perf_counter() - t0:.1f} s"
          + (", sign-in required)" if auth else ")"), flush=True)
    # one queue worker per candidate typing at once; each waits only for the model, which takes turns
    demo.queue(default_concurrency_limit=CONCURRENCY).launch(
        server_name=settings.host, server_port=settings.port, share=False, inbrowser=False, theme=THEME, css=CSS,
        footer_links=[], show_error=True, prevent_thread_lock=not block, quiet=True, **auth,
    )
    return demo
