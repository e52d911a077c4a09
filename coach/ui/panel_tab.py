"""The Panel tab: pick a scenario and a model, start, answer; the panel streams, the clock runs, coach mode
shows each grade. Each browser tab keeps its own `Interview` in a State; the Interview does the rest."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any

import gradio as gr

from coach.auth import owner_of
from coach.errors import CoachError, ServerUnavailable
from coach.interview.history import title_of
from coach.interview.session import Interview
from coach.models.catalog import ModelRow
from coach.report.views import clip, model_choices, segment_note
from coach.ui.common import Ctx, browser_holder, chat_of, panelist_message
from coach.ui.debrief_tab import DebriefTab
from coach.ui.voice_box import VoiceBox

log = logging.getLogger("coach.ui")
# The transcript takes what the window leaves: the latest question (at its foot), the clock, the voice
# box and the answer box with Send stay in view at 1280x720 without scrolling.
CHAT_HEIGHT = "max(190px, calc(100vh - 520px))"


def waited(seconds: float, pressed: str) -> str:
    """The status line: how long the candidate waited for the panel's first words, from their click."""
    return f"first words {seconds:.1f} s after you pressed {pressed}"


def handover(iv: Interview, panelist: str, chat: list[dict]) -> str:
    """The mark in the transcript when the next interviewer takes over (who now speaks, and where the whole
    panel stands), or "" while the same one goes on."""
    spoke = [t["panelist"] for t in iv.store.turns(iv.session_id)] if iv.turn_count else []
    if spoke and spoke[-1] == panelist or iv.current is not None:
        return ""
    p = iv.personas[panelist]
    n, of = iv.progress()
    if n > of:  # the segments are over: the candidate's questions, then the goodbye
        return ""
    if not spoke:
        return f"*{p.mark} {p.name} ({p.role.lower()}) opens the panel · interviewer 1 of {of}*"
    return f"*— {p.mark} {p.name} ({p.role.lower()}) takes over · interviewer {n} of {of} —*"


