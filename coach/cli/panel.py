"""`coach chat`, `coach rehearse` and `coach sessions`: the panel at a terminal, and stored sessions."""

from __future__ import annotations

import argparse
import sys

from coach.cli.grading import report_to
from coach.config import Settings


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """A plain terminal chat with the loaded model: the engine end to end."""
    from coach.interview.loader import describe, load_backend, target

    ref = target(settings)
    be = load_backend(settings, ref)
    print(f"model: {describe(ref, be)}", file=sys.stderr)
    messages = [{"role": "system", "content": args.system}]
    prompts = [args.prompt] if args.prompt else None
    while True:
        if prompts is not None:
            if not prompts:
                return 0
            text = prompts.pop()
        else:
            try:
                text = input("you> ").strip()
            except (EOFError, KeyboardInterrupt):
                print()
                return 0
            if not text:
                continue
        messages.append({"role": "user", "content": text})
        reply = []
        for chunk in be.stream("assistant", messages, max_tokens=args.max_tokens, temperature=args.temperature):
            print(chunk, end="", flush=True)
            reply.append(chunk)
        print()
        t = be.timings
        if t is not None:
            cache = f"{t.cached_tokens} cached" if t.cache_reported else "cache not reported by the server"
            print(f"[{t.prompt_tokens} prompt tokens, {cache}, ttft {t.ttft_s:.2f}s, "
                  f"{t.gen_tokens_per_s:.1f} tok/s]", file=sys.stderr)
        messages.append({"role": "assistant", "content": "".join(reply)})


def _interview_parts(settings: Settings) -> tuple:
    from coach.grading.grader import Grader
    from coach.interview.loader import describe, load_backend, target
    from coach.store import Store

    store = Store.open_default(settings.home)  # an unusable data folder is said before the model loads
    ref = target(settings)
    be = load_backend(settings, ref)
    print(f"model: {describe(ref, be)}", file=sys.stderr)
    return ref, be, Grader.from_settings(settings), store


def _read_answer(on_line=None, command=None) -> str:  # noqa: ANN001
    """Lines until an empty line (or end of input); `on_line` gets the answer so far after each line. Piped
    in, at most the answer limit is read (`< /dev/zero` is refused, not read into memory)."""
    from coach.grading.answer import MAX_CHARS
    from coach.textfiles import read_answer

    return read_answer(limit=MAX_CHARS, on_line=on_line, command=command)


def _helper(iv):  # noqa: ANN001, ANN202
    """Practice mode's prompt commands: a line `?` asks for a hint (on the draft so far), `??` for a strong
    answer to compare with (once something is drafted). Neither becomes part of the answer."""
    from coach.errors import CoachError

    def command(line: str, so_far: str) -> bool:
        if line not in ("?", "??"):
            return False
        try:
            said = iv.hint(so_far) if line == "?" else f"A strong answer: {iv.strong_answer(so_far)}"
        except CoachError as exc:
            said = str(exc)
        print(f"[{said}]", flush=True)
        return True

    return command


def _run(iv, coach_mode: bool, voice=None, keep: bool = False) -> int:  # noqa: ANN001
    print(f"\n== {iv.scenario.title} ==\n{iv.scenario.brief.strip()}\n", flush=True)
    print("Answer at the prompt; an empty line sends it. Ctrl-C saves and exits.", flush=True)
    if iv.practice:
        print("Practice mode: a line with ? gives a hint, ?? a strong answer once you have drafted yours; "
              "each answer's score follows it.", flush=True)
    print(flush=True)
    try:
        return _loop(iv, coach_mode, voice, keep)
    finally:
        if voice is not None:
            voice.close()


def _loop(iv, coach_mode: bool, voice, keep: bool) -> int:  # noqa: ANN001
    from coach.errors import ConfigError
    from coach.report.views import segment_note
    from coach.textfiles import InputTooLong

    iv.begin()  # every persona card, from the on-disk cache when this model has read it before
    try:
        while not iv.done:
            p = iv.next_speaker()
            print(f"\n{p.name} · {p.role}", flush=True)
            if voice is not None:  # printed, and spoken sentence by sentence as it is written
                voice.ask(iv, p, iv.ask())
            else:
                for chunk in iv.ask():  # only wording that passed its checks is shown; nothing is taken back
                    print(chunk, end="", flush=True)
            print(flush=True)
            if iv.current is None:  # the closing line
                break
            clock = iv.clock()
            if clock is not None:
                print(f"[segment time {clock}{segment_note(clock)}]", flush=True)
            iv.draft("")  # the next speakers read the answer while it is typed
            spoken = None
            if voice is not None:
                text, spoken = voice.answer(iv, keep)
            else:
                text = _read_answer(iv.draft, _helper(iv) if iv.practice else None)
            if "\ufffd" in text:
                print("[some typed bytes were not UTF-8; they are kept as \ufffd]", flush=True)
            grade = iv.answer(text, voice=spoken)
            if coach_mode and grade is not None:
                print(f"[score {grade.summary()}]\n[next time: {grade.improvement}]", flush=True)
                for note in grade.notes:
                    print(f"[note: {note}]", flush=True)
    except InputTooLong as exc:
        iv.stop_background()
        iv.release()
        saved = f"; the session is saved up to the last answer: coach sessions resume {iv.session_id}" \
            if iv.turn_count else ""
        raise ConfigError(f"stdin: an answer passed {exc.limit:,} characters without an empty line (is stdin "
                          f"a text file?); nothing more was read{saved}") from None
    except (KeyboardInterrupt, EOFError):
        iv.stop_background()
        iv.release()
        if iv.turn_count:
            print(f"\nsaved. Resume with: coach sessions resume {iv.session_id}", file=sys.stderr)
        else:
            print("\nstopped before the first question; nothing was stored", file=sys.stderr)
        return 130
    except BaseException:
        iv.stop_background()
        iv.release()
        raise
    iv.stop_background()
    d = iv.debrief()  # the grader's decision comes at once; the chair's summary streams after it
    print(f"\n== Debrief: {d.decision} ==\n{d.reason}", flush=True)
    for v in d.verdicts:
        print(f"  {iv.persona(v.panelist).name} ({v.panelist}): {v.verdict}, {v.score:.2f}/5", flush=True)
    print("\nThe committee chair:", flush=True)
    for chunk in iv.committee_note():
        print(chunk, end="", flush=True)
    print(flush=True)
    if d.placement is not None:
        print(f"\n{d.placement.summary()}", flush=True)
    if d.reveal:
        print("\nWhat they were really testing:", flush=True)
        for r in d.reveal:
            print(f"  {r.name}: {r.agenda}", flush=True)
            for shown in r.priorities:
                print(f"    - {shown.line}", flush=True)
    for n, title in d.stories:
        print(f"  Answer {n} told your story “{title}”", flush=True)
    print(f"\nFull report: coach sessions export {iv.session_id} --out report.html")
    return 0


