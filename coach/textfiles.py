"""Reading the files a user hands the coach (rubrics, answers, users, catalogs, labelled sets, recordings)
and what is piped to it: one clear line for a missing file, a folder, a FIFO or a device, a permission
problem, a file over its limit or bytes that are not UTF-8, and never more read than the limit.

The size a `stat` reports is no bound: a FIFO or `/dev/zero` reports 0 and then never ends. So the type is
checked first (a regular file only), the file is opened without waiting for a FIFO's writer, and at most
the limit plus one byte is read whatever the size said.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from coach.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")

MAX_BYTES = 64 * 2**20  # a rubric or an answers file is kilobytes; refuse before reading gigabytes

_KINDS = ((stat.S_ISDIR, "is a folder"), (stat.S_ISFIFO, "is a pipe (FIFO)"), (stat.S_ISCHR, "is a device"),
          (stat.S_ISBLK, "is a device"), (stat.S_ISSOCK, "is a socket"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((why for test, why in _KINDS if test(mode)), "is not a regular file")


def _too_big(p: Path, what: str, size: int | None, limit: int) -> ConfigError:
    shown = f"{size / 2**20:.0f} MiB" if size is not None and size >= 2**20 else "more than the limit"
    return ConfigError(f"{p}: {shown} is too large for a {what} (limit {_human(limit)})")


def _human(n: int) -> str:
    return f"{n // 2**20} MiB" if n >= 2**20 else f"{n // 2**10} KiB" if n >= 2**10 else f"{n} bytes"


def read_bytes(path: Path | str, what: str, *, limit: int = MAX_BYTES) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; a ConfigError naming the fix otherwise."""
    p = Path(path)
    try:
        why = _not_regular(p.stat().st_mode)
        if why is not None:
            pass_it = f"pass the {what} itself" if why == "is a folder" else f"save the {what} to a file and pass that"
            raise ConfigError(f"{p}: {why}; {pass_it}")
        # O_NONBLOCK: a FIFO swapped in after the check still cannot make open() wait for a writer
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            if _not_regular(st.st_mode) is not None:
                raise ConfigError(f"{p}: is not a regular file; save the {what} to a file and pass that")
            if st.st_size > limit:
                raise _too_big(p, what, st.st_size, limit)
            data = f.read(limit + 1)  # a file that grows while it is read is still bounded
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise _too_big(p, what, None, limit)
    return data


def decode(data: bytes, p: Path | str, what: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        kind = "a binary file" if b"\0" in data[:4096] else "not UTF-8 text"
        raise ConfigError(f"{p}: {kind} (byte {exc.start}); save the {what} as UTF-8") from None


def read_text(path: Path | str, what: str, *, limit: int = MAX_BYTES) -> str:
    """A regular file's UTF-8 text (a BOM is dropped), at most `limit` bytes."""
    return decode(read_bytes(path, what, limit=limit), path, what)


def read_yaml_model(path: Path, model: type[M], what: str) -> M:
    """A YAML file read as `model`: its text (`read_text`), then one line naming the file and the first
    field that does not validate, or the YAML error."""
    import yaml
    from pydantic import ValidationError

    try:
        return model.model_validate(yaml.safe_load(read_text(path, what)))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or "(top level)"
        raise ConfigError(f"{path}: field `{field}`: {err['msg']}") from None


class InputTooLong(Exception):
    """What was piped in passed its limit before a line ended; the text so far is `text`."""

    def __init__(self, text: str, limit: int) -> None:
        super().__init__(f"more than {limit:,} characters without a line end")
        self.text, self.limit = text, limit


def read_line(prompt: str, *, limit: int, stream: TextIO | None = None) -> str:
    """One line typed or piped in, without its line end; at most `limit` characters are read.

    At a terminal this is `input()` (the terminal itself bounds a line). From a pipe or a file (`< /dev/zero`)
    a line that has not ended after `limit` characters raises InputTooLong: the caller decides what the
    text so far is worth, and nothing more is read. EOFError at the end of input, as `input()`."""
    import sys

    f = stream if stream is not None else sys.stdin
    if stream is None and f.isatty():
        return input(prompt)
    if prompt:
        print(prompt, end="", flush=True)
    line = f.readline(limit + 1)
    if not line:
        raise EOFError
    if line.endswith("\n"):
        return line[:-1].removesuffix("\r")
    if len(line) > limit:
        raise InputTooLong(line[:limit], limit)
    return line  # the last line, without a line end


def read_answer(*, limit: int, first: str | None = None, prompt: str = "you> ", more: str = "… ",
                on_line: Callable[[str], None] | None = None,
                command: Callable[[str, str], bool] | None = None) -> str:
    """Lines until an empty line (or the end of input), joined; `first`, when given, is the first line
    already read. `on_line` gets the answer so far after each line. `command` sees each line first, with
    the answer so far: a line it takes (returns True for) is not part of the answer. Piped in, an answer is
    read to at most `limit` characters: past that InputTooLong (a terminal's typist is bounded by their own
    hands)."""
    import sys

    lines: list[str] = [first] if first else []
    piped = not sys.stdin.isatty()
    used = len(first or "")
    while True:
        try:
            line = read_line(more if lines else prompt, limit=max(1, limit - used) if piped else limit)
        except EOFError:
            if lines:
                break
            raise
        except InputTooLong as exc:
            raise InputTooLong("\n".join([*lines, exc.text]), limit) from None
        if not line.strip():
            if lines:
                break
            continue
        if command is not None and command(line.strip(), "\n".join(lines)):
            continue
        lines.append(line)
        used += len(line) + 1
        if piped and used > limit:
            raise InputTooLong("\n".join(lines), limit)
        if on_line is not None:
            on_line("\n".join(lines))
    return "\n".join(lines)
