"""Every bad input a careless or unlucky user gives: one line naming the fix, the exit code in docs/cli.md, and
nothing lost or changed on disk. The cases run `coach.cli.main` in-process (the same code path as the
`coach` command); the data-loss regressions run real processes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from coach.cli import main
from tests.conftest import COACH, REPO, free_port
from tests.ggufgen import write_gguf

RUBRIC = REPO / "rubrics" / "pm_loop.yaml"
QID = "pm-broken-finetune"
GOOD = ("Loss falling and then NaN after warm-up was removed points at exploding gradients. I would plot the "
        "gradient norm against steps, restore warm-up, lower the peak rate, clip at 1.0 and resume from the last "
        "good checkpoint with an alert on gradient norm.")


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under `roots` with its hash: 'nothing changed on disk' is this, equal before and after."""
    out = {}
    for root in roots:
        if root.is_file():
            out[str(root)] = hashlib.sha256(root.read_bytes()).hexdigest()
        elif root.is_dir():
            for p in sorted(root.rglob("*")):
                # SQLite's own sidecar files (-wal, -shm) appear when any reader opens the database
                if p.is_file() and not {"cache", "logs"} & set(p.relative_to(root).parts) \
                        and not p.name.endswith(("-wal", "-shm")):
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def answers(tmp: Path, *rows: object, name: str = "a.jsonl") -> Path:
    p = tmp / name
    p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return p


def rubric_with(tmp: Path, edit: Callable[[dict], None]) -> Path:
    data = yaml.safe_load(RUBRIC.read_text(encoding="utf-8"))
    edit(data)
    p = tmp / "r.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def gguf_header(n_kv: int, kvs: bytes, n_tensors: int = 0, tensors: bytes = b"", pad: int = 64) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + kvs + tensors + b"\0" * pad


def _s(text: str) -> bytes:
    b = text.encode()
    return struct.pack("<Q", len(b)) + b


def stored_session(home: Path) -> str:
    """A session with one answered turn and one open question, made through the real store."""
    from coach.store import Store

    st = Store.open_default(home)
    sid = st.create_session("pm_loop", 1, "m", {})
    st.save_question(sid, 0, kind="ask", panelist="pm", question_id=QID, canonical="q?", spoken="q?",
                     fallback=None, timings=None)
    st.close()
    return sid


# ------------------------------------------------------------------ the table
#
# (id, setup(tmp, home) -> argv, exit code, a phrase of the one line, paths that must not change)

