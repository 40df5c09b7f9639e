"""The state file (``--state FILE``): what a restarted server has back. SQLite, stdlib only.

The room reports what must be kept as :class:`~chatroom.server.core.actions.Persist` actions;
the adapter hands them to :meth:`StateStore.put`, which only hands them over: one worker
thread owns the database connection and writes them, so the event loop never waits for
the disk (what waits is bounded: see :meth:`StateStore.put`). Each is committed as soon as
the thread takes it. Chat comes as the room's whole history, which the adapter asks the
room for every ``state_flush`` seconds (``Room.history_due``): a ``kill -9`` loses at most
that much chat; a ban, an unban, a mute, a topic or a registered name comes as it is made,
so none is lost once it is written (registered names in a table of their own). With each
history come the request ids remembered since the last (rules/persisting.py), written in
the same transaction or before it, and now and then a longer seq lease (the epoch record):
once it is committed, ``on_lease`` is called with it (from the thread: the adapter hands it
to the loop), and the room may number up to it (core/sequencer.py).

The file is read once, at start, before the server listens (:meth:`StateStore.open`; each
record checked: state_read.py), and closed on shutdown after the last batch is committed.
One server at a time: the file is locked (``flock``, exclusive) for the life of the
process, so a second server on it refuses to start with one line; the kernel drops the
lock when the process ends, however it ends (a ``kill -9`` leaves none behind).

A write that fails (a full disk, an I/O error) is retried with backoff (``retry``: the
first wait, doubled up to the longest), and nothing is dropped meanwhile: what waits is
the latest history and the ban, mute and topic changes by key (a later change to one key
replaces the one waiting), so it stays bounded however long the disk is full. The log
says so once when writing fails and once when it works again. The database is in WAL mode with
``synchronous=NORMAL``: a commit survives the process being killed (the operating system
holds what was written); only a crash of the machine itself can lose the last commits.
Its schema is versioned with ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from chatroom import protocol as p
from chatroom.server.adapter.state_read import SCHEMA_VERSION, StateError, load
from chatroom.server.config import ServerConfig
from chatroom.server.core.actions import Persist, Restored

__all__ = ["SCHEMA_VERSION", "StateError", "StateStore"]

log = logging.getLogger("chatroom.server.store")

_STOP = object()


class _Committed(threading.Event):
    """Set once what was put before it is committed (:meth:`StateStore.put_and_wait`)."""


class StateStore:
    """The state file's connection, owned by one worker thread once the server runs."""

    def __init__(
        self,
        db: sqlite3.Connection,
        history: int,
        written_seq: int = 0,
        *,
        path: str = "",
        lock: int | None = None,
        retry: tuple[float, float] = (0.5, 30.0),
    ) -> None:
        self._db = db
        self.path = path
        self._lock = lock  # the locked file's descriptor, held until close
        self.retry = retry
        self.closing = False  # close() was called: nothing more is taken
        self._written_seq = written_seq  # the newest line in the file (the thread's)
        self.failing = False  # the last write failed (the thread's; read for tests)
        self._history = max(history, 0)
        # The room's history waiting for the thread: only the latest matters (it replaces
        # the file's), so one is held however far the disk is behind. Set and taken as one
        # reference, which needs no lock.
        self._history_due: tuple[p.Message | p.Action, ...] | None = None
        self._records: queue.SimpleQueue[Any] = queue.SimpleQueue()  # bans, mutes, topic
        self._wake = threading.Event()  # anything to write
        # Told each seq lease once it is committed (from the thread; set by the adapter).
        self.on_lease: Callable[[int], None] | None = None
        self._thread = threading.Thread(target=self._run, name="chatroom-state", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls,
        path: str,
        history: int,
        now: float | None = None,
        retry: tuple[float, float] = (0.5, 30.0),
    ) -> tuple[StateStore, Restored]:
        """Lock and open (or create) the file at ``path`` and read what it keeps; raises
        StateError (one line) if it cannot be used, or another server uses it."""
        now = time.time() if now is None else now
        lock = _lock(path)
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            os.close(lock)
            raise StateError(f"--state {path}: {exc}") from None
        try:
            restored = load(db, path, history, now)
        except (sqlite3.Error, ValueError) as exc:
            db.close()
            os.close(lock)
            raise StateError(f"--state {path}: {exc}") from None
        kept = restored.history
        seq = kept[-1].seq if kept else 0
        return cls(db, history, seq, path=path, lock=lock, retry=retry), restored

    @classmethod
    def from_config(cls, config: ServerConfig) -> tuple[StateStore, Restored]:
        """:meth:`open` for ``config.state``, keeping ``--keep`` lines (what /history
        reaches; at least ``--history``)."""
        assert config.state is not None, "a state store needs --state"
        keep = max(config.keep, config.history)
        return cls.open(config.state, keep, retry=config.state_retry)

    def put(self, item: Persist) -> None:
        """Have ``item`` written (from the event loop: it only hands it over).

        Bounded at every moment: of the history, only the latest waits (it replaces the
        file's); bans, mutes and the topic are operators' commands, a handful (and the
        thread keeps one change a key while the disk fails)."""
        if self.closing:
            return
        if item.kind == "history":
            if item.key:  # another room's: not kept in the file yet (the default room's is)
                return
            self._history_due = item.data
        else:
            self._records.put(item)
        self._wake.set()

    def put_and_wait(self, item: Persist, timeout: float) -> bool:
        """:meth:`put`, then wait until it is committed (at start, before the server
        listens: its first seq lease); False if it was not within ``timeout``."""
        committed = _Committed()
        self.put(item)
        self._records.put(committed)
        self._wake.set()
        return committed.wait(timeout)

    def close(self) -> None:
        """Commit what is queued and close the file (blocks until done: while the disk
        fails, one more try)."""
        self.closing = True
        if self._thread.is_alive():
            self._records.put(_STOP)
            self._wake.set()
            self._thread.join()

    # --- the worker thread

    def _run(self) -> None:
        """Wait for something to write; write all that waits in one transaction; while
        that fails, keep it (the latest history, one change a key) and try again later."""
        history: tuple[p.Message | p.Action, ...] | None = None
        records: dict[tuple[str, str], Persist] = {}
        committed: list[_Committed] = []
        first, longest = self.retry
        delay = first
        retry_at = None  # while failing: when to try again (monotonic)
        stop = False
        try:
            while True:
                timeout = None if retry_at is None else max(0.0, retry_at - time.monotonic())
                if not stop:
                    self._wake.wait(timeout)
                self._wake.clear()  # what is put from here on wakes it again
                due, self._history_due = self._history_due, None
                history = due if due is not None else history
                with contextlib.suppress(queue.Empty):
                    while True:
                        item = self._records.get_nowait()
                        if item is _STOP:
                            stop = True
                        elif isinstance(item, _Committed):
                            committed.append(item)
                        else:  # one change a key waits; request ids each
                            key = item.key if item.kind != "requests" else str(len(records))
                            records[(item.kind, key)] = item
                if history is None and not records:
                    for done in committed:
                        done.set()
                    committed.clear()
                    if stop:
                        return
                    continue
                if retry_at is not None and time.monotonic() < retry_at and not stop:
                    continue  # still waiting to try again: only gathered
                try:
                    self._write(history, list(records.values()))
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    if stop:
                        self._lost(exc, history, records)
                        return
                    if not self.failing:
                        self.failing = True
                        log.error(
                            "state file %s: writing failed (%s); retrying, with backoff,"
                            " what waits (the last chat, every ban, mute and topic change)",
                            self.path,
                            exc,
                        )
                    retry_at = time.monotonic() + delay
                    delay = min(longest, delay * 2)
                    continue
                self._committed(records.values(), committed)
                history, records, retry_at, delay = None, {}, None, first
                committed = []
                if self.failing:
                    self.failing = False
                    log.warning("state file %s: written again; nothing was lost", self.path)
        finally:
            self._db.close()
            if self._lock is not None:
                os.close(self._lock)  # the lock goes with it

    def _committed(self, records: Iterable[Persist], waiting: list[_Committed]) -> None:
        """What was written is committed: tell the seq lease, wake who waits for it."""
        for item in records:
            lease = item.data.get("lease") if item.kind == "epoch" and item.data else None
            if lease is not None and self.on_lease is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed: the server stops
                    self.on_lease(lease)
        for done in waiting:
            done.set()

    def _lost(self, exc: sqlite3.Error, history: Any, records: dict) -> None:
        what = f"{len(records)} ban, mute or topic changes" + (" and chat" if history else "")
        log.error("state file %s: not written before the stop (%s): %s lost", self.path, exc, what)

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
        for item in records:
            if item.kind == "account":  # a registered name: its own table
                self._write_account(item)
            elif item.kind == "requests":  # request ids: their own table
                self._write_requests(item.data)
            elif item.data is None:
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
        if history:  # only once it is in the file: a failed write writes them again
            self._written_seq = history[-1].seq

    def _write_requests(self, data: dict[str, Any]) -> None:
        """The request ids remembered since the last flush; the expired forgotten, and the
        oldest past the table's size."""
        db = self._db
        db.executemany(
            "INSERT OR REPLACE INTO requests (key, seq, time) VALUES (?, ?, ?)",
            [(p.compact_json([name, rid]), seq, when) for name, rid, seq, when in data["entries"]],
        )
        db.execute("DELETE FROM requests WHERE time <= ?", (data["before"],))
        db.execute(  # older than the cap-th newest
            "DELETE FROM requests WHERE rowid <"
            " (SELECT rowid FROM requests ORDER BY rowid DESC LIMIT 1 OFFSET ?)",
            (max(0, data["cap"] - 1),),
        )

    def _write_account(self, item: Persist) -> None:
        if item.data is None:
            self._db.execute("DELETE FROM accounts WHERE key = ?", (item.key,))
            return
        data = item.data
        self._db.execute(
            "INSERT OR REPLACE INTO accounts (key, name, hash, created) VALUES (?, ?, ?, ?)",
            (item.key, data["name"], data["hash"], data["created"]),
        )


def _lock(path: str) -> int:
    """The file at ``path`` (made if missing), locked for this process alone; raises
    StateError if it cannot be, or another server holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(f"--state {path}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):  # held
            held = "another server is using it (it is locked)"
            raise StateError(f"--state {path}: {held}") from None
        raise StateError(f"--state {path}: cannot lock it: {exc.strerror}") from None
    return fd