class PanelTab:
    def __init__(self, ctx: Ctx, catalog: list[ModelRow]) -> None:
        self.ctx = ctx
        self.titles = {s.title: s.id for s in ctx.scenarios.values()}
        with gr.Tab("Panel", id="panel"):
            # this browser's unfinished session, offered on load (filled by `offer`)
            self.offer_btn = gr.Button("", visible=False, variant="primary", elem_id="resume-offer")
            self.offer_sid = gr.State("")
            with gr.Accordion("Settings", open=True, elem_id="settings") as self.settings_box:
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
                        self.practice = gr.Checkbox(False, label="Practice mode (a hint and a strong answer on "
                                                                 "demand, the score after each answer)",
                                                    elem_id="practice-mode")
                self.start_btn = gr.Button("Start the panel", variant="primary", elem_id="start")
            self.brief = gr.Markdown("", elem_id="brief")  # the scenario in one line, once it starts
            with gr.Row(equal_height=False):
                # the latest question sits at the chat's foot, right above the clock and the answer box
                self.chatbot = gr.Chatbot(elem_id="panel-chat", height=CHAT_HEIGHT, buttons=["copy"],
                                          label="The panel", show_label=False, scale=3)
                # beside the transcript; hidden by the page's CSS while empty (coach mode off)
                self.coach_md = gr.Markdown("", elem_id="coach-feedback")
            with gr.Row(elem_id="clock-row"):
                self.clock = gr.Markdown("", elem_id="timer")
                self.status = gr.Markdown("", elem_id="status")
            self.voice = VoiceBox(ctx)  # a recording becomes the text of the box below it
            with gr.Row(equal_height=True, elem_id="answer-row"):
                self.answer_box = gr.Textbox(lines=3, placeholder="Your answer…", label="Your answer",
                                             elem_id="answer", scale=6)
                self.send = gr.Button("Send answer", elem_id="send", variant="primary", scale=1, min_width=140)
            with gr.Row(visible=False, elem_id="practice-row") as self.practice_row:  # practice mode only
                self.hint_btn = gr.Button("Hint", elem_id="hint", size="sm")
                self.strong_btn = gr.Button("Show a strong answer", elem_id="strong-answer", size="sm")
            self.practice_md = gr.Markdown("", elem_id="practice-help")
            self.voice.answer_box = self.answer_box
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

    @property
    def session_outputs(self) -> list[Any]:
        """What starting or resuming a session also sets: the settings (folded away, and a resumed session's
        own), the scenario's one-line brief, and the resume offer (gone)."""
        return [self.settings_box, self.brief, self.scenario, self.seed, self.coach_mode, self.quick, self.offer_btn,
                self.practice, self.practice_row, self.practice_md]

    def _update(self, chat: list[dict], iv: Interview | None, status: str = "", coach: str = "") -> dict[Any, Any]:
        return {self.chatbot: chat, self.iv: iv, self.status: status, self.coach_md: coach,
                self.banner: self.ctx.banner(), self.armed: False}

    def _session(self, iv: Interview) -> dict[Any, Any]:
        """The page set for `iv`: settings folded and showing its own scenario, seed, coach mode and Quick
        round; its brief in one line."""
        sc = iv.scenario
        who = ", ".join(f"{p.mark} {p.name} ({p.role.lower()})" for k, p in iv.personas.items()
                        if any(s.panelist == k for s in sc.segments))
        brief = f"**{sc.title}** · {sc.summary} · {who}" + (" · Quick round" if iv.quick else "")
        return {self.settings_box: gr.Accordion(open=False), self.brief: brief,
                self.scenario: sc.title if sc.title in self.titles else gr.update(),  # a drill is no scenario
                self.seed: iv.seed, self.coach_mode: bool(iv.options.get("coach", False)), self.quick: iv.quick,
                self.offer_btn: gr.update(visible=False), self.practice: iv.practice,
                self.practice_row: gr.update(visible=iv.practice), self.practice_md: ""}

    def offer(self, request: gr.Request | None = None) -> dict[Any, Any]:
        """On load: this browser's unfinished session, one click away ("Resume your PMM final panel (4
        answers, 08:36)")."""
        holder = browser_holder(request)
        sids = self.ctx.store.held_by(holder, owner_of(request) if self.ctx.shared else None) if holder else []
        rows = {r["id"]: r for r in self.ctx.store.sessions(owner_of(request) if self.ctx.shared else None)}
        row = next((rows[s] for s in sids if s in rows), None)
        if row is None:
            return {self.offer_btn: gr.update(visible=False), self.offer_sid: ""}
        title = title_of(row)
        n = row["answered"]
        when = time.strftime("%H:%M", time.localtime(row["updated"]))
        label = f"Resume your {title} ({n} answer{'s' if n != 1 else ''}, {when})"
        return {self.offer_btn: gr.update(value=label, visible=True), self.offer_sid: row["id"]}

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
              live: Interview | None = None, armed: bool = False, speak: bool = False, practice: bool = False,
              request: gr.Request | None = None) -> Iterator[dict[Any, Any]]:
        """A new panel. While this tab has a session in progress, the first press only asks to press again
        (the session in progress is saved and stays in History); the second starts the new one."""
        ctx = self.ctx

        def make() -> Interview:
            return Interview.start(self.titles.get(title, "pmm_final_panel"), backend=ctx.models.backend,
                                   grader=ctx.grader, store=ctx.store,
                                   seed=int(seed) if seed is not None else ctx.settings.seed, model=ctx.models.ref.name,
                                   quick=bool(quick), cache_dir=ctx.settings.kv_cache_dir, owner=owner_of(request),
                                   holder=browser_holder(request), options=_options(coach_mode, practice))

        yield from self._launch(make, model, live, armed, speak)

    def drill(self, questions: Any) -> Any:
        """The Plan tab's drill: its due questions, weakest first, as a panel in this tab (which opens)."""

        def go(model: str, seed: float | None, live: Interview | None = None, armed: bool = False,
               speak: bool = False, practice: bool = True, request: gr.Request | None = None,
               ) -> Iterator[dict[Any, Any]]:
            ctx = self.ctx
            ids, note = questions(request)
            if not ids:
                yield {self.tabs: gr.update(selected="panel"),
                       self.status: "**Nothing to drill:** every question you answered is at the bar. Rehearse a round "
                                    "first."}
                return

            def make() -> Interview:
                return Interview.start_built(ids, kind="drill", title=f"Drill · {len(ids)} weak spot"
                                                                      f"{'s' * (len(ids) != 1)}",
                                             backend=ctx.models.backend, grader=ctx.grader, store=ctx.store,
                                             seed=int(seed) if seed is not None else ctx.settings.seed,
                                             model=ctx.models.ref.name, cache_dir=ctx.settings.kv_cache_dir,
                                             owner=owner_of(request), holder=browser_holder(request),
                                             options=_options(True, practice))

            first = True
            for out in self._launch(make, model, live, armed, speak):
                if first and note and self.brief in out:
                    out = {**out, self.brief: f"{out[self.brief]} · {note.strip()}"}
                yield {**out, self.tabs: gr.update(selected="panel")} if first else out
                first = False

        return go

    def hint(self, text: str, iv: Interview | None) -> str:
        """Practice mode: a hint on the open question (on the draft so far, if any); never a key point's words."""
        return _practice(iv, lambda live: f"**Hint:** {live.hint(text or '')}")

    def strong(self, text: str, iv: Interview | None) -> str:
        """Practice mode: a strong answer to compare with, once the candidate has drafted one."""
        return _practice(iv, lambda live: f"**A strong answer:** {live.strong_answer(text or '')}")

    def _launch(self, make: Any, model: str, live: Interview | None, armed: bool,
                speak: bool) -> Iterator[dict[Any, Any]]:
        since = time.perf_counter()  # the click: what the candidate waits for is measured from here
        ctx = self.ctx
        if live is not None and not live.done and live.turn_count and not armed:
            yield {self.status: "**A session is in progress.** It is saved: press **Start the panel** again to "
                                "begin a new one, and resume this one later from History.", self.armed: True}
            return
        if live is not None and not live.done:
            live.stop_background()
            if live.turn_count:  # left unfinished on purpose: marked, and still resumable from History
                ctx.store.set_status(live.session_id, "abandoned")
            live.release()
        try:
            if not ctx.shared:  # a signed-in user never swaps the model under everyone else
                ctx.models.use(model)
            iv = make()
            iv.begin()  # every persona card, in the background
        except CoachError as exc:
            yield self._update([], None, f"**Could not start:** {exc}")
            return
        ctx.live[iv.session_id] = iv
        first = self._session(iv)
        try:
            for out in self._ask(iv, [], "", speak, since=since, pressed="Start"):
                yield {**out, **first}
                first = {}
        except ServerUnavailable as exc:  # nothing was stored: Start again once the server is back
            yield self._update([], None, f"**Could not start:** {exc}")

    def _ask(self, iv: Interview, chat: list[dict], coach: str, speak: bool = False,
             since: float | None = None, pressed: str = "Send") -> Generator[dict[Any, Any], None, list[dict]]:
        """Stream the next panelist's words into the transcript (and, with `speak`, their voice, sentence by
        sentence); returns the transcript with them. `since`: when the candidate pressed the button that
        asked for them (the status line says how long the first words took from there)."""
        since = since or time.perf_counter()
        speaker = iv.next_speaker()
        takes_over = handover(iv, speaker.id, chat)
        if takes_over:
            chat = [*chat, {"role": "assistant", "content": takes_over}]
        chat = [*chat, panelist_message(speaker, "", typing=True)]  # shown at once; sentences follow whole
        yield self._update(chat, iv, coach=coach)
        text = ""
        first: float | None = None
        chunks: Iterator[tuple[str, str | None]] = (
            self.voice.spoken(speaker, iv.ask(), f"{iv.session_id}/{uuid.uuid4().hex[:8]}",
                              lambda: iv.current.text if iv.current else None,
                              (iv.last_timings or {}).get("gen_tokens_per_s"))
            if speak else ((c, None) for c in iv.ask()))
        for chunk, clips in chunks:
            text += chunk
            if first is None and text.strip():
                first = time.perf_counter() - since
            chat[-1] = panelist_message(speaker, text, typing=True)
            yield {**self._update(chat, iv, coach=coach), **({self.voice.speech: clips} if clips else {})}
        chat[-1] = panelist_message(speaker, iv.current.text if iv.current else text.strip())
        iv.draft("")  # the next speakers start reading while the candidate types
        if first is None:
            first = time.perf_counter() - since
        log.info("turn %d: %s", iv.turn_count, iv.turn_stats())  # the engine's own numbers, for whoever tunes it
        yield self._update(chat, iv, f"<small>{waited(first, pressed)}</small>", coach=coach)
        return chat

    def draft(self, text: str, iv: Interview | None) -> None:
        if iv is not None:
            iv.draft(text or "")

    def tick(self, iv: Interview | None) -> str:
        clock = iv.clock() if iv is not None else None
        if clock is None or iv is None:
            return ""
        n, of = iv.progress()
        line = f"Interviewer {n} of {of} · segment time **{clock}**{segment_note(clock)}"
        return f'<span class="warn">{line}</span>' if clock.warn else line

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
        since = time.perf_counter()
        asked = iv.current
        n = sum(1 for t in iv.store.turns(iv.session_id) if t["grade"]) + 1  # as the debrief numbers it
        try:
            voice = self.voice.delivery_of(text, heard, iv)
            grade = iv.answer(text, voice=voice)
        except CoachError as exc:  # e.g. another tab took the session over: the answer stays in the box
            yield self._update(chat, iv, f"**Not saved:** {exc}")
            return
        chat = [*chat, {"role": "user", "content": text}]
        coach = ""
        if coach_mode and grade is not None:
            who = iv.personas[asked.action.panelist].name
            coach = (f"#### Your answer to question {n} ({who})\n\n"
                     f"*“{clip(asked.action.canonical, 90)}”*\n\n"
                     f"**Score {grade.summary()}**\n\n**Next time:** {grade.improvement}\n\n"
                     f"**Delivery** {self._delivery(grade, voice)}\n\n"
                     f"**A strong answer sounds like:** {grade.nearest_good[0]}"
                     + "".join(f"\n\n*Note: {x}*" for x in grade.notes))
        yield {**self._update(chat, iv, coach=coach), self.answer_box: "", self.voice.heard: None,
               self.voice.heard_md: ""}
        try:
            chat = yield from self._ask(iv, chat, coach, speak, since=since)
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
        """The grader's debrief at once, then the chair's summary above it as it streams (only the summary:
        the rest of the page stays as drawn)."""
        done = "The panel has finished — see the **Debrief** tab."
        shown = self.debrief.show(iv.debrief(), iv.session_id, iv.owner)
        yield {**self._update(chat, iv, done, coach), **shown}
        note = ""
        try:
            for chunk in iv.committee_note():  # the record was read turn by turn during the session
                note += chunk
                yield {self.debrief.chair: f"### The committee chair\n\n{note.strip()}"}
        except CoachError as exc:
            log.info("no committee summary: %s", exc)
        if note:  # the whole tab once more: the browser can drop an update to a tab it has not drawn yet (the chart)
            yield {**self._update(chat, iv, done, coach), **shown,
                   self.debrief.chair: f"### The committee chair\n\n{note.strip()}"}

    def resume_offer(self, sid: str, chat: list[dict], speak: bool = False,
                     request: gr.Request | None = None) -> Iterator[dict[Any, Any]]:
        """The page's "Resume your ..." button: this browser's own session, without a take-over."""
        yield from self.resume(sid, chat, False, speak, request)

    def resume(self, sid: str, chat: list[dict], take_over: bool, speak: bool = False,
               request: gr.Request | None = None) -> Iterator[dict[Any, Any]]:
        """Go on with a stored session, with its own scenario, seed, Quick round and coach mode. This
        browser's own session comes back without asking; another window's needs `take_over`."""
        since = time.perf_counter()
        tabs = self.tabs
        ctx = self.ctx
        if not sid:
            yield self._update(chat, None, "Pick a session first.")
            return
        old = ctx.live.get(sid)
        if old is not None:  # this process still runs it for a page that was closed or reloaded
            old.stop_background()
        try:
            iv = Interview.resume(sid, backend=ctx.models.backend, grader=ctx.grader, store=ctx.store,
                                  take_over=bool(take_over), owner=owner_of(request),
                                  holder=browser_holder(request))
        except CoachError as exc:  # said where the user is (History) and in the panel's status line
            gr.Warning(f"Could not resume: {exc}", duration=None)
            yield self._update(chat, None, f"**Could not resume:** {exc}")
            return
        history = chat_of(iv.transcript(), ctx.personas)
        if iv.done:  # nothing to go on with: open its debrief
            yield {**self._update(history, iv, "That session is finished: its debrief is in the **Debrief** tab."),
                   **self.debrief.show(iv.debrief(), iv.session_id, iv.owner), tabs: gr.update(selected="debrief")}
            return
        ctx.live[iv.session_id] = iv
        first = self._session(iv)
        try:
            for out in self._ask(iv, history, "", speak, since=since, pressed="Resume"):
                yield {**out, **first, tabs: gr.update(selected="panel")}
                first = {}
        except CoachError as exc:
            yield {**self._update(history, iv, self._stopped(exc)), tabs: gr.update(selected="panel")}


def _options(coach_mode: bool, practice: bool) -> dict[str, Any]:
    """What a session stores about how it is run: practice mode shows each answer's score too."""
    return {"coach": bool(coach_mode or practice), "mode": "practice" if practice else "live"}


def _practice(iv: Interview | None, say: Callable[[Interview], str]) -> str:
    """Practice mode's help on the open question, or why there is none (a refusal as a sentence)."""
    if iv is None or iv.current is None:
        return "Start a panel in practice mode first."
    try:
        return say(iv)
    except CoachError as exc:
        return f"**{str(exc)[0].upper()}{str(exc)[1:]}.**"
