"""The `coach` command. Flags feed the same `Settings` fields the UI uses."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from coach import __version__
from coach.config import Settings, add_flags, overrides
from coach.errors import CoachError


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n else "-"


def cmd_models_list(args: argparse.Namespace, settings: Settings) -> int:
    from coach.fit import available_ram
    from coach.models import default_model, list_models

    rows = list_models(settings)
    try:
        default = default_model(settings).name
    except CoachError:
        default = ""
    print(f"{'NAME':42} {'INSTALLED':9} {'SIZE':>9} {'RAM NEEDED':>10}  FITS  NOTE")
    for r in rows:
        note = ", ".join(x for x in ("default" if r.name == default else "",
                                     "recommended" if r.recommended else "") if x)
        print(f"{r.name:42} {'yes' if r.installed else 'no':9} {_gb(r.size):>9} {_gb(r.ram_needed):>10}  "
              f"{'yes' if r.fits else 'NO':4}  {note}")
    print(f"\nRAM estimate = weights + f16 KV cache at context {settings.n_ctx} + 256 MiB buffers; "
          f"free now: {available_ram() / 1e9:.1f} GB")
    return 0


def cmd_models_pull(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models import pull

    path = pull(args.name, settings, progress=not args.quiet)
    print(f"ready: {path}")
    return 0


def cmd_models_add(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models import add

    ref = add(args.path, settings, name=args.name)
    print(f"registered {ref.name}: {ref.path} [{ref.quant}]")
    return 0


def cmd_models_quantize(args: argparse.Namespace, settings: Settings) -> int:
    from coach.ladder import quantize

    ref = quantize(args.src, args.type, settings, out=args.out)
    print(f"made {ref.name}: {ref.path} [{ref.quant}]")
    return 0


def cmd_models_rm(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models import remove

    _, what = remove(args.name, settings)
    print(what)
    return 0


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    """A plain terminal chat with the loaded model: the engine end to end."""
    from coach.loader import load_backend
    from coach.models import resolve

    ref = resolve(settings.model, settings)
    print(f"model: {ref.describe()}", file=sys.stderr)
    be = load_backend(settings, ref)
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
            print(f"[{t.prompt_tokens} prompt tokens, {t.cached_tokens} cached, ttft {t.ttft_s:.2f}s, "
                  f"{t.gen_tokens_per_s:.1f} tok/s]", file=sys.stderr)
        messages.append({"role": "assistant", "content": "".join(reply)})


def _read_answers(path: Path) -> list[tuple[int, dict | None, str | None]]:
    """JSONL rows of {"question_id" (or "id"), "answer"[, "panelist"]}; a bad line is reported, not fatal."""
    import json

    from coach.textfiles import read_text

    lines = read_text(path, "answers file").splitlines()
    rows: list[tuple[int, dict | None, str | None]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict) or not isinstance(row.get("answer", ""), str):
                raise ValueError("each line must be an object with a string `answer`")
            rows.append((n, row, None))
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            rows.append((n, None, f"line {n}: {str(exc)[:200]}"))
    return rows


def _graded(args: argparse.Namespace, settings: Settings, errors: list[str]) -> Iterator:
    """Grade every answer in --answers against --rubric, one at a time (a bad line goes to `errors`).
    The rubric and the answers file are read before the first answer is asked for, so a bad one fails
    before any output is opened."""
    from coach.grader import Grader
    from coach.rubrics import load_bank

    bank = load_bank(args.rubric)
    rows = _read_answers(args.answers)
    return _grade_rows(bank, rows, Grader.from_settings(settings), errors)


def _grade_rows(bank: Any, rows: list, grader: Any, errors: list[str]) -> Iterator:
    from coach.debrief import Turn
    from coach.errors import ConfigError
    from coach.grader import clean_answer

    for n, row, err in rows:
        if row is None:
            errors.append(err or f"line {n}: unreadable")
            continue
        qid = row.get("question_id") or row.get("id") or ""
        try:
            q = bank.get(str(qid))
        except ConfigError as exc:
            errors.append(f"line {n}: {exc}")
            continue
        raw = row.get("answer", "")
        g = grader.grade(bank, q, raw)  # the grade notes what was replaced or cut
        notes = [x for x in g.notes if x.startswith(("unreadable", "cut at"))]
        if notes:
            errors.append(f"line {n}: {'; '.join(notes)} (graded)")
        yield Turn(row.get("panelist") or q.asked_by, q.id, q.text, clean_answer(raw)[0], g)


def cmd_grade(args: argparse.Namespace, settings: Settings) -> int:
    """One JSON line per answer, written and flushed as each is graded: a failure later keeps the rest."""
    import json

    errors: list[str] = []
    graded = _graded(args, settings, errors)
    with _Output(args.out) as out:
        for t in graded:
            out.write(json.dumps(t.grade.as_dict(), ensure_ascii=False) + "\n")
            out.flush()
    for e in errors:
        print(f"coach: {'note' if e.endswith('(graded)') else 'skipped'} {e}", file=sys.stderr)
    return 1 if any(not e.endswith("(graded)") for e in errors) else 0


class _Output:
    """stdout, or a file opened for writing with one clear line when it cannot be."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def __enter__(self) -> Any:
        if self.path is None:
            return sys.stdout
        from coach.reports import check_out_path

        check_out_path(self.path)
        try:
            self.f = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            from coach.errors import ConfigError

            raise ConfigError(f"cannot write {self.path} ({exc.strerror or exc}); pick another --out") from None
        return self.f

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            self.f.close()


