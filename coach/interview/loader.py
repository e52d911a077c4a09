"""The one way a backend is built from `Settings`, and the holder that swaps the loaded model safely.

The UI and the CLI load through `load_backend` (the benchmark scripts, which measure the in-process engine,
through `load_local` beneath it), so a setting (context, threads, GPU layers, seed, KV type, a model
server's address) reaches the engine by one route.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coach.config import Settings
from coach.engine import ChatBackend, LlamaBackend, Message
from coach.errors import CoachError
from coach.models.catalog import ModelRef, resolve

if TYPE_CHECKING:
    from coach.grading.rubrics import Bank
    from coach.interview.prompts import Persona, Scenario

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerRef:
    """The model a model server serves: what the UI and CLI show in place of a local file."""

    url: str
    what: str = ""  # the server's own description, once connected

    @property
    def name(self) -> str:
        return f"server:{self.url}"

    is_embedded = False

    def describe(self) -> str:
        return self.what or f"the model server at {self.url}"


def target(settings: Settings) -> ModelRef | ServerRef:
    """What the settings run: a model server (`--backend`) or a local GGUF."""
    return ServerRef(settings.backend) if settings.backend else resolve(settings.model, settings)


def load_backend(settings: Settings, ref: ModelRef | ServerRef | None = None, **engine: Any) -> ChatBackend:
    """A model server when the settings name one, else `ref` (default: the model the settings name, else
    the best installed) with the settings' context, threads, GPU layers and seed; `engine` overrides one
    of them or passes another engine option (a benchmark's `slots=1`)."""
    ref = ref or target(settings)
    if isinstance(ref, ServerRef):
        from coach.engine.remote import RemoteBackend

        return RemoteBackend(ref.url, api_key=settings.backend_key)  # vLLM/llama-server --api-key
    return load_local(settings, ref, **engine)


def load_local(settings: Settings, ref: ModelRef | None = None, **engine: Any) -> LlamaBackend:
    """The in-process llama.cpp engine for `ref` (default: the model the settings name, else the best
    installed), with the settings' context, threads, GPU layers and seed; what the benchmarks measure."""
    ref = ref or resolve(settings.model, settings)
    opts: dict[str, Any] = {"n_ctx": settings.n_ctx, "n_threads": settings.n_threads,
                            "n_gpu_layers": settings.n_gpu_layers, "seed": settings.seed,
                            "kv_type": settings.kv_cache, **engine}
    return LlamaBackend(ref.path, **opts)


def describe(ref: ModelRef | ServerRef, backend: Any) -> str:
    """The model running: a local file's title, or what the model server says it serves."""
    return backend.describe() if isinstance(ref, ServerRef) else ref.describe()


def _packaged() -> list[tuple[Scenario, Bank, dict[str, Persona]]]:
    from coach.grading.rubrics import load_all
    from coach.interview.prompts import load_personas, load_scenarios

    personas, banks = load_personas(), load_all()
    return [(sc, banks[sc.rubric], personas) for sc in load_scenarios(personas=personas, banks=banks).values()]


def opening_cards(scenarios: list[tuple[Scenario, Bank, dict[str, Persona]]] | None = None) -> list[Message]:
    """Every card a scenario's threads open with (default: the packaged ones): each persona's card for that
    scenario (a session warms all three) and the committee chair's: 5 scenarios x 4 cards."""
    from coach.interview.threads import Hearing

    cards: list[Message] = []
    for sc, bank, personas in scenarios or _packaged():
        hearing = Hearing(sc, bank, personas)
        cards += [hearing.thread(p)[0] for p in personas] + [hearing.committee()[0]]  # as warm_up reads them
    return cards


def openings(scenarios: list[tuple[Scenario, Bank, dict[str, Persona]]] | None = None) -> list[list[Message]]:
    """The whole first prompt of every session a scenario can open (default: the packaged ones): its first
    speaker's card and first turn, for each segment the seeded order may put first. Read at load, they make
    the first session on a new model start as fast as a returning user's."""
    from coach.interview.panel import Panel, PanelState
    from coach.interview.threads import Hearing

    out: list[list[Message]] = []
    for sc, bank, personas in scenarios or _packaged():
        panel = Panel(sc, bank, personas)
        n = len(sc.segments)
        for first in range(n) if sc.shuffle_segments else range(min(1, n)):
            state = PanelState(order=[first, *(i for i in range(n) if i != first)])
            action = panel.next_action(state)
            out.append(Hearing(sc, bank, personas).messages(action, state))  # as `Interview.ask` builds it
    return out


def read_ahead(backend: LlamaBackend, cache_dir: Path, scenarios: list[tuple[Scenario, Bank, dict[str, Persona]]]
               | None = None, cancel: threading.Event | None = None) -> int:
    """Into the on-disk prefix cache, while nobody waits: every opening card, then every session's whole
    opening prompt. What is there already is skipped; a turn takes the model between batches. Returns tokens."""
    scenarios = scenarios or _packaged()
    n = backend.read_cards(opening_cards(scenarios), cache_dir, cancel=cancel)
    for i, messages in enumerate(openings(scenarios)):
        if cancel is not None and cancel.is_set():
            break
        n += backend.warm(f"openings/{i}", messages, cache_dir, whole=True, cancel=cancel)
        backend.forget(f"openings/{i}")
    return n


def read_cards_in_background(backend: Any, settings: Settings) -> threading.Event:
    """Read every opening card and opening prompt into the on-disk prefix cache while nobody waits (a model
    was just loaded), so the first session on a new model reads nothing at Start. Returns the event that
    stops it."""
    stop = threading.Event()
    if not isinstance(backend, LlamaBackend):
        return stop

    def run() -> None:
        try:
            n = read_ahead(backend, settings.kv_cache_dir, cancel=stop)
            log.info("read %d tokens of persona cards and openings for %s", n, backend.info.path.name)
        except CoachError as exc:  # a model unloaded under it, a card the model cannot hold: Start reads it
            log.info("persona cards not read ahead: %s", exc)

    threading.Thread(target=run, name="coach-read-cards", daemon=True).start()
    return stop


class ModelHolder:
    """The one loaded model that every browser tab shares. `use(name)` loads another one and only then
    swaps it in under a lock, so a failed load leaves the running model in place. With a model server
    the server holds the model, and `use` refuses another. A model the holder loads reads every scenario's
    persona cards in the background at once, before anyone presses Start (not the embedded demo model: it
    reads a card at Start in about a second)."""

    def __init__(self, settings: Settings, backend: ChatBackend | None = None) -> None:
        self.settings = settings
        ref = target(settings)
        self.backend: Any = backend or load_backend(settings, ref)
        # the embedded demo model reads a card at Start in about a second: only real models read ahead
        self._cards = read_cards_in_background(self.backend, settings) if backend is None and not ref.is_embedded \
            else threading.Event()
        if isinstance(ref, ServerRef):
            ref = ServerRef(ref.url, describe(ref, self.backend))
        self.ref: ModelRef | ServerRef = ref
        self._lock = threading.Lock()

    @property
    def remote(self) -> bool:
        return isinstance(self.ref, ServerRef)

    def use(self, name: str) -> None:
        if not name or name == self.ref.name:
            return
        if isinstance(self.ref, ServerRef):
            raise CoachError(f"this coach runs on the model server at {self.ref.url}; the model is chosen there "
                             "(restart the coach without --backend to pick a local one)")
        with self._lock:
            ref = resolve(name, self.settings)
            backend = load_backend(self.settings, ref)
            old, self.backend, self.ref = self.backend, backend, ref
            self._cards.set()
            old.close()
            self._cards = read_cards_in_background(backend, self.settings) if not ref.is_embedded else threading.Event()

    def describe(self) -> str:
        return self.ref.describe()
