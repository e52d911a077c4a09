"""The crash log: an unexpected failure is one line for the user and the whole trace for a maintainer."""

from __future__ import annotations

import datetime
import tempfile
import traceback
from pathlib import Path

from coach.config import data_home
from coach.errors import CoachError


def log_crash(exc: BaseException) -> str:
    """Append `exc`'s full trace to the crash log (COACH_HOME/logs/coach-crash.log, else the temp folder) and
    return where it went, so the user sees one line and a maintainer gets the whole story."""
    text = f"--- {datetime.datetime.now().isoformat(timespec='seconds')}\n" + "".join(
        traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        folders = [data_home() / "logs"]
    except CoachError:  # no home folder: the temp folder still takes the trace
        folders = []
    for folder in (*folders, Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / "coach-crash.log"
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
            return str(path)
        except OSError:
            continue
    return "nowhere (no writable folder)"
