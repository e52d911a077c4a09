"""Reading the text files a user hands the coach (rubrics, answers): one clear line for a missing file,
a folder, a permission problem or bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

from coach.errors import ConfigError

MAX_BYTES = 64 * 2**20  # a rubric or an answers file is kilobytes; refuse before reading gigabytes


def read_text(path: Path, what: str) -> str:
    p = Path(path)
    try:
        if p.is_dir():
            raise ConfigError(f"{p}: is a folder; pass the {what} itself")
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(f"{p}: {size / 2**20:.0f} MiB is too large for a {what} (limit "
                              f"{MAX_BYTES // 2**20} MiB)")
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        kind = "a binary file" if b"\0" in data[:4096] else "not UTF-8 text"
        raise ConfigError(f"{p}: {kind} (byte {exc.start}); save the {what} as UTF-8") from None
