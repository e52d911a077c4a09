"""The CLI reference in docs/cli.md, generated from the parser: every command's `--help`, every setting with
its flag and variable, the exit codes. `python -m coach.cli.reference --write` refreshes the file; a test
keeps it equal to what the parser says."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from coach.cli import build_parser, commands
from coach.config import Settings
from coach.errors import EXIT_CODES

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
MARK = "<!-- generated below by `.venv/bin/python -m coach.cli.reference --write`; a test keeps it equal to --help -->"
WIDTH = "100"  # help is wrapped to the terminal's width: fixed here so the file does not depend on who ran it


def _help(parser: argparse.ArgumentParser) -> str:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH
    try:
        return parser.format_help().rstrip()
    finally:
        if before is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = before


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """The generated part of docs/cli.md."""
    parser = build_parser()
    out = [MARK, "", "## Settings: flags and variables", "",
           "One `Settings` feeds the UI, the CLI and the benchmark. A flag wins over its variable; a global flag "
           "may come before or after the command (`coach --model X rehearse` or `coach rehearse --model X`).", "",
           "| variable | flag | where | what |", "| --- | --- | --- | --- |",
           "| `COACH_HOME` | | everywhere | the data folder: sessions, models, caches (default "
           "`~/.local/share/coach`) |"]
    for f in fields(Settings):
        if f.name == "home":
            continue
        meta = f.metadata
        scope = "every command" if "global" in meta["scope"] else ", ".join(f"`{s}`" for s in meta["scope"])
        flag = f"`{meta['flag']}`" if meta["flag"] else "(variable only)"
        out.append(f"| `COACH_{f.name.upper()}` | {flag} | {scope} | {_cell(meta['help'].replace('%%', '%'))} |")
    out += ["", "## Exit codes", "", "| Exit | Meaning |", "| --- | --- |"]
    out += [f"| {code} | {_cell(what)} |" for code, what in EXIT_CODES]
    out += ["", "## Every command, as `--help` prints it", "", "### coach", "", "```text", _help(parser), "```"]
    for name, sub in commands(parser).items():
        out += ["", f"### {name}", "", "```text", _help(sub), "```"]
    return "\n".join(out) + "\n"


def written() -> str:
    """The generated part as docs/cli.md holds it now ("" when the file or its mark is missing)."""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    return text[text.index(MARK):] if MARK in text else ""


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        sys.stdout.write(reference())
        return 0
    text = DOC.read_text(encoding="utf-8")
    head = text[:text.index(MARK)] if MARK in text else text.rstrip() + "\n\n"
    DOC.write_text(head + reference(), encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
