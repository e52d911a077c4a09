"""The voice models `coach voice pull` fetches (whisper.cpp recognizers, piper voices), where they live
(COACH_HOME/voice/NAME/), and which recognizer and synthesizer run. Pulls go through the same resumable,
checksummed download as the GGUF models."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from coach.config import Settings
from coach.errors import ConfigError, DownloadError, InvalidModelFile, ModelNotFound
from coach.models.catalog import CATALOG_MAX_BYTES
from coach.textfiles import read_text

CATALOG = Path(__file__).resolve().parent.parent / "data" / "voices.yaml"
# best first: the recognizer used when several are pulled and none is chosen
PREFERENCE = ("whisper-small.en", "whisper-base.en", "whisper-small", "whisper-base", "whisper-tiny.en",
              "whisper-tiny")
EMBEDDED = "pocketsphinx"
VERIFIED = "verified.json"  # the size of each file once it loaded (written by `pull`)


class VoiceFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    filename: str
    size: int
    sha256: str | None = None
    sha1: str | None = None


class VoiceModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    repo: str
    revision: str
    licence: str
    languages: str
    ram_mb: int
    files: list[VoiceFile]


class VoiceCatalog(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recognizers: list[VoiceModel]
    voices: list[VoiceModel]

    def get(self, name: str) -> tuple[Literal["recognizer", "voice"], VoiceModel] | None:
        for kind, items in (("recognizer", self.recognizers), ("voice", self.voices)):
            for m in items:
                if m.name == name:
                    return kind, m  # type: ignore[return-value]
        return None

    def names(self) -> list[str]:
        return [m.name for m in (*self.recognizers, *self.voices)]


def load(path: Path | None = None) -> VoiceCatalog:
    """The voice catalog; `COACH_VOICE_CATALOG` points at another one (tests, private mirrors). Parsed once
    per file version: choosing a recognizer or a voice asks it several times per recording."""
    path = path or Path(os.environ.get("COACH_VOICE_CATALOG") or CATALOG)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _parsed(path, stamp)


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, stamp: int) -> VoiceCatalog:
    try:
        return VoiceCatalog.model_validate(yaml.safe_load(read_text(path, "voice catalog", limit=CATALOG_MAX_BYTES)))
    except ValidationError as exc:
        e = exc.errors()[0]
        raise ConfigError(f"voice catalog {path}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"voice catalog {path} cannot be read: {str(exc).splitlines()[0]}") from None


def folder(settings: Settings, name: str) -> Path:
    return settings.home / "voice" / name


def installed(settings: Settings, name: str) -> Path | None:
    """The main file (the model) of a pulled voice model, when every one of its files is there."""
    found = load().get(name)
    if found is None:
        return None
    paths = [folder(settings, name) / Path(f.filename).name for f in found[1].files]
    stamp = folder(settings, name) / VERIFIED
    try:
        sizes = json.loads(stamp.read_text())
        whole = all(p.is_file() and p.stat().st_size == sizes.get(p.name) for p in paths)
    except (OSError, ValueError, AttributeError):
        return None
    return paths[0] if whole else None  # a file cut short or changed since it was checked is not used


def pull(name: str, settings: Settings, *, progress: bool = True) -> Path:
    """Download every file of a catalog voice model: resumable, checked (sha256 from the hub, and the SHA-1
    whisper.cpp publishes), moved into place only when whole."""
    from coach.models import download

    cat = load()
    found = cat.get(name)
    if found is None:
        raise ModelNotFound(f"unknown voice model {name!r}; valid names: {', '.join(cat.names())}")
    kind, m = found
    dest_dir = folder(settings, name)
    for f in m.files:
        dest = dest_dir / Path(f.filename).name
        if dest.is_file():
            continue
        download.fetch(repo=m.repo, revision=m.revision, filename=f.filename, size=f.size, sha256=f.sha256,
                       dest=dest, staging=settings.home / "downloads", progress=progress)
        if f.sha1 and _sha1(dest) != f.sha1:
            dest.unlink()
            raise DownloadError(f"{dest.name} does not match the SHA-1 whisper.cpp publishes ({f.sha1[:12]}…); the "
                                "file was deleted, run the same command to download it again")
        if kind == "recognizer":
            from coach.voice.listen import check_whisper_file

            try:
                check_whisper_file(dest)
            except Exception:
                dest.unlink(missing_ok=True)
                raise
    main = dest_dir / Path(m.files[0].filename).name
    _test_load(kind, main)
    (dest_dir / VERIFIED).write_text(json.dumps({p.name: p.stat().st_size for p in dest_dir.iterdir()
                                                 if p.name != VERIFIED}))
    path = installed(settings, name)
    assert path is not None
    return path


def _test_load(kind: str, path: Path) -> None:
    """Load the model and run one second of silence (or one word) in a child process: whisper.cpp and
    onnxruntime can abort the whole process on a damaged file, and that must not be the coach's."""
    code = ("import sys, numpy as np; from pathlib import Path; from coach.voice.listen import Whisper; "
            "Whisper(Path(sys.argv[1])).transcribe(np.zeros(16000, dtype=np.float32))" if kind == "recognizer" else
            "import sys; from pathlib import Path; from coach.voice.speak import Piper, VoiceSpec; "
            "Piper(Path(sys.argv[1])).say('Hello.', VoiceSpec())")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1][:200]
        for p in path.parent.iterdir():
            p.unlink()
        raise InvalidModelFile(f"{path.name} does not load ({why}); it was deleted, pull it again")


def _sha1(path: Path) -> str:
    h = hashlib.sha1()  # noqa: S324 - the published pin is SHA-1; sha256 is checked too
    with path.open("rb") as f:
        while block := f.read(8 * 2**20):
            h.update(block)
    return h.hexdigest()


def remove(name: str, settings: Settings) -> list[Path]:
    d = folder(settings, name)
    gone = sorted(p for p in d.glob("*") if p.is_file()) if d.is_dir() else []
    for p in gone:
        p.unlink()
    if d.is_dir():
        d.rmdir()
    return gone


def recognizer_choice(settings: Settings, wanted: str | None = None) -> tuple[str, Path | None]:
    """(registry kind, model file) of the recognizer to run: the one asked for, else the best pulled
    whisper model, else the embedded PocketSphinx."""
    wanted = wanted or "auto"
    if wanted == EMBEDDED:
        return EMBEDDED, None
    if wanted != "auto":
        cat = load()
        if cat.get(wanted) is None or cat.get(wanted)[0] != "recognizer":  # type: ignore[index]
            names = [m.name for m in cat.recognizers]
            raise ModelNotFound(f"unknown recognizer {wanted!r}; choose {EMBEDDED} or one of: {', '.join(names)}")
        path = installed(settings, wanted)
        if path is None:
            raise ModelNotFound(f"{wanted} is not pulled yet: coach voice pull {wanted}")
        return "whisper", path
    others = [m.name for m in load().recognizers if m.name not in PREFERENCE]
    for name in (*PREFERENCE, *others):
        path = installed(settings, name)
        if path is not None:
            return "whisper", path
    return EMBEDDED, None
