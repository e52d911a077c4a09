"""`coach grade`, `coach debrief` and `coach grader-eval`: the grader on a user's own rubric and answers."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from coach.config import Settings


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
    from coach.grading.grader import Grader
    from coach.grading.rubrics import load_bank

    bank = load_bank(args.rubric)
    rows = _read_answers(args.answers)
    return _grade_rows(bank, rows, Grader.from_settings(settings), errors)


def _grade_rows(bank: Any, rows: list, grader: Any, errors: list[str]) -> Iterator:
    from coach.errors import ConfigError
    from coach.grading.debrief import Turn
    from coach.grading.grader import clean_answer

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
        from coach.report.files import check_out_path

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


def report_to(report: Any, out: Path | None, fmt: str) -> None:
    """A debrief to --out (written whole or not at all) or to stdout, in `fmt`."""
    from coach.report.files import write_report

    if out:
        write_report(report, out, fmt)
        print(f"{report.decision}: wrote {out}")
    else:
        from coach.report.debrief import render

        print(render(report, fmt))


def cmd_debrief(args: argparse.Namespace, settings: Settings) -> int:
    from coach.grading.debrief import build_debrief
    from coach.report.files import report_format

    fmt = report_format(args.out, args.format)  # a bad --out is refused before any grading
    errors: list[str] = []
    turns = list(_graded(args, settings, errors))
    for e in errors:
        print(f"coach: {'note' if e.endswith('(graded)') else 'skipped'} {e}", file=sys.stderr)
    report_to(build_debrief(turns), args.out, fmt)
    return 1 if any(not e.endswith("(graded)") for e in errors) else 0


def cmd_grader_eval(args: argparse.Namespace, settings: Settings) -> int:
    """Both labelled sets side by side with the max-cosine baseline (or one set of the user's own)."""
    import time

    from coach.grading.evaluate import EvalSet, evaluate_sets, report_sets
    from coach.grading.grader import Grader
    from coach.textfiles import read_text

    t0 = time.perf_counter()
    if args.labelled:
        read_text(args.labelled, "labelled set")  # a FIFO, a device or a folder is said before the grader loads
    semeval, held = getattr(args, "semeval", None), getattr(args, "held_out", None)
    splits = None
    if semeval is not None:
        from coach.grading.semeval import load

        splits = load(semeval)  # a wrong folder is one line before the grader loads
    if held is not None:
        pair = [_one(held, stem) for stem in ("truth", "adversarial")]
        for path in pair:
            read_text(path, "held-out set")
    grader = Grader.from_settings(settings)
    n = 0
    if not ((semeval is not None or held is not None) and getattr(args, "only", False)):
        sets = [EvalSet.builtin(args.labelled)] if args.labelled else [EvalSet.builtin(), EvalSet.technical()]
        results = evaluate_sets(grader, sets)
        print(report_sets(results), flush=True)
        n += sum(len(r["rows"]) for r in results.values())
    if held is not None:
        from coach.grading.evaluate import adversarial_check, report_heldout, truth_check

        truth, adv = truth_check(grader, pair[0]), adversarial_check(grader, pair[1])
        print(("\n" if n else "") + report_heldout(truth, adv), flush=True)
        n += len(truth["rows"]) + len(adv["rows"])
    if splits is not None:
        from coach.grading.embedder import MiniLMEmbedder
        from coach.grading.evaluate import report_semeval, semeval_rows, semeval_table
        from coach.grading.semeval import MemoEmbedder

        rows = semeval_rows(Grader(MemoEmbedder(MiniLMEmbedder(settings.grader_threads))), splits)
        print(("\n" if n else "") + report_semeval(semeval_table(rows)), flush=True)
        n += sum(len(r) for r in rows.values())
    print(f"\n({n} labelled answers, {time.perf_counter() - t0:.1f} s)")
    return 0


def _one(folder: Path, stem: str) -> Path:
    """The folder's `stem*.yaml` (truth_set.yaml, truth_dev.yaml, ...): exactly one, else a clear error."""
    from coach.errors import ConfigError

    found = sorted(folder.glob(f"{stem}*.yaml"))
    if len(found) != 1:
        raise ConfigError(f"{folder}: expected one {stem}*.yaml (a truthfulness or adversarial set), found "
                          f"{len(found)}")
    return found[0]


def _progress(out: Any) -> Any:
    """Progress on stderr: one line rewritten at a terminal, a line a question otherwise."""
    import time

    t0 = time.perf_counter()
    tty = out.isatty()

    def show(done: int, total: int, qid: str) -> None:
        left = (time.perf_counter() - t0) / done * (total - done)
        line = f"coach: checked {done}/{total} questions ({qid}); about {left:.0f} s left"
        print(("\r\033[K" if tty else "") + line, end="" if tty and done < total else "\n", file=out, flush=True)

    return show


def cmd_rubric_check(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when the grader can be trusted on every question, 1 when a problem is listed."""
    from coach.grading.grader import Grader
    from coach.grading.rubric_check import check_bank, render
    from coach.grading.rubrics import load_bank

    bank = load_bank(args.file)  # a malformed rubric: one line naming the file, question and field
    checks = check_bank(Grader.from_settings(settings), bank, _progress(sys.stderr))
    print(render(str(args.file), bank, checks))
    return 1 if any(c.problems for c in checks) else 0
