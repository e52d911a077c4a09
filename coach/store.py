"""SQLite persistence of sessions and turns: named, append-only migrations; WAL; one transaction a turn.

A question is written when it is asked; the answer, its grade and the panel's next state are written
together before the next turn starts. A killed process loses at most the turn in flight.

One writer per session: whoever starts or resumes a session holds its lease (process, host, a token per
window), and every write checks it. A second resume is refused while the holder lives, or takes over
explicitly; turns are plain inserts and an answer fills only an unanswered question, so a writer that
lost its lease fails loudly instead of overwriting.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coach.errors import CoachError, SessionBusy, StorageError

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
    ("003_session_leases", """
        CREATE TABLE leases (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id), holder TEXT NOT NULL, pid INTEGER NOT NULL,
            host TEXT NOT NULL, since REAL NOT NULL, seen REAL NOT NULL);
    """),
    ("004_session_owner", """
        ALTER TABLE sessions ADD COLUMN owner TEXT NOT NULL DEFAULT '';
        CREATE INDEX sessions_by_owner ON sessions(owner, created);
    """),
    ("005_session_options", """
        ALTER TABLE sessions ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
    """),
    ("006_retries", """
        CREATE TABLE retries (
            session_id TEXT NOT NULL REFERENCES sessions(id), idx INTEGER NOT NULL, answer TEXT NOT NULL,
            grade TEXT NOT NULL, created REAL NOT NULL);
        CREATE INDEX retries_by_session ON retries(session_id, idx, created);
    """),
]
STATUSES = ("active", "abandoned", "finished")  # abandoned: left unfinished on purpose; it can still be resumed

HOST = socket.gethostname()
STALE_S = 30 * 60  # a holder on another host that has not written for this long is presumed gone


def new_session_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def new_holder() -> str:
    """A lease token for one window (a CLI run, a UI tab)."""
    return f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _alive(pid: int, host: str, seen: float) -> bool:
    if host != HOST:
        return time.time() - seen < STALE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock = threading.RLock()
        try:
            self._db = self._connect(path, readonly)
            self._db.row_factory = sqlite3.Row
            if not readonly:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute("PRAGMA foreign_keys=ON")
                self._migrate()
            else:
                self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()  # fails now if it is not ours
        except sqlite3.Error as exc:
            raise storage_error(path, exc) from None

    @staticmethod
    def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
        if readonly and not path.exists():  # nothing stored yet: an empty database in memory
            db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            for _, sql in MIGRATIONS:
                db.executescript(sql)
            return db
        if readonly:
            uri = path.resolve().as_uri()
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, isolation_level=None,
                                 timeout=30)
            try:
                db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
                return db
            except sqlite3.OperationalError:  # a read-only folder: no WAL index can be made, so nobody can
                db.close()                    # be writing either; read the file as it stands
                return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False,
                                       isolation_level=None)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the data folder {path.parent} ({exc.strerror or exc}); "
                               "set COACH_HOME to a folder you can write") from None
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)

    @classmethod
    def open_default(cls, home: Path, *, readonly: bool = False) -> Store:
        return cls(home / "coach.db", readonly=readonly)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; SQLite's own errors (a full disk, a read-only file, corruption found
        mid-session) become one line with the fix, and nothing of the transaction is kept."""
        if self.readonly:
            raise StorageError(f"{self.path} was opened read-only")
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise storage_error(self.path, exc) from None
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.IntegrityError):
                    raise storage_error(self.path, exc) from None
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

    def create_session(self, scenario: str, seed: int, model: str, state: dict[str, Any],
                       holder: str | None = None, session_id: str | None = None, owner: str = "",
                       options: dict[str, Any] | None = None) -> str:
        """A new session of `owner` ("" on a coach without sign-in), leased to `holder` (when given) in the
        same transaction. `options`: how the front end ran it (coach mode), so a resume runs it the same way."""
        sid = session_id or new_session_id()
        now = time.time()
        with self.tx() as db:
            db.execute("INSERT INTO sessions (id, scenario, seed, model, status, state, created, updated, owner,"
                       " options) VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)",
                       (sid, scenario, seed, model, json.dumps(state), now, now, owner, json.dumps(options or {})))
            if holder is not None:
                db.execute("INSERT INTO leases VALUES (?, ?, ?, ?, ?, ?)", (sid, holder, os.getpid(), HOST, now, now))
        return sid

    def acquire(self, sid: str, holder: str, *, take_over: bool = False) -> None:
        """Lease `sid` to `holder`: refused while another live holder has it, unless `take_over`."""
        now = time.time()
        with self.tx() as db:
            row = db.execute("SELECT * FROM leases WHERE session_id = ?", (sid,)).fetchone()
            if row is not None and row["holder"] != holder and not take_over \
                    and _alive(row["pid"], row["host"], row["seen"]):
                where = "this process (another tab)" if row["pid"] == os.getpid() and row["host"] == HOST \
                    else f"process {row['pid']} on {row['host']}"
                ago = int(now - row["seen"])
                raise SessionBusy(f"session {sid} is open in {where}, last written {ago // 60} min {ago % 60} s "
                                  "ago; finish or close it there, or take it over (`coach sessions resume "
                                  f"{sid} --take-over`, or the UI's take-over box)")
            db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                       (sid, holder, os.getpid(), HOST, now, now))

    def release(self, sid: str, holder: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM leases WHERE session_id = ? AND holder = ?", (sid, holder))

    def held_by(self, holder: str, owner: str | None = None) -> list[str]:
        """The unfinished sessions leased to `holder` (one browser's), newest first."""
        where, args = (" AND s.owner = ?", (holder, owner)) if owner is not None else ("", (holder,))
        with self._lock:
            rows = self._db.execute("SELECT s.id FROM sessions s JOIN leases l ON l.session_id = s.id WHERE "
                                    f"l.holder = ? AND s.status != 'finished'{where} ORDER BY s.updated DESC",
                                    args).fetchall()
        return [r[0] for r in rows]

    def set_status(self, sid: str, status: str) -> None:
        """Mark a session abandoned (left on purpose, still resumable) or active again; never un-finish one."""
        if status not in STATUSES or status == "finished":
            raise CoachError(f"a session can be marked {' or '.join(STATUSES[:2])}, not {status!r}")
        with self.tx() as db:
            db.execute("UPDATE sessions SET status = ? WHERE id = ? AND status != 'finished'", (status, sid))

    def delete_session(self, sid: str) -> None:
        """A session, its turns, retries and lease, gone for good."""
        with self.tx() as db:
            for table in ("retries", "turns", "leases"):
                db.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
            db.execute("DELETE FROM sessions WHERE id = ?", (sid,))

    def holder(self, sid: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT holder FROM leases WHERE session_id = ?", (sid,)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _check_lease(db: sqlite3.Connection, sid: str, holder: str | None) -> None:
        if holder is None:
            return
        row = db.execute("SELECT holder, pid, host FROM leases WHERE session_id = ?", (sid,)).fetchone()
        if row is None or row["holder"] != holder:
            by = "" if row is None else " in another tab" if row["pid"] == os.getpid() and row["host"] == HOST \
                else f" by process {row['pid']} on {row['host']}"
            raise SessionBusy(f"session {sid} was taken over{by}; this window's last step was not saved. "
                              "Go on in the window that holds it")
        db.execute("UPDATE leases SET seen = ? WHERE session_id = ?", (time.time(), sid))

    def session(self, sid: str, owner: str | None = None) -> dict[str, Any] | None:
        """One session; with `owner`, only if it is theirs (another user's reads as none)."""
        with self._lock:
            row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
        if row is None:
            return None
        d = dict(row)
        d.setdefault("owner", "")  # a database opened read-only before its owner migration
        if owner is not None and d["owner"] != owner:
            return None
        d["state"] = json.loads(d["state"])
        d["options"] = json.loads(d.get("options") or "{}")
        return d

    def sessions(self, owner: str | None = None) -> list[dict[str, Any]]:
        """Every session, newest first; with `owner`, only theirs."""
        where, args = ("WHERE s.owner = ?", (owner,)) if owner is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                "SELECT s.*, (SELECT COUNT(*) FROM turns t WHERE t.session_id = s.id AND t.answer IS NOT NULL"
                " AND t.kind != 'close') AS answered,"
                " (SELECT AVG(json_extract(t.grade, '$.total')) FROM turns t WHERE t.session_id = s.id"
                f"  AND t.grade IS NOT NULL) AS mean_total FROM sessions s {where} ORDER BY s.created DESC",
                args).fetchall()
        return [{**{k: r[k] for k in r.keys() if k not in ("state", "options")},
                 "options": json.loads(r["options"] or "{}")} for r in rows]

    # ---------------------------------------------------------------- turns

    def save_question(self, sid: str, idx: int, *, kind: str, panelist: str, question_id: str | None, canonical: str,
                      spoken: str, fallback: str | None, timings: dict[str, Any] | None,
                      holder: str | None = None) -> None:
        """Append a question. A plain insert: a second writer at the same turn fails instead of replacing."""
        with self.tx() as db:
            self._check_lease(db, sid, holder)
            try:
                db.execute("INSERT INTO turns (session_id, idx, kind, panelist, question_id, canonical, spoken,"
                           " fallback, timings, asked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (sid, idx, kind, panelist, question_id, canonical, spoken, fallback,
                            json.dumps(timings) if timings else None, time.time()))
            except sqlite3.IntegrityError:
                raise SessionBusy(f"session {sid} already has a question {idx + 1}: another window moved it on; "
                                  "resume it again to see where it is") from None

    def save_answer(self, sid: str, idx: int, *, answer: str, grade: dict[str, Any] | None, spent_s: float,
                    state: dict[str, Any], status: str = "active", holder: str | None = None) -> None:
        """The answer, its grade and the panel's next state, atomically; only into an unanswered question."""
        now = time.time()
        with self.tx() as db:
            self._check_lease(db, sid, holder)
            cur = db.execute("UPDATE turns SET answer = ?, grade = ?, spent_s = ?, answered = ? "
                             "WHERE session_id = ? AND idx = ? AND answer IS NULL",
                             (answer, json.dumps(grade) if grade else None, spent_s, now, sid, idx))
            if cur.rowcount != 1:
                exists = db.execute("SELECT 1 FROM turns WHERE session_id = ? AND idx = ?", (sid, idx)).fetchone()
                if exists:
                    raise SessionBusy(f"question {idx + 1} of session {sid} was already answered in another "
                                      "window; this answer was not saved")
                raise CoachError(f"no question {idx + 1} in session {sid}")
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

    def save_retry(self, sid: str, idx: int, answer: str, grade: dict[str, Any]) -> None:
        """A new answer to turn `idx`'s question, graded; the stored answer and its grade stay as they were."""
        with self.tx() as db:
            if db.execute("SELECT 1 FROM turns WHERE session_id = ? AND idx = ?", (sid, idx)).fetchone() is None:
                raise CoachError(f"no question {idx + 1} in session {sid}")
            db.execute("INSERT INTO retries VALUES (?, ?, ?, ?, ?)", (sid, idx, answer, json.dumps(grade), time.time()))

    def retries(self, sid: str) -> dict[int, list[dict[str, Any]]]:
        """Every retry of the session's questions, oldest first, by turn index."""
        with self._lock:
            try:
                rows = self._db.execute("SELECT idx, answer, grade, created FROM retries WHERE session_id = ? "
                                        "ORDER BY created", (sid,)).fetchall()
            except sqlite3.OperationalError:  # a database opened read-only before the retries migration
                return {}
        out: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault(r["idx"], []).append({"answer": r["answer"], "grade": json.loads(r["grade"]),
                                                 "created": r["created"]})
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

    def close(self) -> None:
        with self._lock:
            self._db.close()


def storage_error(path: Path, exc: sqlite3.Error) -> StorageError:
    """SQLite's error as one line that says what to do; the database is never moved or rewritten here."""
    msg = str(exc)
    if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in msg or "malformed" in msg
                                                   or "corrupt" in msg):
        return StorageError(f"{path} is damaged ({msg}); your sessions are in it, so nothing was changed. "
                            f"Keep a copy, then move it aside (mv {path} {path}.broken) to start a new one")
    if "readonly" in msg or "read-only" in msg or "unable to open" in msg or "disk I/O" in msg:
        return StorageError(f"{path}: cannot write ({msg}); make {path.parent} and the file writable, "
                            "or set COACH_HOME to a folder you can write")
    if "locked" in msg or "busy" in msg:
        return StorageError(f"{path} is locked by another process ({msg}); try again in a moment")
    if "full" in msg:
        return StorageError(f"{path}: the disk is full ({msg}); free some space and try again")
    return StorageError(f"{path}: database error ({msg})")