def _report(report: Any, out: Path | None, fmt: str) -> None:
    """A debrief to --out (written whole or not at all) or to stdout, in `fmt`."""
    from coach.reports import write_report

    if out:
        write_report(report, out, fmt)
        print(f"{report.decision}: wrote {out}")
    else:
        print(report.render(fmt))


def cmd_debrief(args: argparse.Namespace, settings: Settings) -> int:
    from coach.debrief import build_debrief
    from coach.reports import report_format

    fmt = report_format(args.out, args.format)  # a bad --out is refused before any grading
    errors: list[str] = []
    turns = list(_graded(args, settings, errors))
    for e in errors:
        print(f"coach: {'note' if e.endswith('(graded)') else 'skipped'} {e}", file=sys.stderr)
    _report(build_debrief(turns), args.out, fmt)
    return 1 if any(not e.endswith("(graded)") for e in errors) else 0


def cmd_grader_eval(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from coach.evaluate import LABELLED, evaluate, report
    from coach.grader import Grader

    t0 = time.perf_counter()
    result = evaluate(Grader.from_settings(settings), args.labelled or LABELLED)
    print(report(result))
    print(f"\n({len(result['rows'])} labelled answers, {time.perf_counter() - t0:.1f} s)")
    return 0


def _interview_parts(settings: Settings) -> tuple:
    from coach.grader import Grader
    from coach.loader import load_backend
    from coach.models import resolve
    from coach.store import Store

    store = Store.open_default(settings.home)  # an unusable data folder is said before the model loads
    ref = resolve(settings.model, settings)
    print(f"model: {ref.describe()}", file=sys.stderr)
    return ref, load_backend(settings, ref), Grader.from_settings(settings), store


def _read_answer(on_line=None) -> str:
    """Lines until an empty line (or end of input); `on_line` gets the answer so far after each line."""
    lines: list[str] = []
    while True:
        try:
            line = input("… " if lines else "you> ")
        except EOFError:
            if lines:
                break
            raise
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line)
        if on_line is not None:
            on_line("\n".join(lines))
    return "\n".join(lines)


def _run(iv, coach_mode: bool) -> int:
    print(f"\n== {iv.scenario.title} ==\n{iv.scenario.brief.strip()}\n", flush=True)
    print("Answer at the prompt; an empty line sends it. Ctrl-C saves and exits.\n", flush=True)
    iv.begin()  # every persona card, from the on-disk cache when this model has read it before
    try:
        while not iv.done:
            p = iv.next_speaker()
            print(f"\n{p.name} · {p.role}", flush=True)
            streamed = []
            for chunk in iv.ask():
                streamed.append(chunk)
                print(chunk, end="", flush=True)
            print(flush=True)
            cur = iv.current
            if cur is None:  # the closing line
                break
            if cur.fallback and streamed:
                print(f"[the model's wording was unusable ({cur.fallback}); the panel asks as written]", flush=True)
            clock = iv.clock()
            if clock is not None:
                print(f"[segment time {clock}" + (" — nearly out of time" if clock.warn else "") + "]", flush=True)
            iv.draft("")  # the next speakers read the answer while it is typed
            text = _read_answer(iv.draft)
            if "\ufffd" in text:
                print("[some typed bytes were not UTF-8; they are kept as \ufffd]", flush=True)
            grade = iv.answer(text)
            if coach_mode and grade is not None:
                print(f"[score {grade.summary()}]\n[next time: {grade.improvement}]", flush=True)
                for note in grade.notes:
                    print(f"[note: {note}]", flush=True)
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
    print(f"\nFull report: coach sessions export {iv.session_id} --out report.html")
    return 0


def cmd_rehearse(args: argparse.Namespace, settings: Settings) -> int:
    from coach.prompts import scenario_parts
    from coach.session import Interview

    scenario_parts(args.scenario)  # an unknown scenario is said before the model loads
    ref, backend, grader, store = _interview_parts(settings)
    iv = Interview.start(args.scenario, backend=backend, grader=grader, store=store, seed=settings.seed,
                         model=ref.name, cache_dir=settings.kv_cache_dir)
    print(f"session {iv.session_id}", file=sys.stderr)
    return _run(iv, args.coach)


