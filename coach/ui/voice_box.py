"""Voice on the Panel tab: answer aloud (record in the browser or upload a file), read and edit the
transcript before Send, and hear each panelist's question sentence by sentence as it is written.

Recordings reach the server as files in Gradio's upload cache; each is transcribed on this machine, then
deleted unless "Keep my recordings" is ticked (then it is copied into COACH_HOME/recordings/). Speech goes
to the browser through a hidden text field: a header line per question, then one base64 WAV per line,
appended as sentences are made, so Gradio sends only what is new; a small script plays them in order."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from typing import Any

import gradio as gr

from coach.auth import owner_of
from coach.errors import CoachError
from coach.grading.delivery import VoiceDelivery
from coach.interview.prompts import Persona
from coach.interview.session import Interview
from coach.ui.common import Ctx
from coach.voice.audio import to_wav
from coach.voice.listen import Transcript
from coach.voice.service import Voice, still_spoken, time_box_of

log = logging.getLogger("coach.ui")

PLAYER_JS = """(v) => {
  const s = window.coachSpeech || (window.coachSpeech = {key: "", next: 1, queue: [], busy: false, played: 0});
  const lines = (v || "").split("\\n").filter(Boolean);
  if (!lines.length) return;
  if (lines[0] !== s.key) { s.key = lines[0]; s.next = 1; s.queue = []; if (s.audio) s.audio.pause(); s.busy = false; }
  for (; s.next < lines.length; s.next++) s.queue.push(lines[s.next]);
  const go = () => {
    if (s.busy || !s.queue.length) return;
    s.busy = true;
    const a = new Audio("data:audio/wav;base64," + s.queue.shift());
    s.audio = a; s.played++;
    const done = () => { s.busy = false; go(); };
    a.onended = done; a.onerror = done;
    a.play().catch(done);
  };
  go();
}"""
HUSH_JS = "() => { const s = window.coachSpeech; if (s) { s.queue = []; if (s.audio) s.audio.pause(); s.busy = false; } }"


class VoiceBox:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.voice = Voice(ctx.settings)
        self.answer_box: Any = None  # the Panel tab's answer box (made after this one, below it; set by the tab)
        with gr.Accordion("Voice: answer aloud, hear the panel", open=False, elem_id="voice"):
            with gr.Row():
                self.audio_in = gr.Audio(sources=["microphone", "upload"], type="filepath", format="wav",
                                         label="Your answer, aloud (record, or drop a WAV)", elem_id="voice-in")
                with gr.Column():
                    self.speak = gr.Checkbox(False, label="Speak the panel's questions", elem_id="speak")
                    self.keep = gr.Checkbox(False, label="Keep my recordings (saved in the data folder)",
                                            elem_id="keep-recordings")
                    self.info = gr.Markdown(self.describe(), elem_id="voice-info")
            self.heard_md = gr.Markdown("", elem_id="heard")
        self.heard = gr.State(None)  # the transcript of the recording now in the answer box (a dict)
        self.speech = gr.Textbox("", visible="hidden", elem_id="speech-clips", show_label=False)

    def describe(self) -> str:
        try:
            heard = f"Heard by **{self.voice.recognizer_name()}**"
        except CoachError as exc:
            heard = f"Voice input is off: {exc}"
        return f"<small>{heard}; spoken by {self.voice.speaks(self.ctx.personas)}. All on this machine.</small>"

    # ---------------------------------------------------------------- in

    def transcribe(self, path: str | None, keep: bool, iv: Interview | None,
                   request: gr.Request | None = None) -> dict[Any, Any]:
        """The recording as text in the answer box (editable; what is sent is what is graded)."""
        if not path:
            return {self.heard_md: "", self.heard: None}
        try:
            kept = ""
            if keep and iv is not None:  # kept first: a recording that cannot be transcribed is not lost
                idx = iv.current.idx if iv.current is not None else iv.turn_count
                kept = f" Kept as `{self.voice.keep(path, iv.session_id, idx, owner_of(request))}`."
            heard = self.voice.hear(path)
        except CoachError as exc:
            return {self.heard_md: f"**Could not transcribe:** {exc}", self.heard: None}
        finally:
            _drop(path)
        if not heard.words:
            return {self.heard_md: "**Nothing was heard** in that recording: check the microphone and record "
                                   "again.", self.heard: None, self.audio_in: None}
        box = self.time_box(iv)
        d = self.voice.delivery(heard, box)
        return {self.answer_box: heard.text, self.heard: heard.as_dict(), self.audio_in: None,
                self.heard_md: f"Heard by {heard.recognizer} in {heard.elapsed_s:.1f} s ({heard.audio_s:.0f} s of "
                               f"audio). **Edit it if it misheard you, then Send.**{kept}\n\n*Delivery:* "
                               f"{d.summary()}"}

    time_box = staticmethod(time_box_of)

    def delivery_of(self, text: str, heard: dict | None, iv: Interview) -> VoiceDelivery | None:
        """The voice's delivery when the answer being sent is the recording's transcript (edited or not)."""
        if not heard:
            return None
        t = Transcript.from_dict(heard)
        return self.voice.delivery(t, self.time_box(iv)) if still_spoken(text, t) else None

    # ---------------------------------------------------------------- out

    def spoken(self, persona: Persona, chunks: Iterator[str], key: str, final: Any,
               model_tps: float | None = None) -> Iterator[tuple[str, str]]:
        """Pass the question's chunks through, with the clip field's value after each: (chunk, clips)."""
        # the synthesizer loads on the speaker's worker: a failure is kept in `speaker.error`, the question goes on
        speaker = self.voice.speaker(persona, model_tps)
        clips = [key]
        for chunk, made in speaker.through(chunks, final):
            clips += [_b64(c.samples) for c in made]
            yield chunk, "\n".join(clips)
        if speaker.error is not None:
            log.info("speech stopped: %s", speaker.error)


def _b64(samples: Any) -> str:
    return base64.b64encode(to_wav(samples)).decode()


def _drop(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