def _corrupt_db(kind: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        stored_session(home)
        db = home / "coach.db"
        for extra in ("coach.db-wal", "coach.db-shm"):
            (home / extra).unlink(missing_ok=True)
        data = db.read_bytes()
        db.write_bytes(data[:1000] if kind == "truncated" else os.urandom(len(data)))
        return ["sessions", "list"]
    return setup


def _home_at(where: str, *argv: str) -> Callable[[Path, Path], list[str]]:
    """COACH_HOME somewhere nobody can write (under /proc even root cannot create a folder)."""
    def setup(tmp: Path, home: Path) -> list[str]:
        os.environ["COACH_HOME"] = where  # restored by the autouse fixture's monkeypatch
        return list(argv)
    return setup


def _damaged_then(*argv: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        _corrupt_db("garbage")(tmp, home)
        return [*argv, "--port", str(free_port())]
    return setup


def _home_is_file(tmp: Path, home: Path) -> list[str]:
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("not a folder")
    return ["sessions", "list"]


def _export(out: str, make: Callable[[Path], None] | None = None) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        sid = stored_session(home)
        if make is not None:
            make(tmp)
        return ["sessions", "export", sid, "--out", out.replace("TMP", str(tmp))]
    return setup


def _grade(rubric: Callable[[Path], Path] | None = None, ans: Callable[[Path], Path] | None = None,
           cmd: str = "grade", extra: tuple[str, ...] = ()) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        r = rubric(tmp) if rubric else RUBRIC
        a = ans(tmp) if ans else answers(tmp, {"question_id": QID, "answer": GOOD})
        return [cmd, "--rubric", str(r), "--answers", str(a), *extra]
    return setup


def _bytes_file(data: bytes, name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(data)
        return p
    return make


def _folder(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        p.mkdir()
        return p
    return make


def _fifo(name: str) -> Callable[[Path], Path]:
    """A named pipe nobody writes to: reading it would wait for ever."""
    def make(tmp: Path) -> Path:
        p = tmp / name
        os.mkfifo(p)
        return p
    return make


def _sparse(name: str, size: int) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        p = tmp / name
        with p.open("wb") as f:
            f.truncate(size)
        return p
    return make


def _given(make: Callable[[Path], Path], *argv: str) -> Callable[[Path, Path], list[str]]:
    """argv with FILE replaced by the file `make` gives (a FIFO, a device, a huge file)."""
    def setup(tmp: Path, home: Path) -> list[str]:
        f = str(make(tmp))
        return [f if a == "FILE" else a for a in argv]
    return setup


def _env_file(var: str, make: Callable[[Path], Path], *argv: str) -> Callable[[Path, Path], list[str]]:
    """A catalog named by its variable (restored after the test by its monkeypatch)."""
    def setup(tmp: Path, home: Path) -> list[str]:
        os.environ[var] = str(make(tmp))
        return list(argv)
    return setup


def _dev(path: str) -> Callable[[Path], Path]:
    return lambda tmp: Path(path)


def _registry(content: str) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        (home / "models").mkdir(parents=True)
        (home / "models" / "registry.json").write_text(content)
        return ["models", "list"]
    return setup


def _add_gguf(data: bytes) -> Callable[[Path, Path], list[str]]:
    def setup(tmp: Path, home: Path) -> list[str]:
        p = tmp / "bad.gguf"
        p.write_bytes(data)
        return ["models", "add", str(p)]
    return setup


def _crafted(**kw: object) -> Callable[[Path, Path], list[str]]:
    """A well-formed GGUF whose shape numbers are ones llama.cpp aborts on (GGML_ASSERT), not errors."""
    def setup(tmp: Path, home: Path) -> list[str]:
        return ["models", "add", str(write_gguf(tmp / "crafted.gguf", tensor_bytes=1024, **kw))]  # type: ignore[arg-type]
    return setup


def _weights(where: str, value: object) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        def edit(d: dict) -> None:
            if where == "bank":
                d["default_weights"] = value
            else:
                d["questions"][0]["weights"] = value
        return rubric_with(tmp, edit)
    return make


def _scaled(what: str, n: int, cmd: str = "grade") -> Callable[[Path, Path], list[str]]:
    """A rubric of one's own, grown past a limit: `n` good exemplars, questions or exemplar characters."""
    def edit(d: dict) -> None:
        q = d["questions"][0]
        if what == "good":
            q["good"] = [f"Answer number {i} restores warm-up and clips gradients." for i in range(n)]
        elif what == "questions":
            d["questions"] = [{**q, "id": f"q{i}"} for i in range(n)]
        elif what == "chars":
            q["good"][0] = "word " * (n // 5)
        else:
            q[what] = [f"point number {i} of many" for i in range(n)]

    def setup(tmp: Path, home: Path) -> list[str]:
        r = rubric_with(tmp, edit)
        if cmd == "check":
            return ["rubric", "check", str(r)]
        return [cmd, "--rubric", str(r), "--answers", str(answers(tmp, {"question_id": QID, "answer": GOOD}))]
    return setup


def _flags(*argv: str) -> Callable[[Path, Path], list[str]]:
    return lambda tmp, home: list(argv)


def _port_busy(tmp: Path, home: Path) -> list[str]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    _BUSY.append(s)
    return ["ui", "--port", str(s.getsockname()[1])]


_BUSY: list[socket.socket] = []

_HUGE_ARRAY = gguf_header(1, _s("tokenizer.ggml.scores") + struct.pack("<I", 9) + struct.pack("<IQ", 6, 1 << 40))
_HUGE_STRING = gguf_header(1, struct.pack("<Q", 1 << 40) + b"k")
_HUGE_DIMS = gguf_header(1, _s("general.architecture") + struct.pack("<I", 8) + _s("llama"), n_tensors=1,
                         tensors=_s("token_embd.weight") + struct.pack("<I", 1 << 30) + b"\0" * 64)
_HUGE_COUNT = b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60) + b"\0" * 64
_MANY_TENSORS = b"GGUF" + struct.pack("<IQQ", 3, 1 << 20, 1) + b"\0" * 64
_MANY_KV = b"GGUF" + struct.pack("<IQQ", 3, 1, 1 << 20) + b"\0" * 64
_VOCAB_2_24 = gguf_header(1, _s("tokenizer.ggml.tokens") + struct.pack("<I", 9) + struct.pack("<IQ", 8, (1 << 24) + 1))
_LONG_STRING = gguf_header(1, _s("tokenizer.chat_template") + struct.pack("<I", 8) + struct.pack("<Q", (16 << 20) + 1))
_NO_TENSORS = gguf_header(1, _s("general.architecture") + struct.pack("<I", 8) + _s("llama"))
_NESTED = gguf_header(1, _s("x") + struct.pack("<I", 9) + (struct.pack("<IQ", 9, 1)) * 8)
_LATIN1 = "bank: caf\xe9\nquestions: []\n".encode("latin-1")

CASES: list[tuple[str, Callable[[Path, Path], list[str]], int, str]] = [
    # the database and the data folder
    ("db-truncated", _corrupt_db("truncated"), 8, "is damaged"),
    ("db-garbage", _corrupt_db("garbage"), 8, "is damaged"),
    ("home-is-a-file", _home_is_file, 7, "is a file, not a folder"),
    ("home-unwritable", _home_at("/proc/coach-home", "rehearse"), 8, "cannot create the data folder"),
    ("pull-into-unwritable-home", _home_at("/proc/coach-home", "models", "pull", "mistral-7b-instruct-v0.3"), 8,
     "cannot create /proc/coach-home"),
    ("ui-on-damaged-db", _damaged_then("ui"), 8, "is damaged"),
    # report paths
    ("export-to-folder", _export("TMP/outdir", lambda t: (t / "outdir").mkdir()), 7, "is a folder"),
    ("export-pdf", _export("TMP/r.pdf"), 7, "'.pdf' is not a report format"),
    ("export-txt", _export("TMP/r.txt"), 7, "'.txt' is not a report format"),  # was a KeyError traceback
    ("export-no-extension", _export("TMP/report"), 7, "it has no extension"),
    ("export-missing-parent", _export("TMP/nope/r.md"), 7, "does not exist"),
    ("export-unwritable", _export("/proc/coach-report.md"), 7, "/proc/coach-report.md"),
    ("export-unknown-session", _flags("sessions", "export", "no-such-id", "--out", "/tmp/x.md"), 1, "no session"),
    ("show-unknown-session", _flags("sessions", "show", "no-such-id"), 1, "no session"),
    ("debrief-pdf", _grade(cmd="debrief", extra=("--out", "r.pdf")), 7, "not a report format"),
    ("debrief-to-folder", _grade(cmd="debrief", extra=("--out", "/tmp")), 7, "is a folder"),
    ("grade-out-folder", _grade(extra=("--out", "/tmp")), 7, "is a folder"),
    ("grade-out-missing-parent", _grade(extra=("--out", "/nonexistent-dir/g.jsonl")), 7, "does not exist"),
    # rubric files
    ("rubric-binary", _grade(rubric=_bytes_file(b"\x00\x01\x02GGUF\xff" * 50, "r.yaml")), 7, "a binary file"),
    ("rubric-latin1", _grade(rubric=_bytes_file(_LATIN1, "r.yaml")), 7, "not UTF-8"),
    ("rubric-folder", _grade(rubric=_folder("rubric.yaml")), 7, "is a folder"),
    ("rubric-missing", _grade(rubric=lambda t: t / "none.yaml"), 7, "no such rubric file"),
    ("rubric-empty", _grade(rubric=_bytes_file(b"", "r.yaml")), 7, "this is empty"),
    ("rubric-a-list", _grade(rubric=_bytes_file(b"- a\n- b\n", "r.yaml")), 7, "this is list"),
    ("rubric-bad-yaml", _grade(rubric=_bytes_file(b"bank: [unclosed\n", "r.yaml")), 7, "not valid YAML"),
    ("rubric-deep-yaml", _grade(rubric=_bytes_file(b"[" * 100_000, "r.yaml")), 7, "r.yaml"),
    ("weights-nan", _grade(rubric=_weights("q", {"technical_accuracy": float("nan")})), 7, "finite"),
    ("weights-inf", _grade(rubric=_weights("q", {"technical_accuracy": float("inf")})), 7, "finite"),
    ("weights-empty", _grade(rubric=_weights("q", {})), 7, "at least one criterion"),
    ("weights-negative", _grade(rubric=_weights("q", {"technical_accuracy": -1})), 7, "non-negative"),
    ("default-weights-empty", _grade(rubric=_weights("bank", {})), 7, "at least one criterion"),
    ("default-weights-nan", _grade(rubric=_weights("bank", {"technical_accuracy": float("nan")})), 7, "finite"),
    # answers files
    ("answers-binary", _grade(ans=_bytes_file(b"\x00\xff\xfe" * 100, "a.jsonl")), 7, "a binary file"),
    ("answers-latin1", _grade(ans=_bytes_file('{"answer": "caf\xe9"}\n'.encode("latin-1"), "a.jsonl")), 7,
     "not UTF-8"),
    ("answers-folder", _grade(ans=_folder("answers.jsonl")), 7, "is a folder"),
    ("answers-missing", _grade(ans=lambda t: t / "none.jsonl"), 7, "no such answers file"),
    ("answers-not-json", _grade(ans=lambda t: answers(t, "{not json", {"question_id": QID, "answer": GOOD})), 1,
     "line 1"),
    ("answers-unknown-question", _grade(ans=lambda t: answers(t, {"question_id": "nope", "answer": GOOD},
                                                               {"question_id": QID, "answer": GOOD})), 1,
     "no question 'nope'"),
    # settings from flags and the environment
    ("ctx-negative", _flags("--ctx", "-5", "models", "list"), 7, "--ctx -5 is out of range"),
    ("ctx-zero", _flags("--ctx", "0", "models", "list"), 7, "--ctx 0 is out of range"),
    ("threads-999", _flags("--threads", "999", "models", "list"), 7, "--threads 999 is out of range"),
    ("gpu-layers-negative", _flags("--gpu-layers", "-7", "models", "list"), 7, "--gpu-layers -7"),
    ("seed-negative", _flags("--seed", "-1", "models", "list"), 7, "--seed -1"),
    ("port-99999", _flags("ui", "--port", "99999"), 7, "--port 99999 is out of range"),
    ("port-busy", _port_busy, 7, "is in use"),
    # the scale of a rubric of one's own: refused before any model loads, naming the limit
    ("grade-1000-exemplars", _scaled("good", 1000), 7, "1,000 exemplars; at most 20 of a kind"),
    ("debrief-1000-exemplars", _scaled("good", 1000, "debrief"), 7, "at most 20 of a kind"),
    ("rubric-check-1000-exemplars", _scaled("good", 1000, "check"), 7, "at most 20 of a kind"),
    ("rubric-check-5000-questions", _scaled("questions", 5000, "check"), 7,
     "5,000 questions; a rubric holds at most 200"),
    ("grade-5000-questions", _scaled("questions", 5000), 7, "at most 200"),
    ("rubric-exemplar-of-50000-chars", _scaled("chars", 50_000), 7, "more than 4,000 characters"),
    ("rubric-1000-red-flags", _scaled("red_flags", 1000, "check"), 7, "at most 20 items"),
    # the model registry and GGUF files
    ("registry-garbage", _registry("{nope"), 7, "registry is corrupt"),
    ("registry-a-list", _registry("[1, 2]"), 7, "must be a JSON object"),
    ("registry-entry-not-object", _registry('{"m": 5}'), 7, "entry 'm'"),
    ("registry-entry-no-path", _registry('{"m": {"quant": "Q4_0"}}'), 7, "entry 'm'"),
    ("gguf-2^40-array", _add_gguf(_HUGE_ARRAY), 3, "corrupt GGUF header"),
    ("gguf-2^40-string", _add_gguf(_HUGE_STRING), 3, "corrupt GGUF header"),
    ("gguf-huge-dims", _add_gguf(_HUGE_DIMS), 3, "corrupt GGUF header"),
    ("gguf-huge-counts", _add_gguf(_HUGE_COUNT), 3, "corrupt GGUF header"),
    ("gguf-nested-arrays", _add_gguf(_NESTED), 3, "corrupt GGUF header"),
    ("gguf-no-tensors", _add_gguf(_NO_TENSORS), 3, "no tensors"),
    # counts past what any real model has, and shapes llama.cpp would abort the whole process on
    ("gguf-2^20-tensors", _add_gguf(_MANY_TENSORS), 3, "no real model has more than 65,536"),
    ("gguf-2^20-kv", _add_gguf(_MANY_KV), 3, "no real model has more than 65,536"),
    ("gguf-vocab-over-2^24", _add_gguf(_VOCAB_2_24), 3, "no real model has more than 16,777,216"),
    ("gguf-string-over-16-mib", _add_gguf(_LONG_STRING), 3, "no real model has more than 16,777,216"),
    ("gguf-2^31-layers", _crafted(counts={"llama.block_count": 2**31}), 3, "llama.cpp takes 1 to 512 layers"),
    ("gguf-513-layers", _crafted(counts={"llama.block_count": 513}, layers=513), 3, "1 to 512 layers"),
    ("gguf-zero-layers", _crafted(counts={"llama.block_count": 0}), 3, "1 to 512 layers"),
    ("gguf-layers-without-tensors", _crafted(counts={"llama.block_count": 64}), 3, "with only 1 tensors"),
    ("gguf-100000-experts", _crafted(counts={"llama.block_count": 2, "llama.expert_count": 100_000,
                                              "llama.expert_used_count": 2}, layers=2), 3, "expert_count 100,000"),
    ("gguf-more-experts-used-than-exist", _crafted(counts={"llama.block_count": 2, "llama.expert_count": 8,
                                                            "llama.expert_used_count": 100}, layers=2), 3,
     "expert_used_count 100 with expert_count 8"),
    ("gguf-nextn-over-blocks", _crafted(counts={"llama.block_count": 2, "llama.nextn_predict_layers": 100},
                                        layers=2), 3, "nextn_predict_layers 100"),
    ("gguf-text", _add_gguf(b"<html>404</html>"), 3, "not a GGUF"),
    ("gguf-missing", _flags("models", "add", "/nonexistent/m.gguf"), 2, "no such file"),
    ("gguf-folder", _flags("models", "add", "/tmp"), 3, "not a regular file"),
    ("rm-unknown", _flags("models", "rm", "no-such-model"), 2, "unknown model"),
    ("rm-embedded", _flags("models", "rm", "smollm2-135m-instruct"), 1, "cannot be removed"),
    ("unknown-scenario", _flags("rehearse", "--scenario", "nope"), 7, "unknown scenario"),
    # files that never end: a FIFO waits for ever, a device is read until memory runs out (its size is 0)
    ("rubric-fifo", _grade(rubric=_fifo("r.yaml")), 7, "is a pipe (FIFO)"),
    ("rubric-dev-zero", _grade(rubric=_dev("/dev/zero")), 7, "/dev/zero: is a device"),
    ("rubric-dev-urandom", _grade(rubric=_dev("/dev/urandom")), 7, "/dev/urandom: is a device"),
    ("rubric-over-64-mib", _grade(rubric=_sparse("r.yaml", 65 * 2**20)), 7, "too large for a rubric file"),
    ("answers-fifo", _grade(ans=_fifo("a.jsonl")), 7, "is a pipe (FIFO)"),
    ("answers-dev-zero", _grade(ans=_dev("/dev/zero")), 7, "/dev/zero: is a device"),
    ("answers-dev-urandom", _grade(ans=_dev("/dev/urandom")), 7, "/dev/urandom: is a device"),
    ("rubric-check-fifo", _given(_fifo("r.yaml"), "rubric", "check", "FILE"), 7, "is a pipe (FIFO)"),
    ("rubric-check-dev-zero", _flags("rubric", "check", "/dev/zero"), 7, "is a device"),
    ("rubric-check-dev-urandom", _flags("rubric", "check", "/dev/urandom"), 7, "is a device"),
    ("users-list-fifo", _given(_fifo("users.txt"), "users", "list", "FILE"), 7, "is a pipe (FIFO)"),
    ("users-list-dev-zero", _flags("users", "list", "/dev/zero"), 7, "is a device"),
    ("users-list-dev-urandom", _flags("users", "list", "/dev/urandom"), 7, "is a device"),
    ("users-list-over-limit", _given(_sparse("users.txt", 5 * 2**20), "users", "list", "FILE"), 7,
     "too large for a users file (limit 4 MiB)"),
    ("users-add-to-fifo", _given(_fifo("users.txt"), "users", "add", "FILE", "carol", "--password-stdin"), 7,
     "is a pipe (FIFO)"),
    ("ui-users-fifo", _given(_fifo("users.txt"), "ui", "--users", "FILE"), 7, "is a pipe (FIFO)"),
    ("ui-users-dev-zero", _flags("ui", "--users", "/dev/zero"), 7, "is a device"),
    ("catalog-fifo", _env_file("COACH_CATALOG", _fifo("catalog.yaml"), "models", "list"), 7, "is a pipe (FIFO)"),
    ("catalog-dev-zero", _env_file("COACH_CATALOG", _dev("/dev/zero"), "models", "list"), 7, "is a device"),
    ("catalog-dev-urandom", _env_file("COACH_CATALOG", _dev("/dev/urandom"), "models", "list"), 7, "is a device"),
    ("catalog-folder", _env_file("COACH_CATALOG", _folder("catalog"), "models", "list"), 7, "is a folder"),
    ("voice-catalog-fifo", _env_file("COACH_VOICE_CATALOG", _fifo("voices.yaml"), "voice", "list"), 7,
     "is a pipe (FIFO)"),
    ("voice-catalog-dev-zero", _env_file("COACH_VOICE_CATALOG", _dev("/dev/zero"), "voice", "list"), 7,
     "is a device"),
    ("voice-catalog-dev-urandom", _env_file("COACH_VOICE_CATALOG", _dev("/dev/urandom"), "voice", "list"), 7,
     "is a device"),
    ("labelled-fifo", _given(_fifo("labelled.yaml"), "grader-eval", "--labelled", "FILE"), 7, "is a pipe (FIFO)"),
    ("labelled-dev-zero", _flags("grader-eval", "--labelled", "/dev/zero"), 7, "is a device"),
    ("labelled-dev-urandom", _flags("grader-eval", "--labelled", "/dev/urandom"), 7, "is a device"),
    ("transcribe-fifo", _given(_fifo("a.wav"), "voice", "transcribe", "FILE"), 7, "is a pipe (FIFO)"),
    ("transcribe-dev-zero", _flags("voice", "transcribe", "/dev/zero"), 7, "is a device"),
]


@pytest.mark.parametrize(("setup", "code", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code_and_changes_nothing(setup, code, phrase, tmp_path, capsys,
                                                                      _hermetic_home, monkeypatch):
    for var in ("COACH_CATALOG", "COACH_VOICE_CATALOG"):  # a case may set them: remembered, restored after
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    argv = setup(tmp_path, _hermetic_home)
    before = snapshot(tmp_path, _hermetic_home)
    try:
        rc = main(argv)
    finally:
        for s in _BUSY:
            s.close()
        _BUSY.clear()
    out, err = capsys.readouterr()
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("coach: skipped")]
    assert rc == code, err
    assert "Traceback" not in err + out
    assert len(lines) == 1 and lines[0].startswith("coach: error: ") or code == 1 and "skipped" in err, err
    assert phrase in err, err
    after = snapshot(tmp_path, _hermetic_home)
    if code == 1 and argv[0] == "grade":  # a skipped line: the good lines are still graded, to stdout
        assert out.count('"total"') == 1
    assert before == after, "a bad input changed files on disk"
    assert not list(tmp_path.rglob("*.tmp"))


def test_every_exit_code_the_tests_assert_is_in_the_manual():
    """docs/cli.md's table (generated from coach.errors.EXIT_CODES) names every code a test asserts and every
    code an error type carries."""
    from coach import errors

    manual = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\d+) \| ([^|]+)\|", manual, re.M))
    carried = {cls.exit_code for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, errors.CoachError)}
    for code in {c[2] for c in CASES} | {0, 9, 4, 5, 6, 70, 130} | carried:
        assert str(code) in table, f"exit code {code} is not in docs/cli.md's table"


def test_rubric_check_shows_progress(tmp_path, capsys):
    """About 20 s a question: `coach rubric check` says how far it is, a line a question when not at a
    terminal, with the time left."""
    rc = main(["rubric", "check", str(rubric_with(tmp_path, lambda d: d.update(questions=d["questions"][:2])))])
    out, err = capsys.readouterr()
    assert rc in (0, 1) and "rubric check:" in out, err
    progress = [x for x in err.splitlines() if x.startswith("coach: checked")]
    assert len(progress) == 2 and progress[0].startswith("coach: checked 1/2 questions") and "s left" in progress[0]


# ------------------------------------------------------------------ no home folder

def test_no_home_folder_asks_for_coach_home(monkeypatch, capsys):
    """HOME unset and the user unknown to the system (a container's numeric uid): Python cannot find a home
    folder. One line asking for COACH_HOME, not "RuntimeError: Could not determine home directory"."""
    import pwd

    def unknown(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")  # what an uid without a passwd entry gives

    for var in ("COACH_HOME", "HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", unknown)
    for argv in (["sessions", "list"], ["models", "list"], ["rehearse"], ["ui"]):
        assert main(argv) == 7
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "set COACH_HOME to a folder" in err and "Traceback" not in err, err


def test_an_empty_home_is_not_taken_for_the_root_folder(tmp_path):
    """HOME="" (as some service managers set it): Python would answer "/", and the coach would write
    /.local/share/coach; it asks for COACH_HOME instead. With COACH_HOME set, it works."""
    env = {k: v for k, v in os.environ.items() if k not in ("COACH_HOME", "XDG_DATA_HOME")}
    p = subprocess.run([COACH, "sessions", "list"], env={**env, "HOME": ""}, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 7 and p.stderr.count("\n") == 1 and "set COACH_HOME" in p.stderr, p.stderr
    p = subprocess.run([COACH, "sessions", "list"], env={**env, "HOME": "", "COACH_HOME": str(tmp_path / "h")},
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.startswith("ID"), p.stderr


# ------------------------------------------------------------------ answers: hygiene, length and time

def test_a_lone_surrogate_nul_and_a_50_mb_answer_are_graded_with_a_note_and_every_line_kept(tmp_path, capsys):
    big = "gradient norm warm-up clipping checkpoint " * (50 * 2**20 // 42)
    surrogate = '{"question_id": "' + QID + '", "answer": "lr \\ud800 spike"}'
    rows = [{"question_id": QID, "answer": GOOD}, surrogate,
            {"question_id": QID, "answer": "warm-up\x00removed"}, {"question_id": QID, "answer": big},
            {"question_id": QID, "answer": GOOD}]
    out = tmp_path / "grades.jsonl"
    rc = main(["grade", "--rubric", str(RUBRIC), "--answers", str(answers(tmp_path, *rows)), "--out", str(out)])
    err = capsys.readouterr().err
    grades = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert rc == 0 and len(grades) == 5
    assert "unreadable characters were replaced" in err and "cut at 20,000 characters" in err
    assert grades[0]["total"] == grades[4]["total"]  # same answer, same score
    assert any("cut at 20,000" in n for n in grades[3]["notes"])


def test_length_cannot_buy_a_score(tmp_path, capsys):
    """200,000 words against a 240 s time box: over twice the box caps every criterion."""
    huge = " ".join([GOOD] * (200_000 // len(GOOD.split())))
    rc = main(["grade", "--rubric", str(RUBRIC), "--answers",
               str(answers(tmp_path, {"question_id": QID, "answer": GOOD}, {"question_id": QID, "answer": huge}))])
    lines = capsys.readouterr().out.splitlines()
    good, long = json.loads(lines[0]), json.loads(lines[1])
    assert rc == 0 and good["total"] > 3.0
    assert long["total"] <= 2.5 and any("time box" in n for n in long["notes"])


# ------------------------------------------------------------------ data loss: regressions on real processes

def run(*args: str, input: bytes | None = None, timeout: int = 180) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([COACH, *args], input=input, capture_output=True, timeout=timeout)


def test_models_rm_never_deletes_a_users_own_file(tmp_path, embedded):
    mine = tmp_path / "mine.gguf"
    mine.write_bytes(embedded.path.read_bytes())
    p = run("models", "rm", str(mine))
    assert p.returncode == 1 and mine.exists(), p.stderr
    assert b"not a file the coach downloaded or made" in p.stderr and b"Traceback" not in p.stderr
    assert run("models", "add", str(mine), "--name", "mine").returncode == 0
    p = run("models", "rm", str(mine))  # by path, once registered: forgotten, not deleted
    assert p.returncode == 0 and mine.exists() and b"was not touched" in p.stdout


def test_a_second_resume_is_refused_and_a_take_over_makes_the_first_writer_fail_loudly(tmp_path):
    """Two windows on one session: the second is told who holds it; taking over is explicit, and the
    first window's next answer is refused instead of silently overwriting."""
    first = subprocess.Popen([COACH, "rehearse", "--scenario", "pm_loop"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert first.stdout is not None and first.stderr is not None and first.stdin is not None
        sid = ""
        while not sid:
            line = first.stderr.readline().decode()
            assert line, "rehearse ended early"
            if line.startswith("session "):
                sid = line.split()[1]
        while b"segment time" not in first.stdout.readline():  # the first question is stored
            pass
        second = run("sessions", "resume", sid, input=b"")
        assert second.returncode == 9 and b"is open in process" in second.stderr, second.stderr
        taken = run("sessions", "resume", sid, "--take-over", input=b"My answer from the second window.\n\n")
        assert b"Traceback" not in taken.stderr, taken.stderr
        out, err = first.communicate(input=b"My answer from the first window.\n\n", timeout=120)
        assert first.returncode == 9 and b"taken over" in err and b"Traceback" not in err, err
    finally:
        first.kill()
    from coach.store import Store

    turns = Store.open_default(Path(os.environ["COACH_HOME"]), readonly=True).turns(sid)
    assert turns[0]["answer"] == "My answer from the second window."  # not overwritten by the first


def test_a_non_utf8_byte_typed_at_the_prompt_keeps_the_answer(tmp_path):
    p = run("rehearse", "--scenario", "pm_loop", input=b"I would check the caf\xe9 gradient norms first.\n\n")
    assert b"Traceback" not in p.stderr, p.stderr
    assert b"not UTF-8" in p.stdout
    from coach.store import Store

    st = Store.open_default(Path(os.environ["COACH_HOME"]), readonly=True)
    sid = st.sessions()[0]["id"]
    assert st.turns(sid)[0]["answer"] == "I would check the caf\ufffd gradient norms first."


def test_rehearse_reads_at_most_one_answer_from_a_stdin_that_never_ends(tmp_path):
    """`coach rehearse < /dev/zero` grew to 2.5 GB: now at most the answer limit is read, then one line and
    the exit code in docs/cli.md for bad usage. An answer piped in whole before it is still stored."""
    from coach.store import Store

    with open("/dev/zero", "rb") as zero:
        p = subprocess.run([COACH, "rehearse", "--scenario", "pm_loop"], stdin=zero, capture_output=True, timeout=300)
    assert p.returncode == 7 and b"Traceback" not in p.stderr, p.stderr
    assert b"coach: error: stdin: an answer passed 20,000 characters without an empty line" in p.stderr
    with open("/dev/zero", "rb") as zero:  # a first answer, then a stream that never ends: the answer is kept
        feed = subprocess.Popen(["sh", "-c", f"printf '%s\\n\\n' '{GOOD}'; cat"], stdin=zero, stdout=subprocess.PIPE)
        try:
            p = subprocess.run([COACH, "rehearse", "--scenario", "pm_loop"], stdin=feed.stdout, capture_output=True,
                               timeout=300)
        finally:
            feed.kill()
            feed.wait()
    assert p.returncode == 7 and b"the session is saved up to the last answer: coach sessions resume" in p.stderr
    st = Store.open_default(Path(os.environ["COACH_HOME"]), readonly=True)
    sid = st.sessions()[0]["id"]
    assert st.turns(sid)[0]["answer"] == GOOD


def peak_rss_mb(*args: str, stdin: int | None = subprocess.DEVNULL, timeout: int = 300
                ) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `coach ARGS` under a fresh parent that reports the child's peak memory (MB)."""
    wrapper = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)")
    p = subprocess.run([sys.executable, "-c", wrapper, COACH, *args], stdin=stdin, capture_output=True, text=True,
                       timeout=timeout)
    *err, peak = p.stderr.strip().splitlines()
    return subprocess.CompletedProcess(p.args, p.returncode, p.stdout, "\n".join(err)), int(peak) / 1024


def test_a_crafted_gguf_header_is_refused_before_anything_is_allocated(tmp_path, _hermetic_home):
    """A header claiming 2^31 layers (which llama.cpp answers with GGML_ASSERT: an abort of the whole
    process) in the models folder under a catalog file's name, named with --model, and given to the loader:
    `models list` lists it and skips it as a default, `rehearse` and the loader refuse it in one line, and
    none grows past a few hundred MB (they reached 2-3 GB)."""
    from coach.models.catalog import load_catalog

    entry = next(e for e in load_catalog().models if not e.package)
    crafted = _hermetic_home / "models" / entry.files[entry.recommended].filename
    crafted.parent.mkdir(parents=True)
    write_gguf(crafted, tensor_bytes=1024, counts={"llama.block_count": 2**31})
    p, peak = peak_rss_mb("models", "list")
    assert p.returncode == 0 and f"{entry.name}:{entry.recommended}" in p.stdout and "Traceback" not in p.stderr
    assert peak < 600, f"models list peaked at {peak:.0f} MB"
    p, peak = peak_rss_mb("--model", str(crafted), "rehearse")
    assert p.returncode == 3 and p.stderr.count("\n") == 0 and "llama.cpp takes 1 to 512 layers" in p.stderr, p.stderr
    assert peak < 600, f"rehearse peaked at {peak:.0f} MB"
    loader = ("import sys\nfrom coach.engine import LlamaBackend\nfrom coach.errors import InvalidModelFile\n"
              "try:\n    LlamaBackend(sys.argv[1], n_ctx=512)\nexcept InvalidModelFile as exc:\n    print(exc)\n")
    p2 = subprocess.run([sys.executable, "-c", loader, str(crafted)], capture_output=True, text=True, timeout=120)
    assert p2.returncode == 0 and "corrupt GGUF header (block_count 2,147,483,648" in p2.stdout, p2.stderr[-2000:]


def test_a_kill_before_the_first_question_leaves_no_empty_session(embedded, tmp_path):
    """The session is stored with its first question, so nothing is left to resume when none was asked."""
    from coach.grading.grader import Grader
    from coach.interview.session import Interview
    from coach.store import Store

    class NoModel:  # the kill comes before the model speaks: nothing of the engine runs
        pass

    st = Store.open_default(Path(os.environ["COACH_HOME"]))
    Interview.start("pm_loop", backend=NoModel(), grader=Grader(), store=st, seed=1)  # type: ignore[arg-type]
    assert st.sessions() == []


def test_sessions_list_reads_without_writing(tmp_path, _hermetic_home):
    stored_session(_hermetic_home)
    for extra in ("coach.db-wal", "coach.db-shm"):
        (_hermetic_home / extra).unlink(missing_ok=True)
    before = snapshot(_hermetic_home)
    assert main(["sessions", "list"]) == 0
    assert snapshot(_hermetic_home) == before


def test_an_unexpected_failure_is_one_line_and_a_logged_trace(monkeypatch, capsys, _hermetic_home):
    def boom(args, settings):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr("coach.cli.cmd_models_list", boom)
    assert main(["models", "list"]) == 70
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError" in err
    log = _hermetic_home / "logs" / "coach-crash.log"
    assert "Traceback" in log.read_text() and "something nobody planned for" in log.read_text()


def test_the_default_model_skips_a_registered_file_that_no_longer_reads(settings, embedded, tmp_path, caplog):
    from coach.models.catalog import add, default_model

    mine = tmp_path / "mine.gguf"
    mine.write_bytes(embedded.path.read_bytes())
    add(mine, settings, name="mine")
    mine.write_bytes(mine.read_bytes()[:100_000])  # cut short after it was added
    ref = default_model(settings)
    assert ref.name != "mine" and "skipping model mine" in caplog.text


def test_a_bad_cli_environment_value_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("COACH_N_CTX", "abc")
    assert main(["models", "list"]) == 7
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "COACH_N_CTX='abc' is not an integer" in err


# ------------------------------------------------------------------ fuzz

def test_fuzz_random_bytes_and_broken_files_never_give_a_traceback(tmp_path):
    """200 random byte strings and mutated YAML, JSON and GGUF headers through `coach grade`, `coach models
    add` and the rubric loader, in a child process (a crash in native code fails the test instead of
    killing the run)."""
    script = tmp_path / "fuzz.py"
    script.write_text(FUZZ, encoding="utf-8")
    tiny = write_gguf(tmp_path / "tiny.gguf", tensor_bytes=4096)
    p = subprocess.run([sys.executable, str(script), str(tmp_path), str(RUBRIC), str(tiny)], capture_output=True,
                       text=True, timeout=900, env={**os.environ, "COACH_HOME": str(tmp_path / "fh")})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["cases"] >= 600 and summary["bad"] == [], summary


FUZZ = r'''
import contextlib, io, json, random, sys
from pathlib import Path
from coach.cli import main

tmp, rubric, tiny = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rng = random.Random(17)
good_yaml = rubric.read_bytes()
good_gguf = tiny.read_bytes()
good_jsonl = b'{"question_id": "pm-broken-finetune", "answer": "restore warm-up and clip gradients"}\n'
bad, cases = [], 0

def mutate(data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        op = rng.random()
        i = rng.randrange(len(b)) if b else 0
        if op < 0.4 and b:
            b[i] = rng.randrange(256)
        elif op < 0.7:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif b:
            del b[i:i + rng.randint(1, 64)]
    return bytes(b)

def run(argv):
    global cases
    cases += 1
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
    text = out.getvalue() + err.getvalue()
    if rc not in (0, 1, 2, 3, 4, 7) or "Traceback" in text:
        bad.append({"argv": argv[:2], "rc": rc, "out": text[-400:]})

ans, rub, model = tmp / "f.jsonl", tmp / "f.yaml", tmp / "f.gguf"
for i in range(200):
    blob = bytes(rng.randrange(256) for _ in range(rng.randint(0, 2048)))
    ans.write_bytes(blob)
    run(["grade", "--rubric", str(rubric), "--answers", str(ans)])
    rub.write_bytes(blob if i % 2 else mutate(good_yaml))
    (tmp / "ok.jsonl").write_bytes(good_jsonl)
    run(["grade", "--rubric", str(rub), "--answers", str(tmp / "ok.jsonl")])
    model.write_bytes(b"GGUF" + blob if i % 2 else mutate(good_gguf[:512]) + good_gguf[512:])
    run(["models", "add", str(model), "--name", f"fuzz{i}"])
for i in range(100):
    ans.write_bytes(mutate(good_jsonl * 3))
    run(["grade", "--rubric", str(rubric), "--answers", str(ans)])
print(json.dumps({"cases": cases, "bad": bad[:5]}))
'''
