"""The state file (``--state FILE``): what a restarted server has back. SQLite, stdlib only.

The room reports what must be kept as :class:`~chatroom.server.core.actions.Persist` actions;
the adapter hands them to :meth:`StateStore.put`, which only hands them over: one worker
thread owns the database connection and writes them, so the event loop never waits for
the disk (what waits is bounded: see :meth:`StateStore.put`). Each is committed as soon as
the thread takes it. Chat comes as the room's whole history, which the adapter asks the
room for every ``state_flush`` seconds (``Room.history_due``): a ``kill -9`` loses at most
that much chat; a ban, an unban, a mute or a topic comes as it is made, so none is lost
once it is written.

The file is read once, at start, before the server listens (:meth:`StateStore.open`), and
closed on shutdown after the last batch is committed. The database is in WAL mode with
``synchronous=NORMAL``: a commit survives the process being killed (the operating system
holds what was written); only a crash of the machine itself can lose the last commits.
Its schema is versioned with ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import sqlite3
import threading
import time
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import Persist, Restored

log = logging.getLogger("chatroom.server.store")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
"""
_STOP = object()


class StateError(Exception):
    """The state file cannot be opened or read; the message says why, on one line."""


class StateStore:
    """The state file's connection, owned by one worker thread once the server runs."""

    def __init__(self, db: sqlite3.Connection, history: int, written_seq: int = 0) -> None:
        self._db = db
        self.closing = False  # close() was called: nothing more is taken
        self._written_seq = written_seq  # the newest line in the file (the thread's)
        self.failed = False  # writing failed: nothing more is queued
        self._history = max(history, 0)
        # The room's history waiting for the thread: only the latest matters (it replaces
        # the file's), so one is held however far the disk is behind. Set and taken as one
        # reference, which needs no lock.
        self._history_due: tuple[p.Message | p.Action, ...] | None = None
        self._records: queue.SimpleQueue[Any] = queue.SimpleQueue()  # bans, mutes, topic
        self._wake = threading.Event()  # anything to write
        self._thread = threading.Thread(target=self._run, name="chatroom-state", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, path: str, history: int, now: float | None = None) -> tuple[StateStore, Restored]:
        """Open (or create) the file at ``path`` and read what it keeps; raises StateError."""
        now = time.time() if now is None else now
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            raise StateError(f"--state {path}: {exc}") from None
        try:
            restored = _load(db, history, now)
        except (sqlite3.Error, ValueError) as exc:
            db.close()
            raise StateError(f"--state {path}: {exc}") from None
        kept = restored.history
        return cls(db, history, kept[-1].seq if kept else 0), restored

    def put(self, item: Persist) -> None:
        """Have ``item`` written (from the event loop: it only hands it over).

        Bounded at every moment: of the history, only the latest waits (it replaces the
        file's); bans, mutes and the topic are operators' commands, a handful."""
        if self.failed or self.closing:
            return
        if item.kind == "history":
            self._history_due = item.data
        else:
            self._records.put(item)
        self._wake.set()

    def close(self) -> None:
        """Commit what is queued and close the file (blocks until done)."""
        self.closing = True
        if self._thread.is_alive():
            self._records.put(_STOP)
            self._wake.set()
            self._thread.join()

    # --- the worker thread

    def _run(self) -> None:
        """Wait for something to write; write all that waits in one transaction."""
        try:
            stop = False
            while not stop:
                self._wake.wait()
                self._wake.clear()  # what is put from here on wakes it again
                history, self._history_due = self._history_due, None
                records: list[Persist] = []
                with contextlib.suppress(queue.Empty):
                    while True:
                        item = self._records.get_nowait()
                        if item is _STOP:
                            stop = True
                        else:
                            records.append(item)
                if history is not None or records:
                    self._write(history, records)
        except sqlite3.Error as exc:
            self.failed = True
            log.error("state file: writing failed, state is no longer kept: %s", exc)
        finally:
            self._db.close()

    def _write(
        self, history: tuple[p.Message | p.Action, ...] | None, records: list[Persist]
    ) -> None:
        """One transaction: the history's lines the file does not have yet, the records,
        and the history trimmed to its last ``history`` lines."""
        db = self._db
        db.execute("BEGIN")
        if history:
            new = [(p.encode_json(e),) for e in history if e.seq > self._written_seq]
            db.executemany("INSERT INTO history (event) VALUES (?)", new)
            self._written_seq = history[-1].seq
        for item in records:
            if item.data is None:
                db.execute("DELETE FROM records WHERE kind = ? AND key = ?", (item.kind, item.key))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO records (kind, key, data) VALUES (?, ?, ?)",
                    (item.kind, item.key, p.compact_json(item.data)),
                )
        db.execute(
            "DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?",
            (self._history,),
        )
        db.execute("COMMIT")


def _load(db: sqlite3.Connection, history: int, now: float) -> Restored:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema version {version} is newer than this server's")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    events: list[p.Message | p.Action] = []
    if history > 0:
        rows = db.execute(
            "SELECT event FROM history ORDER BY id DESC LIMIT ?", (history,)
        ).fetchall()
        for (text,) in reversed(rows):
            event = p.decode_json(text)
            if isinstance(event, p.Message | p.Action):
                events.append(event)
    records: dict[str, dict[str, dict[str, Any]]] = {"ban": {}, "mute": {}, "topic": {}}
    for kind, key, data in db.execute("SELECT kind, key, data FROM records"):
        record = json.loads(data)
        if kind not in records or not isinstance(record, dict):
            continue
        until = record.get("until")
        if until is None or until > now:
            records[kind][key] = record
    expired = db.execute(
        "DELETE FROM records WHERE json_extract(data, '$.until') <= ?", (now,)
    ).rowcount
    if expired:
        log.info("state file: %d expired bans or mutes forgotten", expired)
    return Restored(
        history=tuple(events),
        bans=records["ban"],
        mutes=records["mute"],
        topic=records["topic"].get("topic"),
    )