def cmd_rehearse(args: argparse.Namespace, settings: Settings) -> int:
    from coach.interview.prompts import scenario_parts
    from coach.interview.session import Interview

    options = {"coach": bool(args.coach or args.practice), "mode": "practice" if args.practice else "live"}
    if args.job is not None:
        job = _job_panel(args.job, settings)  # a missing or too-short posting is said before the model loads
        ref, backend, grader, store = _interview_parts(settings)
        iv = Interview.start_built(job[0], kind="job", title=job[1], brief=job[2], backend=backend, grader=grader,
                                   store=store, seed=settings.seed, model=ref.name, quick=args.short,
                                   cache_dir=settings.kv_cache_dir, options=options)
    else:
        scenario_parts(args.scenario)  # an unknown scenario is said before the model loads
        ref, backend, grader, store = _interview_parts(settings)
        iv = Interview.start(args.scenario, backend=backend, grader=grader, store=store, seed=settings.seed,
                             model=ref.name, quick=args.short, cache_dir=settings.kv_cache_dir, options=options)
    print(f"session {iv.session_id}", file=sys.stderr)
    return _run(iv, args.coach or args.practice, _voice(args, settings), bool(getattr(args, "keep_recordings", False)))


def _job_panel(path, settings: Settings) -> tuple[list[str], str, str]:  # noqa: ANN001
    """The questions that fit the job posting in `path`, printed with the line of it that chose each."""
    from coach.grading.embedder import MiniLMEmbedder
    from coach.interview.custom import askers
    from coach.prep.job import job_brief, job_title, pick_questions
    from coach.textfiles import read_text

    text = read_text(path, "job description")
    picks = pick_questions(text, MiniLMEmbedder(settings.grader_threads), askers())
    print(f"Questions for {job_title(text)}, each with the line of the posting that chose it:", flush=True)
    for p in picks:
        print(f"  {p.question_id} ({p.panelist}, {p.score:.2f}): {p.text}\n      <- \"{p.reason}\"", flush=True)
    return [p.question_id for p in picks], f"Your job: {job_title(text)}", job_brief(text, picks)


def _voice(args: argparse.Namespace, settings: Settings):  # noqa: ANN202
    if not getattr(args, "voice", False):
        return None
    from coach.cli.voice import Terminal

    return Terminal(settings)


def cmd_sessions(args: argparse.Namespace, settings: Settings) -> int:
    from coach.interview.history import History
    from coach.store import Store

    store = Store.open_default(settings.home, readonly=True)  # list, show and export only read
    history = History(store)
    if args.sessions_command == "list":
        rows = history.sessions()
        print(f"{'ID':24} {'SCENARIO':18} {'STATUS':9} {'ANSWERS':>7} {'MEAN':>5}  MODEL")
        for r in rows:
            mean = f"{r['mean_total']:.2f}" if r["mean_total"] is not None else "-"
            print(f"{r['id']:24} {r['scenario']:18} {r['status']:9} {r['answered']:7d} {mean:>5}  {r['model']}")
        return 0
    history.require(args.id)
    if args.sessions_command == "show":
        for t in history.turns(args.id):
            print(f"\n[{t['idx']}] {t['panelist']} ({t['kind']}): {t['spoken']}")
            if t["answer"] is not None:
                print(f"    answer: {t['answer']}")
            if t["grade"]:
                print(f"    score {t['grade']['total']:.2f}/5 — {t['grade']['improvement']}")
        return 0
    if args.sessions_command == "export":
        from coach.report.files import report_format

        fmt = report_format(args.out, args.format)
        report_to(history.debrief(args.id), args.out, fmt)
        return 0
    # resume
    from coach.interview.session import Interview

    store.close()
    _, backend, grader, store = _interview_parts(settings)  # resuming writes
    iv = Interview.resume(args.id, backend=backend, grader=grader, store=store, take_over=args.take_over)
    if iv.done:
        print("that session is finished; `coach sessions export` writes its report")
        return 0
    return _run(iv, args.coach or bool(iv.options.get("coach")))  # run as it was started
