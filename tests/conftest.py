from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from coach.config import Settings
from coach.models.catalog import ModelRef, resolve

REPO = Path(__file__).resolve().parent.parent
# the tiny shape of every Mistral-format test file (tests/test_formats.py's fixtures, `tiny_mistral`)
TINY = dict(n_layer=2, n_embd=64, n_head=4, n_head_kv=2, n_ff=128, n_vocab=32768, context_length=8192)
COACH = str(Path(sys.executable).with_name("coach"))


@pytest.fixture(scope="session")
def _prefix_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One on-disk prefix cache for the whole run: evaluated persona cards are keyed by the model file and
    their exact tokens, so every session after the first that opens with a card loads it instead of reading
    it again (about 16 s of a whole session on the embedded model, two cores)."""
    return tmp_path_factory.mktemp("prefix-cache")


@pytest.fixture(scope="session", autouse=True)
def _grader_cache(tmp_path_factory: pytest.TempPathFactory, _prefix_cache: Path) -> Iterator[Path]:
    """One grader cache for the whole run: exemplar vectors and calibrations are keyed by their content and
    by the scoring code's own bytes, so sharing them changes no score, and the `coach` processes the tests
    start (grader-eval, rubric check, the UI) stop recomputing them for every data home. Set for the whole
    session, so the servers that module fixtures start (before any test's own environment) share it too."""
    path = tmp_path_factory.mktemp("grader-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COACH_GRADER_CACHE", str(path))
        mp.setenv("COACH_PREFIX_CACHE", str(_prefix_cache))
        yield path


@pytest.fixture(autouse=True)
def _hermetic_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _grader_cache: Path, _prefix_cache: Path) -> Path:
    """Every test gets its own data home: no test sees a user's sessions or models."""
    home = tmp_path / "home"
    monkeypatch.setenv("COACH_HOME", str(home))
    monkeypatch.setenv("COACH_GRADER_CACHE", str(_grader_cache))
    monkeypatch.setenv("COACH_PREFIX_CACHE", str(_prefix_cache))
    monkeypatch.delenv("COACH_MODEL", raising=False)
    monkeypatch.delenv("COACH_CATALOG", raising=False)
    # `coach.cli.main` sets the hub's offline switches in os.environ, as the `coach` process does; a test
    # that calls it in-process must not leave them to later tests (their `coach models pull` children
    # would inherit them), and huggingface_hub, which reads them once at import, must not first be
    # imported under them.
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        monkeypatch.setenv(name, "")  # remembered as they were, restored after the test
        monkeypatch.delenv(name)
    import huggingface_hub.constants  # noqa: F401
    return home


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def embedded() -> ModelRef:
    return resolve("smollm2-135m-instruct", Settings.from_env())


@pytest.fixture(scope="session")
def backend(embedded: ModelRef):
    from coach.engine import LlamaBackend

    be = LlamaBackend(embedded.path, n_ctx=2048, n_threads=2, seed=7)
    yield be
    be.close()


@pytest.fixture(scope="session")
def grader(_grader_cache: Path):
    """The real grader (all-MiniLM-L6-v2), its vectors and calibrations in the run's shared cache."""
    from coach.grading.grader import Grader

    return Grader(cache_dir=_grader_cache)


def sigint_default() -> None:
    """preexec_fn for a child the test will Ctrl-C: a shell that starts jobs in the background leaves
    SIGINT ignored, the child inherits that, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_path() -> str | None:
    """Debian's chromium; CI sets COACH_REQUIRE_BROWSER=1 so a missing browser fails instead of skipping."""
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None and os.environ.get("COACH_REQUIRE_BROWSER") == "1":
        pytest.fail("COACH_REQUIRE_BROWSER=1 but chromium is not installed (apt-get install -y chromium)")
    return path


@pytest.fixture(scope="module")
def world():
    """The shipped personas, rubric banks and scenarios (the panel's rules are tested on them)."""
    from coach.grading.rubrics import load_all
    from coach.interview.prompts import load_personas, load_scenarios
    personas, banks = load_personas(), load_all()
    return personas, banks, load_scenarios(personas=personas, banks=banks)


@pytest.fixture(scope="session")
def tiny_mistral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer, 64-wide GGUF in Mistral Small 3's format (v7 tokenizer, its chat template), random weights:
    the real llama.cpp engine and Mistral's rendering, at about a tenth of the embedded 135M model's cost a
    turn. For tests of a session's flow (storage, resume, signals, privacy, voice), where what the model says
    does not matter: its text is noise, so every turn ends in the written question. Tests of what a model
    says, and the whole session on the real models, stay on the embedded model. Run it on one thread
    (`tiny_env`): a second one only waits at llama.cpp's barriers, and spins when the machine is busy."""
    from coach.models.shapes import Shape, write_shape

    shape = Shape(**TINY, tokenizer="v7")  # type: ignore[arg-type]
    return write_shape(tmp_path_factory.mktemp("tiny") / "tiny-mistral-v7.gguf", shape, "F16",
                       chat_format="mistral-v7")


@pytest.fixture(scope="session")
def tiny_backend(tiny_mistral: Path):
    """The engine on `tiny_mistral`, for in-process tests of a session's flow."""
    from coach.engine import LlamaBackend

    be = LlamaBackend(tiny_mistral, n_ctx=4096, n_threads=1, seed=7)  # a second thread only waits at barriers
    yield be
    be.close()


def tiny_env(tiny_mistral: Path) -> dict[str, str]:
    """The variables that make a `coach` process run `tiny_mistral`, on one thread."""
    return {"COACH_MODEL": str(tiny_mistral), "COACH_N_THREADS": "1"}