def cmd_sessions(args: argparse.Namespace, settings: Settings) -> int:
    from coach.history import History
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
        from coach.reports import report_format

        fmt = report_format(args.out, args.format)
        _report(history.debrief(args.id), args.out, fmt)
        return 0
    # resume
    from coach.session import Interview

    store.close()
    _, backend, grader, store = _interview_parts(settings)  # resuming writes
    iv = Interview.resume(args.id, backend=backend, grader=grader, store=store, take_over=args.take_over)
    if iv.done:
        print("that session is finished; `coach sessions export` writes its report")
        return 0
    return _run(iv, args.coach)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from coach.bench import Options, recommend, run
    from coach.errors import InvalidModelFile
    from coach.ladder import LADDER, build_ladder
    from coach.models import ModelRef, resolve
    from coach.views import bench_table

    files = []
    if args.shape:
        from coach.ladder import build_shapes

        files += build_shapes(args.shape, settings, progress=not args.quiet)
    if args.ladder:
        rungs = tuple(r.strip().upper() for r in args.rungs.split(",")) if args.rungs else LADDER
        print(f"building the ladder {', '.join(rungs)} from {args.ladder} (cached by source hash)…", file=sys.stderr)
        files += build_ladder(args.ladder, settings, rungs)
    for m in args.models:
        try:
            files.append(resolve(m, settings))
        except InvalidModelFile:  # it exists but is broken: its row says why, the others still run
            files.append(ModelRef(Path(m).name, Path(m), "local", "?", Path(m).name))
    if not files:
        files = [resolve(None, settings)]
    opts = Options(reps=args.reps, threads=settings.n_threads, gpu_layers=settings.n_gpu_layers,
                   thread_sweep=args.thread_sweep, out_dir=args.out,
                   speed_only=bool(args.shape) and not args.ladder and not args.models)
    try:
        rows, out = run(files, settings, opts, progress=not args.quiet)
    except KeyboardInterrupt:
        print("\ncoach: interrupted; the finished rows are saved", file=sys.stderr)
        return 130
    print(bench_table(rows))
    print(f"\n{recommend(rows)}")
    print(f"CSV, JSON, plot.png and plot.html in {out}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from coach.doctor import report

    print(report(settings))
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    import socket

    from coach.errors import ConfigError

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # before minutes of model loading
        if os.name != "nt":  # as the server will: a port left in TIME_WAIT by a UI just closed is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise ConfigError(f"port {settings.port} on {settings.host} is in use ({exc.strerror or exc}); "
                              "pass --port with another number, or stop the program using it") from None
    from coach.ui import launch

    launch(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coach", description="Rehearse a product interview loop with a local panel.")
    p.add_argument("--version", action="version", version=f"coach {__version__}")
    add_flags(p)  # --model, --ctx, --threads, --gpu-layers, --seed, --grader-threads: from Settings' fields
    sub = p.add_subparsers(dest="command", required=True)

    ui = sub.add_parser("ui", help="open the browser UI on 127.0.0.1")
    add_flags(ui, "ui")
    ui.set_defaults(func=cmd_ui)

    sub.add_parser("doctor", help="what this machine has (GPU, RAM, disk, bandwidth) and which models it can run"
                   ).set_defaults(func=cmd_doctor)

    chat = sub.add_parser("chat", help="chat with the model in the terminal (engine check)")
    chat.add_argument("--prompt", help="one message, then exit")
    chat.add_argument("--system", default="You are a concise, helpful assistant.")
    chat.add_argument("--max-tokens", type=int, default=200)
    chat.add_argument("--temperature", type=float, default=0.7)
    chat.set_defaults(func=cmd_chat)

    reh = sub.add_parser("rehearse", help="the panel in the terminal; Ctrl-C saves, resume later")
    reh.add_argument("--scenario", default="pmm_final_panel",
                     help="pmm_final_panel, pmm_deep_dive, pmm_live_case, pm_loop or tpm_onsite")
    reh.add_argument("--coach", action="store_true", help="coach mode: show each answer's score right away")
    reh.set_defaults(func=cmd_rehearse)

    ses = sub.add_parser("sessions", help="list, show, resume or export rehearsal sessions")
    ssub = ses.add_subparsers(dest="sessions_command", required=True)
    ssub.add_parser("list").set_defaults(func=cmd_sessions)
    for name in ("show", "resume", "export"):
        sp = ssub.add_parser(name)
        sp.add_argument("id")
        sp.set_defaults(func=cmd_sessions)
        if name == "resume":
            sp.add_argument("--coach", action="store_true")
            sp.add_argument("--take-over", action="store_true",
                            help="go on even if another window has the session open (its next write fails)")
        if name == "export":
            sp.add_argument("--out", type=Path)
            sp.add_argument("--format", choices=["md", "json", "html"], help="default: from --out's extension")

    bench = sub.add_parser("bench", help="speed, memory and quality per quantization level, and a recommendation")
    bench.add_argument("models", nargs="*", help="installed catalog names, registered names or .gguf paths")
    bench.add_argument("--ladder", metavar="SRC", help="build a quantization ladder from SRC and measure every rung")
    bench.add_argument("--rungs", help="comma-separated rung types (default F16,Q8_0,Q6_K,Q5_K_M,Q4_K_M,Q3_K_M,Q2_K)")
    bench.add_argument("--shape", metavar="NAME[:QUANT,...]",
                       help="measure a catalog model before downloading it: a random-weight file with its exact "
                            "shape and tokenizer (speed and memory only), cached under $COACH_HOME/shapes")
    bench.add_argument("--reps", type=int, default=3, help="repetitions per measurement (median and spread)")
    bench.add_argument("--thread-sweep", action="store_true", help="also measure generation at 1..N threads")
    bench.add_argument("--out", type=Path, help="output folder (default $COACH_HOME/bench/TIMESTAMP)")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(func=cmd_bench)

    grade = sub.add_parser("grade", help="score answers against any rubric: one JSON line per answer")
    grade.add_argument("--rubric", type=Path, required=True, help="a rubric YAML file (see coach/data/rubrics/)")
    grade.add_argument("--answers", type=Path, required=True,
                       help='JSONL: {"question_id": ..., "answer": ...} per line')
    grade.add_argument("--out", type=Path, help="write here instead of stdout")
    grade.set_defaults(func=cmd_grade)

    deb = sub.add_parser("debrief", help="grade answers and write the hiring-committee debrief")
    deb.add_argument("--rubric", type=Path, required=True)
    deb.add_argument("--answers", type=Path, required=True)
    deb.add_argument("--out", type=Path, help="report path; .md, .json or .html picks the format")
    deb.add_argument("--format", choices=["md", "json", "html"])
    deb.set_defaults(func=cmd_debrief)

    ev = sub.add_parser("grader-eval", help="the grader's agreement with a hand-labelled set")
    ev.add_argument("--labelled", type=Path, help="labelled YAML (default: the built-in set, coach/data/labelled.yaml)")
    ev.set_defaults(func=cmd_grader_eval)

    models = sub.add_parser("models", help="list, pull, add, quantize or remove GGUF models")
    msub = models.add_subparsers(dest="models_command", required=True)
    msub.add_parser("list", help="every catalog entry and registered file").set_defaults(func=cmd_models_list)
    pull = msub.add_parser("pull", help="download NAME[:QUANT] from the hub (resumable, verified)")
    pull.add_argument("name")
    pull.add_argument("--quiet", action="store_true", help="no progress bar")
    pull.set_defaults(func=cmd_models_pull)
    add = msub.add_parser("add", help="register a local .gguf file")
    add.add_argument("path")
    add.add_argument("--name", help="name to register it under (default: file stem)")
    add.set_defaults(func=cmd_models_add)
    qz = msub.add_parser("quantize", help="make another quantization of a model with llama.cpp")
    qz.add_argument("src", help="model name or .gguf path")
    qz.add_argument("type", help="target type, e.g. Q4_K_M, Q8_0, Q2_K")
    qz.add_argument("--out", type=Path, help="output path (default: models dir)")
    qz.set_defaults(func=cmd_models_quantize)
    rm = msub.add_parser("rm", help="forget a registered file or delete a pulled one")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_models_rm)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Private by default: only an explicit `models pull` may reach the hub. Set before anything imports
    # huggingface_hub, which reads these once.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # The UI stays online-capable for its explicit "Pull" button; nothing else in it asks the hub.
    if getattr(args, "models_command", None) != "pull" and args.command != "ui":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # A byte that is not UTF-8 typed or piped in becomes U+FFFD instead of ending the session.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    try:
        settings = Settings.from_env(**overrides(args))
        return int(args.func(args, settings))
    except CoachError as exc:
        print(f"coach: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ncoach: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("coach: error: out of memory; close other programs, or use a smaller input or model", file=sys.stderr)
        return 4
    except BrokenPipeError:  # `coach ... | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # an unexpected failure: one line here, the whole trace in the log
        from coach.errors import log_crash

        where = log_crash(exc)
        print(f"coach: error: unexpected {type(exc).__name__}: {str(exc)[:300]} (full trace in {where}; "
              "please report it)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
