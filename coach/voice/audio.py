"""Audio in and out as the recognizers want it: 16 kHz mono 16-bit PCM, read from a WAV without ffmpeg."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from coach.errors import CoachError
from coach.textfiles import read_bytes

RECORDING_MAX_BYTES = 512 * 2**20  # twenty minutes of 48 kHz stereo float WAV is 440 MiB

RATE = 16_000  # what every recognizer here reads
MAX_S = 20 * 60  # twenty minutes: longer than any time box; a longer file is refused before it is read


class AudioError(CoachError):
    """A recording that cannot be read (not audio, empty, too long)."""

    exit_code = 7


def resample(x: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """Linear resampling after a moving-average low-pass (enough for speech, where little lies above 4 kHz)."""
    if rate == to or len(x) == 0:
        return x.astype(np.float32)
    if rate > to:
        k = max(1, round(rate / to))
        if k > 1:
            x = np.convolve(x, np.ones(k, dtype=np.float32) / k, mode="same")
    n = int(round(len(x) * to / rate))
    return np.interp(np.linspace(0, len(x) - 1, n), np.arange(len(x)), x).astype(np.float32)


def read(path: str | Path) -> tuple[np.ndarray, float]:
    """(samples as float32 in [-1, 1] at 16 kHz mono, duration in seconds). WAV is read directly; other
    formats (a browser's WebM or Ogg) need ffmpeg, and say so."""
    p = Path(path)
    if not p.exists():
        raise AudioError(f"no recording at {p}")
    data = read_bytes(p, "recording", limit=RECORDING_MAX_BYTES)
    if not data:
        raise AudioError(f"{p.name} is empty: record the answer again")
    if data[:4] != b"RIFF":
        data = _ffmpeg_to_wav(p)
    x, rate = _pcm(data, p.name)
    return resample(x, rate), len(x) / rate


def read_wav_bytes(data: bytes) -> np.ndarray:
    """A WAV file's bytes as float32 samples at 16 kHz mono."""
    x, rate = _pcm(data, "audio")
    return resample(x, rate)


def _pcm(data: bytes, name: str) -> tuple[np.ndarray, int]:
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, ch, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            n = min(n, len(data) // max(1, ch * width))  # a streamed WAV (espeak-ng --stdout) claims 2^31 frames
            if n / max(1, rate) > MAX_S:
                raise AudioError(f"{name} is {n / rate / 60:.0f} minutes long; an answer is at most "
                                 f"{MAX_S // 60} minutes")
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"{name} is not a readable WAV ({exc}); record or export it as WAV") from None
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128) / 128.0
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float32) / 2**31
    else:
        raise AudioError(f"{name} has {8 * width}-bit samples; save it as 16-bit WAV")
    if ch > 1:
        x = x[: len(x) - len(x) % ch].reshape(-1, ch).mean(axis=1)
    if len(x) == 0:
        raise AudioError(f"{name} holds no sound: record the answer again")
    return x, rate


def _ffmpeg_to_wav(p: Path) -> bytes:
    if shutil.which("ffmpeg") is None:
        raise AudioError(f"{p.name} is not a WAV, and reading other formats needs ffmpeg: install ffmpeg or "
                         "send a WAV")
    out = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", str(p), "-ac", "1", "-ar", str(RATE),
                          "-f", "wav", "-"], capture_output=True, timeout=120)
    if out.returncode != 0 or not out.stdout:
        raise AudioError(f"{p.name} is not audio ffmpeg can read: {out.stderr.decode(errors='replace')[:160]}")
    return out.stdout


def to_wav(x: np.ndarray, rate: int = RATE) -> bytes:
    """float32 samples as a 16-bit mono WAV file's bytes."""
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
