"""SQLite persistence of sessions and turns: named, append-only migrations; WAL; one transaction a turn.

A question is written when it is asked; the answer, its grade and the panel's next state are written
together before the next turn starts. A killed process loses at most the turn in flight.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIGRATIONS: list[tuple[str, str]] = [
    ("001_sessions_and_turns", """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY, scenario TEXT NOT NULL, seed INTEGER NOT NULL, model TEXT NOT NULL,
            status TEXT NOT NULL, state TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE turns (
            session_id TEXT NOT NULL REFERENCES sessions(id), idx INTEGER NOT NULL,
            kind TEXT NOT NULL, panelist TEXT NOT NULL, question_id TEXT, canonical TEXT NOT NULL,
            spoken TEXT NOT NULL, fallback TEXT, timings TEXT,
            answer TEXT, grade TEXT, spent_s REAL, asked REAL NOT NULL, answered REAL,
            PRIMARY KEY (session_id, idx));
    """),
    ("002_bench_runs", """
        CREATE TABLE bench_runs (id TEXT PRIMARY KEY, manifest TEXT NOT NULL, created REAL NOT NULL);
        CREATE TABLE bench_rows (
            run_id TEXT NOT NULL REFERENCES bench_runs(id), idx INTEGER NOT NULL, name TEXT NOT NULL,
            quant TEXT NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, idx));
    """),
]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    @classmethod
    def open_default(cls, home: Path) -> Store:
        return cls(home / "coach.db")

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        with self.tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied REAL NOT NULL)")
            done = {r[0] for r in db.execute("SELECT name FROM _migrations")}
            for name, sql in MIGRATIONS:
                if name not in done:
                    for stmt in filter(str.strip, sql.split(";")):
                        db.execute(stmt)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (name, time.time()))

    # ---------------------------------------------------------------- sessions

    def create_session(self, scenario: str, seed: int, model: str, state: dict[str, Any]) -> str:
        sid = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = time.time()
        with self.tx() as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, 'active', ?, ?, ?)",
                       (sid, scenario, seed, model, json.dumps(state), now, now))
        return sid

    def session(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d["state"] = json.loads(d["state"])
        return d

    def sessions(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id AND t.answer IS NOT NULL) AS answered,"
                " (SELECT AVG(json_extract(t.grade, '$.total')) FROM turns t WHERE t.session_id = s.id"
                "  AND t.grade IS NOT NULL) AS mean_total FROM sessions s ORDER BY s.created DESC").fetchall()
        return [{k: r[k] for k in r.keys() if k != "state"} for r in rows]

    def set_status(self, sid: str, status: str) -> None:
        with self.tx() as db:
            db.execute("UPDATE sessions SET status = ?, updated = ? WHERE id = ?", (status, time.time(), sid))

    # ---------------------------------------------------------------- turns

    def save_question(self, sid: str, idx: int, *, kind: str, panelist: str, question_id: str | None, canonical: str,
                      spoken: str, fallback: str | None, timings: dict[str, Any] | None) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO turns (session_id, idx, kind, panelist, question_id, canonical, spoken,"
                       " fallback, timings, asked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (sid, idx, kind, panelist, question_id, canonical, spoken, fallback,
                        json.dumps(timings) if timings else None, time.time()))

    def save_answer(self, sid: str, idx: int, *, answer: str, grade: dict[str, Any] | None, spent_s: float,
                    state: dict[str, Any], status: str = "active") -> None:
        """The answer, its grade and the panel's next state, atomically."""
        now = time.time()
        with self.tx() as db:
            cur = db.execute("UPDATE turns SET answer = ?, grade = ?, spent_s = ?, answered = ? "
                             "WHERE session_id = ? AND idx = ?",
                             (answer, json.dumps(grade) if grade else None, spent_s, now, sid, idx))
            if cur.rowcount != 1:
                raise KeyError(f"no question {idx} in session {sid}")
            db.execute("UPDATE sessions SET state = ?, status = ?, updated = ? WHERE id = ?",
                       (json.dumps(state), status, now, sid))

    def turns(self, sid: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM turns WHERE session_id = ? ORDER BY idx", (sid,)).fetchall()
        out = []
        for r in rows:
            d = dict(r)
            for k in ("grade", "timings"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    # ---------------------------------------------------------------- benchmark runs

    def save_bench(self, run_id: str, manifest: dict[str, Any], rows: list[dict[str, Any]]) -> None:
        """Replace a run's rows (called after each finished file, so an interrupted run keeps its rows)."""
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO bench_runs VALUES (?, ?, ?)", (run_id, json.dumps(manifest), time.time()))
            db.execute("DELETE FROM bench_rows WHERE run_id = ?", (run_id,))
            for i, r in enumerate(rows):
                db.execute("INSERT INTO bench_rows VALUES (?, ?, ?, ?, ?, ?)",
                           (run_id, i, r["name"], r["quant"], r["status"], json.dumps(r)))

    def bench_rows(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT data FROM bench_rows WHERE run_id = ? ORDER BY idx", (run_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
