"""Pull one file from the hub with huggingface-hub, resumable across restarts and verified.

huggingface-hub retries a dropped connection inside one call (with an HTTP Range request) but deletes
its partial file when the process dies. We keep our own `<file>.partial` in the data home's
downloads/ folder and hand it to huggingface-hub's `http_get` with the bytes we already have, so a
pull that was killed or lost the network continues where it stopped. Only a complete file whose
sha256 matches is moved (atomically) into the models directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from coach.errors import DownloadError, InsufficientDisk, StorageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def fetch(*, repo: str, revision: str, filename: str, size: int, sha256: str | None, dest: Path,
          staging: Path, progress: bool = True) -> Path:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.file_download import http_get

    for folder in (staging, dest.parent):  # before the network: a folder that cannot be made is said at once
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {folder} ({exc.strerror or exc}); set COACH_HOME to a folder "
                               "you can write") from None
    endpoint = os.environ.get("HF_ENDPOINT") or constants.ENDPOINT  # read now, not at import
    url = hf_hub_url(repo, filename, revision=revision, endpoint=endpoint)
    network_errors: tuple[type[BaseException], ...] = (*_http_errors(), HfHubHTTPError, OSError)
    try:
        meta = get_hf_file_metadata(url)
    except network_errors as exc:
        raise DownloadError(
            f"cannot reach {endpoint} for {repo}/{filename} ({type(exc).__name__}); check the network "
            "and run the same command again"
        ) from None
    expected = meta.size or size
    etag = (meta.etag or "").strip('"').lower()
    want = (sha256 or (etag if _SHA256.match(etag) else "")).lower() or None

    part = staging / f"{filename}.partial"
    have = part.stat().st_size if part.exists() else 0
    if have > expected:  # a different file of the same name: start over
        part.unlink()
        have = 0
    check_free(staging, expected - have)
    if dest.parent.resolve() != staging.resolve():
        check_free(dest.parent, 0 if _same_device(staging, dest.parent) else expected)

    try:
        with part.open("ab") as f, _progress_bars(progress):
            http_get(meta.location or url, f, resume_size=have, expected_size=expected,
                     displayed_filename=filename)
    except KeyboardInterrupt:
        raise DownloadError(f"interrupted; {part.stat().st_size:,} bytes kept, run the same command to resume") from None
    except network_errors as exc:
        kept = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"download of {filename} failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            f"{kept:,} of {expected:,} bytes kept, run the same command to resume"
        ) from None

    got = sha256_file(part)
    if want and got != want:
        part.unlink()
        raise DownloadError(
            f"checksum mismatch for {filename}: expected {want[:12]}…, got {got[:12]}…; the corrupt file was "
            "deleted, run the same command to download it again"
        )
    tmp = dest.with_name(dest.name + ".partial")
    shutil.move(str(part), tmp)  # a rename on one device; a copy otherwise, never a half file at `dest`
    os.replace(tmp, dest)
    return dest


def _http_errors() -> tuple[type[Exception], ...]:
    """huggingface-hub 2 talks through httpx2, older releases through httpx: catch whichever is there."""
    found: list[type[Exception]] = []
    for name in ("httpx2", "httpx"):
        try:
            found.append(__import__(name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def check_free(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if needed > free:
        raise InsufficientDisk(
            f"{needed / 1e9:.1f} GB needed in {directory} but only {free / 1e9:.1f} GB is free; "
            "free some space or set COACH_HOME to a larger disk"
        )


def _same_device(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 * 2**20):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    (enable_progress_bars if enabled else disable_progress_bars)()
    try:
        yield
    finally:
        (disable_progress_bars if was_disabled else enable_progress_bars)()
