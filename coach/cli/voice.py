"""`coach voice` (list, pull, rm, transcribe, say) and the spoken panel at a terminal (`rehearse --voice`):
answers recorded with the first recorder found (arecord, sox's rec, parecord) or read from a WAV path typed
at the prompt; questions played with the first player found (paplay, aplay, afplay, play)."""

from __future__ import annotations

import argparse
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from coach.config import Settings
from coach.errors import CoachError
from coach.grading.answer import MAX_CHARS
from coach.textfiles import read_answer, read_line

RECORDERS = (["arecord", "-q", "-f", "S16_LE", "-r", "16000", "-c", "1"],
             ["rec", "-q", "-r", "16000", "-c", "1", "-b", "16"],
             ["parecord", "--channels=1", "--rate=16000", "--file-format=wav"])
PLAYERS = (["paplay"], ["aplay", "-q"], ["afplay"], ["play", "-q"])


def cmd_voice(args: argparse.Namespace, settings: Settings) -> int:
    from coach.voice import catalog

    cmd = args.voice_command
    if cmd == "list":
        kind, path = catalog.recognizer_choice(settings, settings.recognizer)
        print(f"{'NAME':28} {'KIND':10} {'RAM':>6}  {'STATE':9} TITLE")
        print(f"{catalog.EMBEDDED:28} {'recognizer':10} {'80MB':>6}  {'embedded':9} PocketSphinx US English "
              "(in its wheel)")
        cat = catalog.load()
        for kind_name, items in (("recognizer", cat.recognizers), ("voice", cat.voices)):
            for m in items:
                state = "pulled" if catalog.installed(settings, m.name) else "-"
                print(f"{m.name:28} {kind_name:10} {str(m.ram_mb) + 'MB':>6}  {state:9} {m.title}")
        print(f"\nhears answers: {path.name if path else 'pocketsphinx'}; speaks: each panelist's piper voice "
              "when pulled, else espeak-ng" + ("" if shutil.which("espeak-ng") else " (not installed)"))
        return 0
    if cmd == "pull":
        path = catalog.pull(args.name, settings, progress=not args.quiet)
        print(f"ready: {path}")
        return 0
    if cmd == "rm":
        gone = catalog.remove(args.name, settings)
        print(f"removed {len(gone)} file(s) of {args.name}" if gone else f"{args.name} is not pulled")
        return 0 if gone else 2
    if cmd == "transcribe":
        from coach.grading.delivery import measure
        from coach.voice.service import Voice

        heard = Voice(settings, settings.recognizer).hear(args.file)
        print(heard.text)
        print(f"[{heard.recognizer}: {heard.audio_s:.1f} s of audio in {heard.elapsed_s:.2f} s, real-time factor "
              f"{heard.rtf:.2f}]\n[{measure(heard, args.time_box).summary()}]", file=sys.stderr)
        return 0
    # say
    from coach.interview.prompts import load_personas
    from coach.voice.audio import to_wav
    from coach.voice.service import Voice, spec_of

    personas = load_personas()
    if args.panelist not in personas:
        raise CoachError(f"unknown panelist {args.panelist!r}; choose one of: {', '.join(personas)}")
    v, p = Voice(settings), personas[args.panelist]
    samples = v.synth_for(spec_of(p)).say(args.text, spec_of(p))
    args.out.write_bytes(to_wav(samples))
    print(f"{args.out}: {len(samples) / 16000:.1f} s, {v.synth_name(p)}")
    return 0


