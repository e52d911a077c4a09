"""`Interview`: the one orchestrator the UI, the CLI and the benchmark drive.

One turn: the panel decides the action, the speaker's persona card and thread become messages, the
engine streams the wording (restoring that speaker's KV prefix), a wording that is empty, out of role
or leaks its instructions falls back to the canonical question, and the question is stored. Then the
candidate answers; the grader scores it; the answer, grade and next state are stored in one transaction.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coach.engine import ChatBackend, Message
from coach.errors import CoachError, ServerUnavailable
from coach.grading import hints
from coach.grading.debrief import Debrief
from coach.grading.grader import Grade, Grader, clean_answer, split_sentences
from coach.grading.rubrics import Bank, Question
from coach.interview.custom import custom_parts, options_for, session_parts
from coach.interview.history import Line, debrief_for, transcript
from coach.interview.panel import Action, Clock, Panel, PanelState  # noqa: F401  (Clock: re-exported)
from coach.interview.prompts import Persona, Scenario, scenario_parts
from coach.interview.threads import ANSWERED, COMMITTEE, SUMMARY_REQUEST, CurrentTurn, Hearing
from coach.interview.typeahead import Either, TypeAhead
from coach.store import Store, new_holder, new_session_id
from coach.wording.checks import Judge, Turn
from coach.wording.gate import Note, Voicing, joined

if TYPE_CHECKING:
    from coach.grading.delivery import VoiceDelivery

log = logging.getLogger("coach.interview.session")


class Interview:
    """One rehearsal, and the only thing the UI and the CLI drive: who speaks next, the clock, the
    question, the answer and its grade, type-ahead while the candidate types, the transcript, resume and
    the debrief. Everything is stored as it happens."""

    def __init__(self, *, backend: ChatBackend, grader: Grader, store: Store, scenario: Scenario, bank: Bank,
                 personas: dict[str, Persona], session_id: str, seed: int, state: PanelState,
                 max_tokens: int = 90, cache_dir: Path | None = None, holder: str | None = None,
                 owner: str = "", options: dict[str, Any] | None = None) -> None:
        self.backend, self.grader, self.store = backend, grader, store
        self.owner = owner  # the signed-in user it belongs to ("" without sign-in)
        self.options = dict(options or {})  # how the front end runs it (coach mode): stored, and back on resume
        self.holder = holder or new_holder()  # this window's lease on the session (one writer at a time)
        self._unsaved: tuple[str, int, str] | None = None  # (scenario, seed, model) until the first question
        self.scenario, self.bank, self.personas = scenario, bank, personas
        self._panel = Panel(scenario, bank, personas)  # what happens next; the front ends ask through methods
        self.hearing = Hearing(scenario, bank, personas)
        self.session_id, self.seed, self.state, self.max_tokens = session_id, seed, state, max_tokens
        self.cache_dir = cache_dir  # on-disk prefix cache (evaluated persona cards); None = off
        self.current: CurrentTurn | None = None
        self.asked_at: float | None = None  # when the open question was finished (the clock runs from it)
        self.turn_count = 0  # questions asked
        self.closed = False  # the panel said goodbye; nothing more to ask
        self._typing: TypeAhead | None = None
        self._warming: tuple[threading.Thread, threading.Event] | None = None
        self.last_timings: dict[str, Any] | None = None  # the last question's, as stored
        self.voicing: Voicing | None = None  # the last turn's gate: what stood, and the sentence that ended it
        self._carded: set[str] = set()  # panelists whose card this process has made resident

    @property
    def threads(self) -> dict[str, list[Message]]:
        return self.hearing.threads

    # ---------------------------------------------------------------- construction

    @classmethod
    def start(cls, scenario_id: str, *, backend: ChatBackend, grader: Grader, store: Store, seed: int,
              model: str = "", quick: bool = False, **kw: Any) -> Interview:
        """A new session of a packaged scenario; `quick` scales every time box so it fits in 15 minutes."""
        sc, bank, personas = scenario_parts(scenario_id)
        return cls.start_with(sc, bank, personas, backend=backend, grader=grader, store=store, seed=seed,
                              model=model, quick=quick, **kw)

    @classmethod
    def start_with(cls, sc: Scenario, bank: Bank, personas: dict[str, Persona], *, backend: ChatBackend,
                   grader: Grader, store: Store, seed: int, model: str = "", quick: bool = False,
                   **kw: Any) -> Interview:
        """A scenario built in code (the benchmark's long panel); `start` loads one from the package's prompts."""
        state = Panel(sc, bank, personas).start(seed, quick=quick)
        iv = cls(backend=backend, grader=grader, store=store, scenario=sc, bank=bank, personas=personas,
                 session_id=new_session_id(), seed=seed, state=state, **kw)
        iv._unsaved = (sc.id, seed, model)  # stored with its first question: a kill before it leaves no husk
        return iv

    @classmethod
    def start_built(cls, question_ids: list[str], *, kind: str, title: str, brief: str | None = None,
                    options: dict[str, Any] | None = None, **kw: Any) -> Interview:
        """A panel of chosen questions from any bank (`kind` "drill": your weak spots; "job": the questions
        that fit your job description), stored so that a resume rebuilds the same panel."""
        sc, bank, personas = custom_parts(question_ids, kind=kind, title=title, brief=brief)
        return cls.start_with(sc, bank, personas, options={**(options or {}), **options_for(sc, brief)}, **kw)

    @classmethod
    def resume(cls, session_id: str, *, backend: ChatBackend, grader: Grader, store: Store, take_over: bool = False,
               owner: str | None = None, **kw: Any) -> Interview:
        """Go on with a stored session. Refused while another live window holds it, unless `take_over`
        (that window's next write then fails loudly instead of overwriting). With `owner`, only one of
        theirs: another user's session reads as unknown."""
        row = store.session(session_id, owner)
        if row is None:
            raise CoachError(f"no session {session_id!r}; see `coach sessions list`")
        sc, bank, personas = session_parts(row)
        iv = cls(backend=backend, grader=grader, store=store, scenario=sc, bank=bank, personas=personas,
                 session_id=session_id, seed=row["seed"], state=PanelState.from_dict(row["state"]),
                 owner=row["owner"], options=row["options"], **kw)
        if row["status"] != "finished":
            store.acquire(session_id, iv.holder, take_over=take_over)
            if row["status"] == "abandoned":  # picked up again
                store.set_status(session_id, "active")
        turns = store.turns(session_id)
        for t in turns:  # rebuild what each panelist heard; the engine re-reads it once
            action = Action(t["kind"], t["panelist"], t["question_id"], t["canonical"], "", -1)
            iv.hearing.heard_question(action, t["spoken"])
            if t["answer"] is not None and t["kind"] != "close":
                iv.hearing.heard_answer(t["panelist"], t["answer"])
                iv.hearing.recorded(CurrentTurn(t["idx"], action, t["spoken"], t["fallback"]), t["answer"],
                                    Grade.from_dict(t["grade"]) if t["grade"] else None)
        iv.turn_count = len(turns)
        iv.closed = any(t["kind"] == "close" for t in turns)
        if turns and turns[-1]["answer"] is None:  # asked before the process stopped: ask it again as stored
            t = turns[-1]
            action = iv._panel.next_action(iv.state)
            iv.current = CurrentTurn(t["idx"], action, t["spoken"], t["fallback"])
        return iv

    # ---------------------------------------------------------------- what the front ends show

    @property
    def done(self) -> bool:
        return self.closed

    def progress(self) -> tuple[int, int]:
        """(which interviewer now, of how many): past the last one while the panel closes."""
        return self.state.seg_pos + 1, len(self.state.order)

    @property
    def quick(self) -> bool:
        """A Quick round: every time box scaled down (kept in the stored state, so a resume keeps it)."""
        return self.state.pace < 1

    def persona(self, panelist: str) -> Persona:
        return self.personas[panelist]

    def next_speaker(self) -> Persona:
        """Who speaks next: the open question's panelist, else whoever the panel picks (nothing changes)."""
        if self.current is not None:
            return self.personas[self.current.action.panelist]
        return self.personas[self.next_action().panelist]

    def replay(self, decide: Callable[[Action], Action]) -> None:
        """From now on each decision of the panel passes through `decide` (a benchmark replays recorded turns
        as they were recorded)."""
        self._panel.steer = decide

    def next_action(self) -> Action:
        """What the panel will do next (the open question's action while one is open); changes nothing."""
        return self.current.action if self.current is not None else self._panel.next_action(self.state)

    def clock(self) -> Clock | None:
        """The segment clock, the open question's time included; None once the panel is over."""
        used, box = self._panel.time_left(self.state)
        if self.done or not box:  # over, or between the last answer and the goodbye
            return None
        if self.current is not None and self.asked_at is not None:
            used += int(time.time() - self.asked_at)
        left, up_to = self._panel.questions_coming(
            self.state, used, self.current is not None and self.current.action.kind != "follow_up")
        return Clock(used, box, left, up_to)

    def question_box(self) -> int:
        """The open question's time box in seconds at this session's pace (0 when there is none)."""
        qid = self.current.action.question_id if self.current is not None else None
        return self._panel.question_box(self.state, qid) if qid else 0

    def transcript(self) -> list[Line]:
        """What the candidate saw and said so far (stored turns; the open question is not in it)."""
        return transcript(self.store.turns(self.session_id)) if self._unsaved is None else []

    def turn_stats(self) -> str:
        """One line on the last question: its first word, and how much of its prompt came from the cache."""
        return timing_line(self.last_timings)

    def begin(self) -> None:
        """Start reading every persona card in the background (the first speaker's opening first)."""
        if self._warming is None and self.turn_count == 0:
            cancel = threading.Event()
            thread = threading.Thread(target=self._warm_quietly, args=(cancel,), daemon=True, name="coach-warm-up")
            self._warming = (thread, cancel)
            thread.start()

    def _warm_quietly(self, cancel: threading.Event) -> None:
        """The background warm-up: only a speed-up, so a failure (the model freed under it by Ctrl-C or a
        closing window) is logged, never printed as a stray thread trace."""
        try:
            self.warm_up(cancel)
        except Exception as exc:  # noqa: BLE001
            log.info("warm-up stopped: %s: %s", type(exc).__name__, exc)

    def draft(self, text: str) -> None:
        """The candidate's answer so far: the next speakers read it in the background while they type."""
        if self.current is None or self.done:
            return
        if self._typing is None:
            self._typing = TypeAhead(self.type_ahead, lambda: self.backend.turn_waiting,
                                     interrupt=self.backend.interrupt)
        self._typing.update(text or "")

    def stop_background(self) -> None:
        """Cancel and join warm-up and type-ahead (before the model is freed or the process exits)."""
        if self._typing is not None:
            self._typing.stop()
            self._typing = None
        if self._warming is not None:
            thread, cancel = self._warming
            cancel.set()
            thread.join()
            self._warming = None

    # ---------------------------------------------------------------- the panel's turn

    def ask(self) -> Iterator[str]:
        """Stream the next panelist's words. Afterwards `self.current` holds the final text."""
        if self.current is not None:  # unanswered (e.g. after resume): say it again, do not regenerate
            yield self.current.text
            self.asked_at = self.asked_at or time.time()
            return
        action = self._panel.next_action(self.state)
        before = self.hearing.snapshot()
        messages = self.hearing.messages(action, self.state)
        if self.turn_count == 0 and self.cache_dir is not None:
            self.backend.warm(self._speaker(action.panelist), messages, self.cache_dir, whole=True)  # from disk when cached
        elif self.cache_dir is not None and action.panelist not in self._carded:  # e.g. resumed: the card from disk
            self.backend.load_card(self._speaker(action.panelist), messages, self.cache_dir)
        self._carded.add(action.panelist)
        voice = Voicing(action.kind, self._judge(action, messages),
                        opener=_opener(action))
        reason: str | None = None
        timings: dict[str, Any] | None = None
        try:
            stream = self._backend_stream(action, messages)
            try:
                for c in stream:
                    for piece in voice.feed(c):
                        yield piece
                    if voice.stopped:
                        break
            finally:
                getattr(stream, "close", lambda: None)()  # ends generation and frees the model at once
            t = self.backend.timings
            for piece in voice.finish(complete_stream=t is None or t.finish_reason != "length"):
                yield piece
            timings = t.as_dict() if t is not None else None
        except ServerUnavailable:  # nothing of this turn is kept: asking again starts it afresh
            self.hearing.restore(before)
            raise
        except CoachError as exc:  # e.g. the context is full: the written question still works
            reason = f"engine: {exc}"
        ok, why = voice.verdict() if reason is None else (False, reason)
        text = voice.text
        self.voicing = voice
        if not ok:  # what was shown stands; the written line follows it
            log.info("turn %d: the written line follows the model's wording (%s)", self.turn_count, why)
            tail = joined(text, self._written(action, text))
            yield tail
            text += tail
        text = text.strip()
        idx = self.turn_count
        if self._unsaved is not None:
            scenario, seed, model = self._unsaved
            self.store.create_session(scenario, seed, model, self.state.to_dict(), holder=self.holder,
                                      session_id=self.session_id, owner=self.owner, options=self.options)
            self._unsaved = None
        self.store.save_question(self.session_id, idx, kind=action.kind, panelist=action.panelist,
                                 question_id=action.question_id, canonical=action.canonical, spoken=text,
                                 fallback=None if ok else why or "unusable", timings=timings, holder=self.holder)
        self.last_timings = timings
        self.turn_count += 1
        self.hearing.heard_question(action, text)
        self.current = CurrentTurn(idx, action, text, None if ok else why or "unusable")
        self.asked_at = time.time()
        self.hearing.plan_ahead(self._panel, self.state, action)
        if action.kind == "close":  # nothing to answer: the session is finished
            self.answer("", 0.0)
            self.closed = True

    def _judge(self, action: Action, messages: list[Message]) -> Judge:
        """The checks of this turn: what it is about, and what this panelist must never say."""
        p = self.personas[action.panelist]
        q = self.bank.get(action.question_id) if action.question_id else None
        last = str(messages[-1]["content"])
        heard = [x[len(ANSWERED):] for x in last.split("\n\n") if x.startswith(ANSWERED)]
        if action.kind == "follow_up":  # the weak area, the written probe, the question and the answer it probes
            topic = [action.instruction.split("left out:")[-1].strip(), action.canonical, *([q.text] if q else []),
                     *heard[-1:]]
        elif action.kind == "close":
            topic = [action.canonical]
        else:
            topic = [q.text if q else action.canonical, action.canonical]
        answers = [*(k.text for k in q.key_points), *(x for g in q.good for x in split_sentences(g))] if q else []
        read = [x for x in [str(messages[0]["content"]), *last.split("\n\n"), action.instruction]
                if not x.startswith(ANSWERED)]
        turn = Turn(kind=action.kind, speaker=p.name, role=p.role,
                    colleagues=[(o.name, o.role) for k, o in self.personas.items() if k != action.panelist],
                    topic=topic, secrets=list(p.hidden_priorities), answers=answers, read=read, heard=heard,
                    frame=1 if action.kind == "follow_up" else 0, opener=_opener(action),
                    own=[action.canonical, *([q.text] if q else []), *self._framings(action),
                         f"You are {p.name}, {p.role}", f"I'm {p.name}, {p.role}"])
        return Judge(turn, self.grader.embedder)

    def _framings(self, action: Action) -> list[str]:
        return [t.framing for t in self.scenario.tension_pairs if t.by == action.panelist]

    def _written(self, action: Action, said: str) -> str:
        """The written line that follows what stood: a contradiction whose push-back the model already
        voiced gets only its question, never the written push-back on top."""
        q = self.bank.get(action.question_id) if action.question_id else None
        if action.kind == "contradict" and said.strip() and q is not None:
            return q.text
        return action.canonical

    def _backend_stream(self, action: Action, messages: list[Message]) -> Iterator[str]:
        return self.backend.stream(self._speaker(action.panelist), messages, max_tokens=self.max_tokens,
                                   temperature=0.7, seed=self.seed + self.turn_count, stop=["\nCandidate:", "\n\n\n"])

    def _pending(self, panelist: str, draft: str | None = None) -> list[Message]:
        return self.hearing.pending(panelist, draft, self.current)

    def type_ahead(self, draft: str, cancel: threading.Event | None = None,
                   newer: threading.Event | None = None) -> int:
        """While the candidate types: the possible next speakers read the answer so far (this segment's
        panelist first), then everyone catches up on what they have not read, the committee last.
        Returns tokens evaluated. `cancel` stops it between batches; callers that exit must set it and
        join the thread first (freeing the model while llama.cpp evaluates crashes the process)."""
        prefill = self.backend.prefill
        if self.current is None:
            return 0
        done = 0
        upcoming = self._likely_first(self._panel.upcoming(self.state), draft)
        # The likely next speaker reads to the end of the draft; the others stop between batches as soon
        # as a newer draft arrives (`newer`), so the likely speaker never falls behind the typing.
        stop = Either(cancel, newer)
        news = self.hearing.news
        for i, p in enumerate([*upcoming, *(p for p in self.personas if p not in upcoming)]):
            if stop.is_set():
                return done
            if p in upcoming or news[p]:
                done += int(prefill(self._speaker(p), self._pending(p, draft if p in upcoming else None),
                                    cancel=cancel if i == 0 else stop))
        if not stop.is_set():
            done += int(prefill(self._speaker(COMMITTEE), self.hearing.committee(draft=draft, current=self.current),
                                cancel=stop))
        return done

    def _likely_first(self, upcoming: list[str], draft: str) -> list[str]:
        """Put first the panelist who would speak if the answer ended now: the draft is graded (tens of
        milliseconds) and the panel's own rule applied to a copy of its state."""
        cur = self.current
        if cur is None or len(upcoming) < 2 or len(draft.split()) < 12 or not cur.action.question_id:
            return upcoming
        try:
            grade = self.grader.grade(self.bank, self.bank.get(cur.action.question_id), draft)
        except CoachError:
            return upcoming
        st = PanelState.from_dict(self.state.to_dict())
        self._panel.record(st, cur.action, grade, draft, 0.0)
        nxt = self._panel.next_action(st).panelist
        return sorted(upcoming, key=lambda p: p != nxt)

    def warm_up(self, cancel: threading.Event | None = None) -> int:
        """At the start of a session: evaluate every persona card (from the on-disk prefix cache when
        this model has read the same card before), the first speaker's whole opening first."""
        warm = self.backend.warm
        if self.current is not None or self.turn_count:
            return 0
        first = self._panel.next_action(self.state)
        done = 0
        order = [first.panelist, *(p for p in self.personas if p != first.panelist)]
        for p in order:
            if cancel is not None and cancel.is_set() or self.turn_count:
                break
            thread = self.hearing.thread(p)
            if p == first.panelist and len(thread) == 1:  # its first turn has not begun
                done += int(warm(self._speaker(p), [*thread, self.hearing.turn(first, self.state)], self.cache_dir,
                                 whole=True, cancel=cancel))
            else:
                done += int(warm(self._speaker(p), self._pending(p), self.cache_dir, cancel=cancel))
        if not (cancel is not None and cancel.is_set()):
            done += int(warm(self._speaker(COMMITTEE), self.hearing.committee(), self.cache_dir, cancel=cancel))
        return done

    def _speaker(self, panelist: str) -> str:
        """The engine's cache key: one KV state per panelist per session, so tabs never share one."""
        return f"{self.session_id}/{panelist}"

    # ---------------------------------------------------------------- practice mode

    @property
    def practice(self) -> bool:
        """Practice mode (stored with the session): a hint on demand, a strong answer once drafted, the
        grade after each answer. Live mode, the default, gives no help until the debrief."""
        return self.options.get("mode") == "practice"

    def _open_question(self) -> Question:
        if not self.practice:
            raise CoachError("hints and strong answers are for practice mode; this is a live panel")
        cur = self.current
        if cur is None or cur.action.kind == "close" or not cur.action.question_id:
            raise CoachError("no question is open to help with")
        return self.bank.get(cur.action.question_id)

    def hint(self, draft: str = "") -> str:
        """Where the open question's answer lies, never what it is: the areas the panel listens for, or,
        given a draft, the areas it has not covered yet (`grading.hints`)."""
        q = self._open_question()
        text = clean_answer(draft)[0].strip()
        return hints.hint(q, self.grader.grade(self.bank, q, text) if text else None, text)

    def strong_answer(self, draft: str) -> str:
        """A strong answer to the open question, shown only once the candidate has drafted their own."""
        q = self._open_question()
        if not clean_answer(draft)[0].strip():
            raise CoachError("draft your own answer first; the strong one is there to compare with")
        return hints.strong_answer(q)

    # ---------------------------------------------------------------- the candidate's turn

    def answer(self, text: str, spent_s: float | None = None, voice: VoiceDelivery | None = None) -> Grade | None:
        """Grade and store the answer to the open question (`spent_s`: by default, since it was asked;
        `voice`: its delivery measured from a recording, for a spoken answer)."""
        if self.current is None:
            raise CoachError("there is no open question; call ask() first")
        if self._typing is not None:  # the turn reads what is left; nothing evaluates the old draft behind it
            self._typing.stop()
            self._typing = None
        if spent_s is None:
            spent_s = time.time() - self.asked_at if self.asked_at else 0.0
        cur = self.current
        grade: Grade | None = None
        if cur.action.kind != "close" and cur.action.question_id:
            q = self.bank.get(cur.action.question_id)  # measured against its time box at this session's pace
            q = q.model_copy(update={"time_box_s": self._panel.question_box(self.state, q.id)})
            grade = self.grader.grade(self.bank, q, text, spoken_s=voice.spoken_s if voice else None)
            grade.voice = voice.as_dict() if voice else None
        text, _ = clean_answer(text)  # what is stored is what was graded (the grade's notes say what changed)
        self._panel.record(self.state, cur.action, grade, text, spent_s)
        status = "finished" if cur.action.kind == "close" else "active"
        self.store.save_answer(self.session_id, cur.idx, answer=text, grade=grade.as_dict() if grade else None,
                               spent_s=spent_s, state=self.state.to_dict(), status=status, holder=self.holder)
        if status == "finished":
            self.release()
        if cur.action.kind != "close":
            self.hearing.heard_answer(cur.action.panelist, text)
            self.hearing.recorded(cur, text, grade)
        self.current = None
        self.asked_at = None
        return grade

    # ---------------------------------------------------------------- the end

    def release(self) -> None:
        """Give up this window's lease (the session finished, or the window is closing)."""
        if self._unsaved is None:
            try:
                self.store.release(self.session_id, self.holder)
            except CoachError as exc:  # a read-only or vanished database: the lease dies with the process
                log.info("lease not released: %s", exc)

    def debrief(self) -> Debrief:
        return debrief_for(self.store, self.session_id, self.personas, self.grader.embedder)

    def committee_note(self, max_tokens: int = 160) -> Iterator[str]:
        """The chair's summary, streamed a whole sentence at a time once each passes the wording checks (a
        failing sentence ends the note there, unseen). The record was read turn by turn during the
        session (type-ahead), so only this last instruction is left to read."""
        if not self.hearing.record:
            return
        messages = self.hearing.committee(SUMMARY_REQUEST)
        note = Note(self._note_judge(messages))
        stream = self.backend.stream(self._speaker(COMMITTEE), messages, max_tokens=max_tokens, temperature=0.3,
                                     seed=self.seed)
        try:
            for chunk in stream:
                yield from note.feed(chunk)
                if note.stopped:
                    break
        finally:
            getattr(stream, "close", lambda: None)()
        t = self.backend.timings
        yield from note.finish(complete_stream=t is None or t.finish_reason != "length")
        if note.voice.why:
            log.info("committee note cut short: %s", note.voice.why)

    def _note_judge(self, messages: list[Message]) -> Judge:
        record = str(messages[-1]["content"])
        heard, read = [], [str(messages[0]["content"])]
        for entry in record.split("\n\n"):
            asked, _, answered = entry.partition(ANSWERED)
            read.append(asked)
            if answered:
                heard.append(answered)
        turn = Turn(kind="note", speaker="the committee chair", role="chair",
                    colleagues=[(p.name, p.role) for p in self.personas.values()], topic=[], read=read, heard=heard)
        return Judge(turn, self.grader.embedder)


def _opener(action: Action) -> bool:
    """The session's first question, where the panelist introduces itself first."""
    return action.kind == "ask" and action.instruction.startswith("Introduce yourself")


def timing_line(t: dict[str, Any] | None) -> str:
    """One line on a question's timings: its first word, and how much of its prompt came from the cache."""
    if not t:
        return ""
    where = "the model server's cache" if t.get("remote") else "the cache"
    reuse = (f"{t['cached_tokens']} of {t['prompt_tokens']} prompt tokens from {where}" if t.get("cache_reported", True)
             else "this model server does not report its cache")
    return f"first word after {t['ttft_s']:.1f} s · {reuse}"
