"""The `coach` command: its parser and its error boundary. The commands live in `cli/panel.py` (the panel
at a terminal, sessions), `cli/grading.py` (grade, debrief, grader-eval) and `cli/manage.py` (models,
bench, doctor, ui). The global flags are generated from the `Settings` fields the UI uses."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from coach import __version__
from coach.cli.grading import cmd_debrief, cmd_grade, cmd_grader_eval, cmd_rubric_check
from coach.cli.manage import (
    cmd_bench,
    cmd_doctor,
    cmd_models_add,
    cmd_models_list,
    cmd_models_pull,
    cmd_models_quantize,
    cmd_models_rm,
    cmd_serve_model,
    cmd_ui,
    cmd_users,
)
from coach.cli.panel import cmd_chat, cmd_rehearse, cmd_sessions
from coach.cli.prep import cmd_plan, cmd_stories
from coach.cli.voice import cmd_voice
from coach.config import Settings, add_flags, overrides
from coach.errors import EXIT_CODES, CoachError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coach", description="Rehearse a product interview loop with a local panel.",
                                epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
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
    add_flags(chat, "chat")

    reh = sub.add_parser("rehearse", help="the panel in the terminal; Ctrl-C saves, resume later")
    reh.add_argument("--scenario", default="pmm_final_panel",
                     help="pmm_final_panel, pmm_deep_dive, pmm_live_case, pm_loop or tpm_onsite")
    reh.add_argument("--coach", action="store_true", help="coach mode: show each answer's score right away")
    reh.add_argument("--practice", action="store_true",
                     help="practice mode: coach mode, plus a hint at the prompt (a line with ?) and a strong "
                          "answer once you have drafted yours (??); live, the default, helps only in the debrief")
    reh.add_argument("--job", type=Path, metavar="FILE",
                     help="a panel for your job: the questions of every bank that fit the posting in FILE best "
                          "(each shown with the line that chose it), instead of --scenario")
    reh.add_argument("--short", action="store_true",
                     help="a quick round: every time box scaled so the whole panel fits in 15 minutes")
    reh.add_argument("--voice", action="store_true",
                     help="a spoken panel: questions played aloud, answers recorded (or a WAV path) and transcribed here")
    reh.add_argument("--keep-recordings", action="store_true",
                     help="keep each recorded answer in the data folder (default: deleted once transcribed)")
    reh.set_defaults(func=cmd_rehearse)
    add_flags(reh, "rehearse")

    plan = sub.add_parser("plan", help="your weak spots from the stored grades, each due again after 1, 3 and 7 "
                                       "days; --drill asks the due ones")
    plan.add_argument("--drill", action="store_true",
                      help="a drill of the due questions, weakest first, each asked by its own panelist")
    plan.add_argument("--practice", action="store_true", help="the drill in practice mode (? hint, ?? strong answer)")
    plan.set_defaults(func=cmd_plan)

    sto = sub.add_parser("stories", help="your STAR stories: add, list, rm, and map them to a panel's questions "
                                         "(strong, workable or a gap)")
    stsub = sto.add_subparsers(dest="stories_command", required=True)
    sadd = stsub.add_parser("add", help="add a story from FILE (- reads stdin)")
    sadd.add_argument("--title", required=True)
    sadd.add_argument("file", type=Path)
    stsub.add_parser("list", help="your stories")
    srm = stsub.add_parser("rm", help="remove a story")
    srm.add_argument("id")
    smap = stsub.add_parser("map", help="which story fits each question of a scenario, or of the panel for a job")
    smap.add_argument("--scenario", default="pmm_final_panel")
    smap.add_argument("--job", type=Path, metavar="FILE", help="the questions chosen for this job posting instead")
    for leaf in (sadd, srm, smap, *[stsub.choices["list"]]):
        leaf.set_defaults(func=cmd_stories)

    ses = sub.add_parser("sessions", help="list, show, resume or export rehearsal sessions")
    ssub = ses.add_subparsers(dest="sessions_command", required=True)
    ssub.add_parser("list").set_defaults(func=cmd_sessions)
    for name in ("show", "resume", "export"):
        sp = ssub.add_parser(name)
        sp.add_argument("id")
        sp.set_defaults(func=cmd_sessions)
        if name == "resume":
            add_flags(sp, "resume")
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
    grade.add_argument("--rubric", type=Path, required=True, help="a rubric YAML file (see rubrics/)")
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

    rub = sub.add_parser("rubric", help="check a rubric of your own before you trust the grader on it")
    rsub = rub.add_subparsers(dest="rubric_command", required=True)
    rc = rsub.add_parser("check", help="too few or too similar exemplars, good and bad the grader cannot separate "
                                       "held out, criteria without key points: what to add")
    rc.add_argument("file", type=Path, help="a rubric YAML file (see rubrics/)")
    rc.set_defaults(func=cmd_rubric_check)

    ev = sub.add_parser("grader-eval", help="the grader's agreement with a hand-labelled set")
    ev.add_argument("--labelled", type=Path,
                    help="one labelled YAML of your own, graded against the built-in rubrics (default: both built-in sets)")
    ev.add_argument("--semeval", type=Path, metavar="DIR",
                    help="also SemEval-2013 Task 7 2-way (the folder holding training/ and test/): AUC and accuracy "
                         "on its three test splits beside the max-cosine baseline")
    ev.add_argument("--held-out", type=Path, metavar="DIR",
                    help="also a folder with a truth*.yaml and an adversarial*.yaml (tests/data/grader, or its dev/): "
                         "what the tips name, and negated, fluent wrong and honest answers")
    ev.add_argument("--only", action="store_true", help="with --semeval or --held-out: skip the two built-in sets")
    ev.set_defaults(func=cmd_grader_eval)

    srv = sub.add_parser("serve-model", help="serve --model to a cohort: llama.cpp's llama-server if installed, "
                                             "else llama-cpp-python's server (then: coach ui --backend URL)")
    srv.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1; 0.0.0.0 for other machines)")
    srv.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    srv.add_argument("--slots", type=int, default=16,
                     help="speakers resident at once (llama-server: one slot each; 4 per candidate typing at once)")
    srv.add_argument("--kind", choices=["llama-server", "llama-cpp-python"], help="default: llama-server if found")
    srv.set_defaults(func=cmd_serve_model)
    add_flags(srv, "serve-model")

    users = sub.add_parser("users", help="who may sign in to a shared coach (`coach ui --users FILE`)")
    usub = users.add_subparsers(dest="users_command", required=True)
    for name, what in (("add", "add a user or change their password (read from the terminal or stdin)"),
                       ("rm", "remove a user"), ("list", "the users in the file")):
        up = usub.add_parser(name, help=what)
        up.add_argument("file", type=Path, help="the users file (created by `add`)")
        if name != "list":
            up.add_argument("name")
        if name == "add":
            up.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
        up.set_defaults(func=cmd_users)

    voice = sub.add_parser("voice", help="speech models: list, pull or rm whisper.cpp and piper models; "
                           "transcribe a WAV; say a line in a panelist's voice")
    vsub = voice.add_subparsers(dest="voice_command", required=True)
    vsub.add_parser("list", help="the recognizers and voices, and which run").set_defaults(func=cmd_voice)
    vp = vsub.add_parser("pull", help="download a voice model from the hub (resumable, verified)")
    vp.add_argument("name")
    vp.add_argument("--quiet", action="store_true", help="no progress bar")
    vp.set_defaults(func=cmd_voice)
    vr = vsub.add_parser("rm", help="delete a pulled voice model")
    vr.add_argument("name")
    vr.set_defaults(func=cmd_voice)
    vt = vsub.add_parser("transcribe", help="a WAV as text, with its delivery (pace, pauses, fillers)")
    vt.add_argument("file", type=Path)
    vt.add_argument("--time-box", type=int, default=0, help="seconds the answer had (default: none)")
    vt.set_defaults(func=cmd_voice)
    add_flags(vt, "voice")
    vs = vsub.add_parser("say", help="a line in a panelist's voice, as a WAV")
    vs.add_argument("panelist", help="researcher, gtm or pm")
    vs.add_argument("text")
    vs.add_argument("--out", type=Path, default=Path("say.wav"))
    vs.set_defaults(func=cmd_voice)

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
    for leaf in commands(p).values():
        add_flags(leaf, after_command=True)  # `coach rehearse --model X` as well as `coach --model X rehearse`
    return p


def commands(parser: argparse.ArgumentParser, prefix: str = "coach") -> dict[str, argparse.ArgumentParser]:
    """Every command a user can run, by its full name ("coach models pull"), in the order they were added."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                inner = commands(sub, f"{prefix} {name}")
                found.update(inner or {f"{prefix} {name}": sub})
    return found


