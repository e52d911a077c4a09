"""The Panel tab: pick a scenario and a model, start, answer; the panel streams, the clock runs, coach mode
shows each grade. Each browser tab keeps its own `Interview` in a State; the Interview does the rest."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator, Iterator
from typing import Any

import gradio as gr

from coach.auth import owner_of
from coach.errors import CoachError, ServerUnavailable
from coach.models import ModelRow
from coach.session import Interview
from coach.ui.common import Ctx, chat_of, panelist_message
from coach.ui.debrief_tab import DebriefTab
from coach.ui.voice_box import VoiceBox
from coach.views import model_choices

log = logging.getLogger("coach.ui")


class PanelTab:
    def __init__(self, ctx: Ctx, catalog: list[ModelRow]) -> None:
        self.ctx = ctx
        self.titles = {s.title: s.id for s in ctx.scenarios.values()}
        with gr.Tab("Panel", id="panel"):
            with gr.Row():
                self.scenario = gr.Dropdown(list(self.titles), value=ctx.scenarios["pmm_final_panel"].title,
                                            label="Scenario", elem_id="scenario")
                fixed = ctx.shared or ctx.models.remote  # one model for everyone: chosen by whoever runs it
                self.model = gr.Dropdown(model_choices(catalog), value=ctx.models.ref.name, label="Model",
                                         elem_id="model", allow_custom_value=True, scale=2, interactive=not fixed)
                self.seed = gr.Number(value=ctx.settings.seed, precision=0, label="Seed", elem_id="seed")
                with gr.Column(min_width=200):
                    self.coach_mode = gr.Checkbox(False, label="Coach mode (show scores after each answer)",
                                                  elem_id="coach-mode")
                    self.quick = gr.Checkbox(False, label="Quick round (15 minutes)", elem_id="quick")
            self.start_btn = gr.Button("Start the panel", variant="primary", elem_id="start")
            self.chatbot = gr.Chatbot(elem_id="panel-chat", height=460, buttons=["copy"], label="The panel",
                                      show_label=False)
            self.coach_md = gr.Markdown("", elem_id="coach-feedback")  # beside the transcript, above the box
            self.clock = gr.Markdown("", elem_id="timer")
            self.status = gr.Markdown("", elem_id="status")
            self.voice = VoiceBox(ctx)  # a recording becomes the text of the box below it
            self.answer_box = gr.Textbox(lines=4, placeholder="Your answer…", label="Your answer", elem_id="answer")
            self.voice.answer_box = self.answer_box
            self.send = gr.Button("Send answer", elem_id="send")
            # inside the tab: a component directly under gr.Tabs would be drawn as an extra tab
            self.iv = gr.State(None)
            self.chat_state = gr.State([])  # the transcript, so API clients need not send it back
            self.armed = gr.State(False)  # Start was pressed once over a session in progress
            # the scenario, seed, coach mode and speech survive a reload (kept in this browser's local storage)
            self.saved = gr.BrowserState({}, storage_key="coach-panel-settings")
        # set by build_demo: the page's model banner, its tabs, and the Debrief tab a finished panel fills
        self.banner: Any = None
        self.tabs: Any = None
        self.debrief: DebriefTab

    @property
    def outputs(self) -> list[Any]:
        """What every panel update may change (the API's positional outputs, in this order)."""
        return [self.chatbot, self.chat_state, self.iv, self.status, self.coach_md, self.banner, self.armed,
                self.voice.speech, self.voice.heard]

    def _update(self, chat: list[dict], iv: Interview | None, status: str = "", coach: str = "") -> dict[Any, Any]:
        return {self.chatbot: chat, self.iv: iv, self.status: status, self.coach_md: coach,
                self.banner: self.ctx.banner(), self.armed: False}

    # ---------------------------------------------------------------- handlers

    def remember(self, title: str, seed: float | None, coach_mode: bool, quick: bool = False,
                 speak: bool = False) -> dict[str, Any]:
        return {"scenario": title, "seed": seed, "coach": bool(coach_mode), "quick": bool(quick), "speak": bool(speak)}

    def restore(self, saved: dict[str, Any] | None) -> dict[Any, Any]:
        """The settings this browser used last (a reload or a new tab keeps them)."""
        saved = saved if isinstance(saved, dict) else {}
        # every output is named (an empty dict would read as one value): unchanged where nothing was saved
        return {self.scenario: saved["scenario"] if saved.get("scenario") in self.titles else gr.update(),
                self.seed: saved["seed"] if isinstance(saved.get("seed"), (int, float)) else gr.update(),
                self.coach_mode: bool(saved["coach"]) if "coach" in saved else gr.update(),
                self.quick: bool(saved["quick"]) if "quick" in saved else gr.update(),
                self.voice.speak: bool(saved["speak"]) if "speak" in saved else gr.update()}

    def start(self, title: str, model: str, seed: float | None, coach_mode: bool, quick: bool = False,
              live: Interview | None = None, armed: bool = False, speak: bool = False,
              request: gr.Request | None = None) -> Iterator[dict[Any, Any]]:
        """A new panel. While this tab has a session in progress, the first press only asks to press again
        (the session in progress is saved and stays in History); the second starts the new one."""
        ctx = self.ctx
        if live is not None and not live.done and live.turn_count and not armed:
            yield {self.status: "**A session is in progress.** It is saved: press **Start the panel** again to "
                                "begin a new one, and resume this one later from History.", self.armed: True}
            return
        if live is not None and not live.done:
            live.stop_background()
            live.release()  # the old session stays resumable from History
        try:
            if not ctx.shared:  # a signed-in user never swaps the model under everyone else
                ctx.models.use(model)
            iv = Interview.start(self.titles.get(title, "pmm_final_panel"), backend=ctx.models.backend,
                                 grader=ctx.grader, store=ctx.store,
                                 seed=int(seed) if seed is not None else ctx.settings.seed, model=ctx.models.ref.name,
                                 quick=bool(quick), cache_dir=ctx.settings.kv_cache_dir, owner=owner_of(request))
            iv.begin()  # every persona card, in the background
        except CoachError as exc:
            yield self._update([], None, f"**Could not start:** {exc}")
            return
        try:
            yield from self._ask(iv, [], "", speak)
        except ServerUnavailable as exc:  # nothing was stored: Start again once the server is back
            yield self._update([], None, f"**Could not start:** {exc}")

    def _ask(self, iv: Interview, chat: list[dict], coach: str,
             speak: bool = False) -> Generator[dict[Any, Any], None, list[dict]]:
        """Stream the next panelist's words into the transcript (and, with `speak`, their voice, sentence by
        sentence); returns the transcript with them."""
        speaker = iv.next_speaker()
        chat = [*chat, panelist_message(speaker, "", typing=True)]  # shown at once; sentences follow whole
        yield self._update(chat, iv, coach=coach)
        text = ""
        chunks: Iterator[tuple[str, str | None]] = (
            self.voice.spoken(speaker, iv.ask(), f"{iv.session_id}/{uuid.uuid4().hex[:8]}",
                              lambda: iv.current.text if iv.current else None,
                              (iv.last_timings or {}).get("gen_tokens_per_s"))
            if speak else ((c, None) for c in iv.ask()))
        for chunk, clips in chunks:
            text += chunk
            chat[-1] = panelist_message(speaker, text, typing=True)
            yield {**self._update(chat, iv, coach=coach), **({self.voice.speech: clips} if clips else {})}
        chat[-1] = panelist_message(speaker, iv.current.text if iv.current else text.strip())
        iv.draft("")  # the next speakers start reading while the candidate types
        stats = iv.turn_stats()
        yield self._update(chat, iv, f"<small>{stats}</small>" if stats else "", coach=coach)
        return chat

    def draft(self, text: str, iv: Interview | None) -> None:
        if iv is not None:
            iv.draft(text or "")

    def tick(self, iv: Interview | None) -> str:
        clock = iv.clock() if iv is not None else None
        if clock is None:
            return ""
        note = " — time is up for this segment" if clock.over else " — nearly out of time, wrap up" if clock.warn else ""
        left = {0: "last question of this segment", 1: "1 more question"}.get(clock.questions_left,
                                                                              f"{clock.questions_left} more questions")
        return f"Segment time **{clock}**{note} · {left}"

    def answer(self, text: str, chat: list[dict], iv: Interview | None, coach_mode: bool,
               heard: dict | None = None, speak: bool = False) -> Iterator[dict[Any, Any]]:
        """Grade and store the answer, then ask the next question. `heard`: the transcript of the recording
        the answer came from (its delivery is then measured from the voice)."""
        if iv is not None and iv.current is None and not iv.done and iv.turn_count:
            yield from self._ask_again(iv, chat, speak)  # the last question never arrived (the server dropped it)
            return
        if iv is None or iv.current is None:
            yield self._update(chat, iv, "Start a panel first.")
            return
        if not (text or "").strip():
            yield self._update(chat, iv, "Type an answer first (an empty answer scores 1).")
            return
        try:
            voice = self.voice.delivery_of(text, heard, iv)
            grade = iv.answer(text, voice=voice)
        except CoachError as exc:  # e.g. another tab took the session over: the answer stays in the box
            yield self._update(chat, iv, f"**Not saved:** {exc}")
            return
        chat = [*chat, {"role": "user", "content": text}]
        coach = ""
        if coach_mode and grade is not None:
            coach = (f"**Score {grade.summary()}**\n\n**Next time:** {grade.improvement}\n\n"
                     f"**Delivery** {self._delivery(grade, voice)}\n\n"
                     f"**Closest strong answer** ({grade.nearest_good[1]:.2f}): {grade.nearest_good[0]}"
                     + "".join(f"\n\n*Note: {n}*" for n in grade.notes))
        yield {**self._update(chat, iv, coach=coach), self.answer_box: "", self.voice.heard: None,
               self.voice.heard_md: ""}
        try:
            chat = yield from self._ask(iv, chat, coach, speak)
        except CoachError as exc:  # the answer is already saved; say why the panel stopped
            yield self._update(chat, iv, self._stopped(exc), coach)
            return
        if iv.done:
            yield from self._finished(iv, chat, coach)

    @staticmethod
    def _delivery(grade: Any, voice: Any) -> str:
        if voice is not None:
            tip = voice.advice()
            return f"(from your voice, heard by {voice.recognizer}): {voice.summary()}" + (f". {tip}" if tip else "")
        d = grade.delivery
        return (f"(typed, estimated at 150 words a minute): {d.words} words, about {d.spoken_s} s of a "
                f"{d.time_box_s} s time box")

    @staticmethod
    def _stopped(exc: CoachError) -> str:
        again = " Press **Send answer** to ask again," if isinstance(exc, ServerUnavailable) else ""
        return f"**The panel could not go on:** {exc}.{again} Your answers are saved (History → Resume)."

    def _ask_again(self, iv: Interview, chat: list[dict], speak: bool = False) -> Iterator[dict[Any, Any]]:
        try:
            chat = yield from self._ask(iv, chat, "", speak)
        except CoachError as exc:
            yield self._update(chat, iv, self._stopped(exc))
            return
        if iv.done:
            yield from self._finished(iv, chat, "")

    def _finished(self, iv: Interview, chat: list[dict], coach: str) -> Iterator[dict[Any, Any]]:
        """The grader's debrief at once, then the chair's summary above it as it streams."""
        done = "The panel has finished — see the **Debrief** tab."
        shown = self.debrief.show(iv.debrief(), iv.session_id, iv.owner)
        yield {**self._update(chat, iv, done, coach), **shown}
        note, md = "", shown[self.debrief.md]
        try:
            for chunk in iv.committee_note():  # the record was read turn by turn during the session
                note += chunk
                yield {**self._update(chat, iv, done, coach), self.debrief.md: f"### The committee chair\n\n"
                                                                                 f"{note.strip()}\n\n{md}"}
        except CoachError as exc:
            log.info("no committee summary: %s", exc)
        if note:  # the whole tab once more: the browser can drop an update to a tab it has not drawn yet (the chart)
            yield {**self._update(chat, iv, done, coach), **shown,
                   self.debrief.md: f"### The committee chair\n\n{note.strip()}\n\n{md}"}

    def resume(self, sid: str, chat: list[dict], take_over: bool, speak: bool = False,
               request: gr.Request | None = None) -> Iterator[dict[Any, Any]]:
        tabs = self.tabs
        ctx = self.ctx
        if not sid:
            yield self._update(chat, None, "Pick a session first.")
            return
        try:
            iv = Interview.resume(sid, backend=ctx.models.backend, grader=ctx.grader, store=ctx.store,
                                  take_over=bool(take_over), owner=owner_of(request))
        except CoachError as exc:  # said where the user is (History) and in the panel's status line
            gr.Warning(f"Could not resume: {exc}", duration=None)
            yield self._update(chat, None, f"**Could not resume:** {exc}")
            return
        history = chat_of(iv.transcript(), ctx.personas)
        if iv.done:  # nothing to go on with: open its debrief
            yield {**self._update(history, iv, "That session is finished: its debrief is in the **Debrief** tab."),
                   **self.debrief.show(iv.debrief(), iv.session_id, iv.owner), tabs: gr.update(selected="debrief")}
            return
        try:
            for out in self._ask(iv, history, "", speak):
                yield {**out, tabs: gr.update(selected="panel")}
        except CoachError as exc:
            yield {**self._update(history, iv, self._stopped(exc)), tabs: gr.update(selected="panel")}