class Terminal:
    """Voice at a terminal for `rehearse --voice`: plays clips in order on a thread, records on demand."""

    def __init__(self, settings: Settings) -> None:
        from coach.voice.service import Voice

        self.voice = Voice(settings, settings.recognizer)
        self.player = next((p for p in PLAYERS if shutil.which(p[0])), None)
        self.recorder = next((r for r in RECORDERS if shutil.which(r[0])), None)
        self._clips: queue.Queue[bytes | None] = queue.Queue()
        self._tmp = Path(tempfile.mkdtemp(prefix="coach-voice-"))
        threading.Thread(target=self._play, daemon=True).start()
        print(f"[voice: answers heard by {self.voice.recognizer_name()}; "
              + (f"questions played with {self.player[0]}" if self.player else
                 "no audio player found (paplay, aplay, afplay, play): questions are shown, not played")
              + (f"; Enter records with {self.recorder[0]}]" if self.recorder else
                 "; no recorder found (arecord, rec, parecord): type a WAV's path to answer aloud]"), flush=True)

    def _play(self) -> None:
        n = 0
        while (wav := self._clips.get()) is not None:
            if self.player is None:
                continue
            n += 1
            f = self._tmp / f"q{n}.wav"
            f.write_bytes(wav)
            subprocess.run([*self.player, str(f)], capture_output=True)
            f.unlink(missing_ok=True)

    def say(self, clip_wav: bytes) -> None:
        self._clips.put(clip_wav)

    def record(self) -> Path | None:
        if self.recorder is None:
            print("[no recorder found: install alsa-utils (arecord) or sox, or type a WAV's path]", flush=True)
            return None
        out = self._tmp / "answer.wav"
        proc = subprocess.Popen([*self.recorder, str(out)], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            read_line("[recording… press Enter to stop]", limit=MAX_CHARS)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        return out if out.is_file() and out.stat().st_size > 44 else None

    def ask(self, iv, persona, chunks):  # noqa: ANN001, ANN201
        """Print and speak one question as it streams: each sentence is queued for the player when whole."""
        from coach.voice.audio import to_wav

        speaker = self.voice.speaker(persona, (iv.last_timings or {}).get("gen_tokens_per_s"))
        # the panel's own error (a dropped server) goes up to the session loop; the voice's stays here
        for chunk, made in speaker.through(chunks, lambda: iv.current.text if iv.current else None):
            print(chunk, end="", flush=True)
            for clip in made:
                self.say(to_wav(clip.samples))
        if speaker.error is not None:
            print(f"\n[speech stopped: {speaker.error}]", flush=True)

    def answer(self, iv, keep: bool):  # noqa: ANN001, ANN201
        """(text, its voice delivery or None): Enter records, a WAV path is heard, anything else is typed
        (more lines until an empty one). A recording that cannot be read asks again; nothing is lost."""
        from coach.voice.service import still_spoken, time_box_of

        while True:
            first = read_line("you (Enter records, or a WAV's path, or type)> ", limit=MAX_CHARS).strip()
            given = Path(first).expanduser() if first and Path(first).expanduser().is_file() else None
            path = self.record() if not first else given
            if path is None:
                return read_answer(limit=MAX_CHARS, first=first).strip(), None
            try:
                if keep:  # kept first: a recording that cannot be transcribed is not lost
                    print(f"[kept as {self.voice.keep(path, iv.session_id, iv.current.idx if iv.current else 0)}]")
                heard = self.voice.hear(path)
            except CoachError as exc:
                print(f"[could not transcribe: {exc}]", flush=True)
                continue
            finally:
                if given is None:  # our own recording: gone once heard (a file you named is yours)
                    path.unlink(missing_ok=True)
            break
        iv.draft(heard.text)  # the next speakers read it while you check it
        print(f"[heard by {heard.recognizer} in {heard.elapsed_s:.1f} s]\n{heard.text}", flush=True)
        fix = read_line("[Enter sends it as heard, or type the corrected answer]> ", limit=MAX_CHARS).strip()
        text = read_answer(limit=MAX_CHARS, first=fix).strip() if fix else heard.text
        voice = self.voice.delivery(heard, time_box_of(iv)) if still_spoken(text, heard) else None
        if voice is not None:
            print(f"[delivery: {voice.summary()}]", flush=True)
        return text, voice

    def close(self) -> None:
        self._clips.put(None)
        shutil.rmtree(self._tmp, ignore_errors=True)
