"""Writing a debrief report to a path the user named: the format from the extension (or --format), the
folder checked first, the file written whole or not at all."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from coach.errors import ConfigError
from coach.grading.debrief import Debrief

FORMATS = ("md", "json", "html")


def report_format(out: Path | None, fmt: str | None) -> str:
    """The format to write: `fmt`, else `out`'s extension, else Markdown on stdout. Checked before any work."""
    if out is not None:
        check_out_path(out)
    if fmt:
        return fmt
    if out is None:
        return "md"
    ext = out.suffix.lower().lstrip(".")
    if ext == "markdown":
        return "md"
    if ext not in FORMATS:
        why = f"{out.suffix!r} is not a report format" if ext else "it has no extension"
        raise ConfigError(f"cannot tell the format of {out}: {why}; end it in .md, .json or .html, "
                          "or pass --format")
    return ext


def check_out_path(out: Path) -> None:
    """Refuse an output path that cannot be written, before any work: a folder, a missing or read-only
    parent."""
    if out.is_dir():
        raise ConfigError(f"{out} is a folder; give a file name, e.g. {out / 'report.html'}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ConfigError(f"the folder {parent} does not exist; create it or pick another path")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ConfigError(f"cannot write {out}: permission denied; pick another path")


def write_report(report: Debrief, out: Path, fmt: str) -> None:
    """Write through a temporary file beside `out` and rename: a failure leaves the old file and no litter."""
    check_out_path(out)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        chart = None
        if fmt == "html" and report.verdicts:  # the HTML report carries its chart inside
            from coach.report.views import criteria_png

            chart = criteria_png(report)
        from coach.report.debrief import render

        tmp.write_text(render(report, fmt, chart), encoding="utf-8")
        os.replace(tmp, out)
    except OSError as exc:
        raise ConfigError(f"cannot write {out} ({exc.strerror or exc}); pick another path") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
