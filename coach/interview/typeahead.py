"""The background worker that keeps the next speakers reading the candidate's answer as it is typed."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from coach.errors import CoachError

log = logging.getLogger("coach.interview.typeahead")


class TypeAhead:
    """`update(draft)` hands it the latest text (the UI on every change, the CLI on every line); it works on
    the newest draft it has, in small batches that yield at once to a turn. `stop()` cancels and joins,
    which callers must do before the model can be freed."""

    def __init__(self, read: Callable[[str, threading.Event, threading.Event], int], busy: Callable[[], bool], *,
                 interrupt: Callable[[], None] | None = None, idle_s: float = 0.05) -> None:
        """`read(draft, cancel, newer)` reads what there is to read for a draft (`Interview.type_ahead`) and
        returns the tokens it evaluated; `busy()` says a turn is waiting for the model; `interrupt()` stops
        the batch in flight (at Send, a batch of a stale draft would make the next question wait for it)."""
        self.read, self.busy, self.interrupt = read, busy, interrupt
        self._draft: str | None = ""
        self._seen: str | None = None
        self._cancel = threading.Event()
        self._wake = threading.Event()
        self._newer = threading.Event()  # a newer draft arrived while a pass was running
        self._idle_s = idle_s
        self._thread = threading.Thread(target=self._work, daemon=True, name="coach-type-ahead")
        self._wake.set()
        self._thread.start()

    def update(self, draft: str) -> None:
        self._draft = draft
        self._newer.set()
        self._wake.set()

    def _work(self) -> None:
        while not self._cancel.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            self._newer.clear()
            draft = self._draft
            if draft is None or draft == self._seen:
                continue
            try:
                n = self.read(draft, self._cancel, self._newer)
            except CoachError as exc:  # e.g. the model was switched: type-ahead is only ever an optimisation
                log.info("type-ahead stopped: %s", exc)
                return
            if n == 0 and not self._newer.is_set() and not self.busy():
                self._seen = draft  # nothing left to read for this draft
            else:
                self._wake.set()  # stopped early (a turn took the model) or more to do: go round again
            time.sleep(self._idle_s)

    def caught_up(self, draft: str) -> bool:
        """Whether everything there is to read for `draft` has been read."""
        return self._seen == draft

    def stop(self) -> None:
        self._cancel.set()
        if self.interrupt is not None:
            self.interrupt()
        self._wake.set()
        self._thread.join()


class Either:
    """Set when either event is (prefill only asks `is_set()` between batches)."""

    def __init__(self, *events: threading.Event | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)