def _epilog() -> str:
    """What `coach --help` ends with: every variable and the exit codes (the same table as docs/cli.md)."""
    import textwrap
    from dataclasses import fields

    variables = [textwrap.fill(f.metadata["help"].replace("%%", "%"), 100,
                               initial_indent=f"  {'COACH_' + f.name.upper():<24}", subsequent_indent=" " * 26)
                 for f in fields(Settings) if f.name != "home"]
    codes = "\n".join(textwrap.fill(what, 100, initial_indent=f"  {code:>3}  ", subsequent_indent=" " * 7)
                      for code, what in EXIT_CODES)
    return ("Every flag has a variable (flag wins); a global flag may come before or after the command.\n"
            "  COACH_HOME                the data folder (default ~/.local/share/coach)\n"
            + "\n".join(variables) + f"\n\nexit codes:\n{codes}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Private by default: only an explicit `models pull` may reach the hub. Set before anything imports
    # huggingface_hub, which reads these once.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # The UI stays online-capable for its explicit "Pull" button; nothing else in it asks the hub.
    pulling = "pull" in (getattr(args, "models_command", None), getattr(args, "voice_command", None))
    if not pulling and args.command != "ui":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # A byte that is not UTF-8 typed or piped in becomes U+FFFD instead of ending the session.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="replace")
    try:
        settings = Settings.from_env(**overrides(args))
        settings.export()
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
        from coach.crash import log_crash

        where = log_crash(exc)
        print(f"coach: error: unexpected {type(exc).__name__}: {str(exc)[:300]} (full trace in {where}; "
              "please report it)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
