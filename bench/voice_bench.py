"""Voice benchmark: how fast each recognizer hears an answer, how fast each panelist's voice is made, and
whether the spoken panel keeps up with a 7B writing the question on this machine.

(a) Recognizers. Three answers of about 10, 25 and 50 s, spoken by espeak-ng at 130 words a minute, are
    transcribed by PocketSphinx (embedded) and by whisper.cpp tiny/base/small. No whisper model can be
    downloaded here, so whisper runs files of each model's exact shape with random weights
    (`coach.voice.whisper_shape`), decoding exactly as many tokens as the real transcript would have
    (1.3 per word, end-of-text suppressed, no temperature fallback): true speed and memory, noise text.
    A pulled whisper model (`coach voice pull`) is measured too, with its word error rate. Printed: the
    real-time factor (recognizer seconds per second of audio), the time from the end of speech to the
    transcript (the browser sends the recording when Stop is pressed, so this is the whole transcription),
    and the resident memory the loaded recognizer adds.
(b) Voices. Each panelist's espeak-ng voice (and piper voice when pulled) saying a 30-word question:
    seconds to make it against seconds to say it.
(c) Keeping up with the model. The 7B's first-token time and generation speed are measured on a file of
    Mistral 7B's exact shape (`--shape`); a real 41-word question is then fed to the voice at that pace,
    sentence by sentence, and each sentence is played as soon as it is made and the one before it has
    finished: at the panelist's own pace, and paced to the model (slower, clause by clause:
    `coach.voice.service.paced`). Printed:
    the first sound after Send, and the silence the listener hears waiting on the model.

    .venv/bin/python bench/voice_bench.py [--recognizers pocketsphinx,tiny,base,small] [--shape NAME:QUANT]
                                          [--parts a,b,c]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from coach.config import Settings
from coach.interview.prompts import load_personas
from coach.voice import catalog
from coach.voice.audio import RATE, read
from coach.voice.listen import Sphinx, Whisper
from coach.voice.listen import word_error_rate as wer
from coach.voice.service import Voice, paced, spec_of
from coach.voice.speak import SentenceCutter
from coach.voice.whisper_shape import write_whisper

ANSWERS = [
    "I would ship the smaller model first, because latency matters more than accuracy for this launch.",
    "I would reproduce what the customer measured: the hardware, the prompt lengths, and whether they timed "
    "the first token or sustained decoding. If our launch claim does not hold, we correct it this week, and "
    "sales gets a comparison on the buyer's own workload, where our numbers hold.",
    "Start with the buyer. An enterprise platform team pays for predictable latency and a price they can "
    "forecast, not for a benchmark headline. So the tier is a routing and pricing choice, not an API change: "
    "the same endpoint, a quantized variant behind it, and a written limit on what it is good for. The "
    "researcher is right that the technique is not novel, and we should not claim it is. What is new is that "
    "it is dependable at this price. I would write the claim with the researcher, test it on three customer "
    "workloads, and give sales the limits in writing before the launch.",
]
QUESTION = ("You told sales the new tier is faster. A customer's engineer measured it and found the first token "
            "slower on long prompts. What exactly do you say to that engineer this week, and what do you "
            "change on the launch page?")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def recordings(folder: Path) -> list[tuple[str, Path, float]]:
    out = []
    for i, text in enumerate(ANSWERS):
        path = folder / f"answer{i}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us+f5", "-s", "130", "-w", str(path), text], check=True)
        out.append((text, path, read(path)[1]))
    return out


def bench_recognizers(names: list[str], settings: Settings, folder: Path, shapes: Path, threads: int) -> None:
    recs = recordings(folder)
    print(f"(a) recognizers, {threads} threads; answers of " + ", ".join(f"{d:.0f} s" for _, _, d in recs)
          + " (espeak-ng, 130 words a minute)")
    print(f"{'recognizer':34} {'load s':>6} {'+RSS MB':>7}  " + "  ".join(f"{'RTF':>5} {'ready s':>7}" for _ in recs)
          + f"  {'WER':>5}")
    pulled = [m.name for m in catalog.load().recognizers if catalog.installed(settings, m.name)]
    for name in [*names, *pulled]:
        before, t0 = rss_mb(), time.perf_counter()
        forced = False
        rec: Sphinx | Whisper
        if name == "pocketsphinx":
            rec, label = Sphinx(), "PocketSphinx en-us (embedded)"
        elif name in pulled:
            path = catalog.installed(settings, name)
            assert path is not None
            rec, label = Whisper(path, threads=threads), f"{name} (pulled)"
        else:
            path = shapes / f"ggml-{name}.en.shape.bin"
            if not path.exists():
                write_whisper(path, name)
            rec, label, forced = Whisper(path, threads=threads), f"whisper.cpp {name}.en (shape, random)", True
        load_s, grew = time.perf_counter() - t0, rss_mb() - before
        cells, errors = [], []
        for text, path, dur in recs:
            samples, _ = read(path)
            t0 = time.perf_counter()
            if forced and isinstance(rec, Whisper):  # random weights: decode as many tokens as real words take
                rec.decode(samples, math.ceil(1.3 * len(text.split())))
                heard = None
            else:
                heard = rec.transcribe(samples)
            took = time.perf_counter() - t0
            cells.append(f"{took / dur:5.2f} {took:7.2f}")
            if heard is not None:
                errors.append(wer(text, heard.text))
        werr = f"{sum(errors) / len(errors):5.2f}" if errors else "  n/a"
        print(f"{label:34} {load_s:6.2f} {grew:7.0f}  " + "  ".join(cells) + f"  {werr}", flush=True)
        del rec


def bench_voices(settings: Settings) -> None:
    voice = Voice(settings)
    print(f"\n(b) voices: a {len(QUESTION.split())}-word question")
    print(f"{'panelist':12} {'voice':34} {'make s':>6} {'say s':>6} {'RTF':>5}")
    for key, p in load_personas().items():
        spec = spec_of(p)
        synth = voice.synth_for(spec)
        t0 = time.perf_counter()
        x = synth.say(QUESTION, spec)
        made = time.perf_counter() - t0
        print(f"{key:12} {voice.synth_name(p):34} {made:6.2f} {len(x) / RATE:6.2f} {made / (len(x) / RATE):5.2f}")


def bench_keep_up(shape: str, settings: Settings) -> None:
    from coach.bench.ladder import bench_file
    from coach.engine import LlamaBackend

    ref = bench_file(settings, shape)
    be = LlamaBackend(ref.path, n_ctx=2048, n_threads=settings.n_threads, seed=1)
    prompt = [{"role": "system", "content": "You are an interviewer."}, {"role": "user", "content": "Ask."}]
    list(be.stream("warm", prompt, max_tokens=4))
    list(be.stream("s", prompt, max_tokens=64, temperature=0.0))
    t = be.timings
    assert t is not None
    tokens = be.tokenize_text(QUESTION)
    pieces = [be.text_of(tokens[:i + 1]) for i in range(len(tokens))]
    be.close()
    print(f"\n(c) keeping up with {ref.path.name}: first token {t.ttft_s:.2f} s, {t.gen_tokens_per_s:.1f} tok/s "
          f"generation ({settings.n_threads} threads); a {len(QUESTION.split())}-word question is {len(tokens)} tokens")
    personas = load_personas()
    voice = Voice(settings)
    for key in ("researcher", "gtm", "pm"):
        own = spec_of(personas[key])
        slow = paced(own, t.gen_tokens_per_s)
        for label, spec, clauses in (("own pace", own, False), ("paced to the model", slow, slow.rate < own.rate)):
            first, silence, spoken = _play(voice.synth_for(spec), spec, pieces, t.ttft_s, t.gen_tokens_per_s, clauses)
            written = t.ttft_s + len(tokens) / t.gen_tokens_per_s
            print(f"  {key:10} {label:18} {spec.rate} wpm: first sound {first:5.2f} s after Send (first word on "
                  f"screen {t.ttft_s:.2f} s); written by {written:5.2f} s, spoken by {spoken:5.2f} s; silence "
                  f"waiting on the model between sentences {silence:4.2f} s")


def _play(synth, spec, pieces: list[str], ttft: float, tps: float,  # noqa: ANN001
          clauses: bool) -> tuple[float, float, float]:
    """(first sound, silence between sentences, end of speech) when token i arrives at ttft + i / tps and
    each sentence plays once it is made and the one before it has ended."""
    cut, sentences, prev = SentenceCutter(clauses), [], ""
    for i, text in enumerate(pieces):  # a sentence is whole when its last token arrives
        sentences += [(ttft + i / tps, s) for s in cut.feed(text[len(prev):])]
        prev = text
    sentences += [(ttft + len(pieces) / tps, s) for s in cut.flush()]
    clock, silence, first = 0.0, 0.0, None
    for at, s in sentences:
        t0 = time.perf_counter()
        x = synth.say(s, spec)
        start = max(clock, at + time.perf_counter() - t0)
        if first is None:
            first = start
        else:
            silence += start - clock
        clock = start + len(x) / RATE
    return first or 0.0, silence, clock


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recognizers", default="pocketsphinx,tiny,base,small")
    ap.add_argument("--shape", default="mistral-7b-instruct-v0.3:Q4_K_M",
                    help="the file whose speed the voice must keep up with ('' to skip)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--parts", default="a,b,c", help="which parts to run: a (recognizers), b (voices), c (keeping up)")
    args = ap.parse_args()
    settings = Settings.from_env()
    threads = args.threads or settings.n_threads
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
          f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM; python {sys.version.split()[0]}")
    parts = set(args.parts.split(","))
    shapes = settings.home / "shapes"  # the random-weight whisper files are written once and kept
    shapes.mkdir(parents=True, exist_ok=True)
    if "a" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            names = [n.strip() for n in args.recognizers.split(",") if n.strip()]
            bench_recognizers(names, settings, Path(tmp), shapes, threads)
    if "b" in parts:
        bench_voices(settings)
    if "c" in parts and args.shape:
        bench_keep_up(args.shape, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
