"""The state file (``--state FILE``): what a restarted server has back. SQLite, stdlib only.

The room reports what must be kept as :class:`~chatroom.server.core.actions.Persist` actions;
the adapter hands them to :meth:`StateStore.put`, which only hands them over: one worker
thread owns the database connection and writes them, so the event loop never waits for
the disk (what waits is bounded: see :meth:`StateStore.put`). Each is committed as soon as
the thread takes it. Chat comes as each room's whole history, which the adapter asks the
room for every ``state_flush`` seconds (``Room.history_due``; the rooms whose history
changed, and those gone since, with an empty one: their lines go): a ``kill -9`` loses at
most that much chat; a ban, an unban, a mute, a topic or a registered name comes as it is
made, so none is lost once it is written (registered names in a table of their own). The
file keeps the last ``--keep`` lines of each room. With each flush come the request ids
remembered since the last (rules/persisting.py), written in the same transaction or before
it, and now and then a longer seq lease (the epoch record): once it is committed,
``on_lease`` is called with it (from the thread: the adapter hands it to the loop), and the
room may number up to it (core/sequencer.py).

The file is read once, at start, before the server listens (:meth:`StateStore.open`; each
record checked: state_read.py), and closed on shutdown after the last batch is committed.
One server at a time: the file is locked (``flock``, exclusive) for the life of the
process, so a second server on it refuses to start with one line; the kernel drops the
lock when the process ends, however it ends (a ``kill -9`` leaves none behind).

A write that fails (a full disk, an I/O error) is retried with backoff (``retry``: the
first wait, doubled up to the longest), and nothing is dropped meanwhile: what waits is
the latest history of each room and the ban, mute and topic changes by key (a later change
to one key replaces the one waiting), so it stays bounded however long the disk is full. The log
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

History = tuple[p.Message | p.Action, ...]
# A room's history waiting to be written: (reset, events). reset: the room went since the
# file last had it, so its lines go first (a room made again under its name starts anew).
Due = dict[str, tuple[bool, History]]


class _Committed(threading.Event):
    """Set once what was put before it is committed (:meth:`StateStore.put_and_wait`)."""


class StateStore:
    """The state file's connection, owned by one worker thread once the server runs."""

    def __init__(
        self,
        db: sqlite3.Connection,
        history: int,
        written: dict[str, int] | None = None,
        *,
        path: str = "",
        lock: int | None = None,
        retry: tuple[float, float] = (0.5, 30.0),
        max_rooms: int = 1000,
    ) -> None:
        self._db = db
        self.path = path
        self._lock = lock  # the locked file's descriptor, held until close
        self.retry = retry
        self.closing = False  # close() was called: nothing more is taken
        # Each room's newest line in the file, by room key ("": the default room's) (the
        # thread's).
        self._written = dict(written or {})
        self.failing = False  # the last write failed (the thread's; read for tests)
        self._history = max(history, 0)
        # The rooms' histories waiting for the thread: of each room only the latest matters
        # (it replaces the file's), so one a room is held however far the disk is behind,
        # and at most twice --max-rooms rooms (those there are, and those gone since: see
        # _due). Changed under the lock, by put() and when the thread takes them.
        self._rooms = 2 * max(max_rooms, 1)
        self._history_due: Due = {}
        self._due_lock = threading.Lock()
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
        *,
        rooms: tuple[str, ...] | None = None,
        max_rooms: int = 1000,
    ) -> tuple[StateStore, Restored]:
        """Lock and open (or create) the file at ``path`` and read what it keeps; raises
        StateError (one line) if it cannot be used, or another server uses it. ``rooms``:
        the rooms listed (--rooms): the lines of the others go (None: all are read)."""
        now = time.time() if now is None else now
        lock = _lock(path)
        try:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as exc:
            os.close(lock)
            raise StateError(f"--state {path}: {exc}") from None
        try:
            restored = load(db, path, history, now, rooms)
        except (sqlite3.Error, ValueError) as exc:
            db.close()
            os.close(lock)
            raise StateError(f"--state {path}: {exc}") from None
        kept = {"": restored.history, **restored.histories}
        written = {room: events[-1].seq for room, events in kept.items() if events}
        store = cls(db, history, written, path=path, lock=lock, retry=retry, max_rooms=max_rooms)
        return store, restored

    @classmethod
    def from_config(cls, config: ServerConfig) -> tuple[StateStore, Restored]:
        """:meth:`open` for ``config.state``, keeping ``--keep`` lines (what /history
        reaches; at least ``--history``)."""
        assert config.state is not None, "a state store needs --state"
        keep = max(config.keep, config.history)
        return cls.open(
            config.state,
            keep,
            retry=config.state_retry,
            rooms=config.rooms,
            max_rooms=config.max_rooms,
        )

    def put(self, item: Persist) -> None:
        """Have ``item`` written (from the event loop: it only hands it over).

        Bounded at every moment: of each room's history, only the latest waits (it replaces
        the file's); bans, mutes and the topics are operators' commands, a handful (and the
        thread keeps one change a key while the disk fails)."""
        if self.closing:
            return
        if item.kind == "history":
            with self._due_lock:
                _due(self._history_due, item.key, item.data, self._rooms)
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
        histories: Due = {}
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
                with self._due_lock:
                    due, self._history_due = self._history_due, {}
                for room, (reset, events) in due.items():
                    if reset:
                        _due(histories, room, (), self._rooms)
                    _due(histories, room, events, self._rooms)
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
                if not histories and not records:
                    for done in committed:
                        done.set()
                    committed.clear()
                    if stop:
                        return
                    continue
                if retry_at is not None and time.monotonic() < retry_at and not stop:
                    continue  # still waiting to try again: only gathered
                try:
                    self._write(histories, list(records.values()))
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    if stop:
                        self._lost(exc, histories, records)
                        return
                    if not self.failing:
                        self.failing = True
                        log.error(
                            "state file %s: writing failed (%s); retrying, with backoff,"
                            " what waits (the rooms' last chat, every ban, mute and topic change)",
                            self.path,
                            exc,
                        )
                    retry_at = time.monotonic() + delay
                    delay = min(longest, delay * 2)
                    continue
                self._committed(records.values(), committed)
                histories, records, retry_at, delay = {}, {}, None, first
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

    def _lost(self, exc: sqlite3.Error, histories: Due, records: dict) -> None:
        what = f"{len(records)} ban, mute or topic changes" + (" and chat" if histories else "")
        log.error("state file %s: not written before the stop (%s): %s lost", self.path, exc, what)

    def _write(self, histories: Due, records: list[Persist]) -> None:
        """One transaction: each room's lines the file does not have yet (a gone room's
        removed), each trimmed to its last ``history`` lines, and the records."""
        db = self._db
        db.execute("BEGIN")
        written = {}
        for room, (reset, events) in histories.items():
            if reset:
                db.execute("DELETE FROM history WHERE room = ?", (room,))
            last = 0 if reset else self._written.get(room, 0)
            new = [(room, p.encode_json(e)) for e in events if e.seq > last]
            if new:
                db.executemany("INSERT INTO history (room, event) VALUES (?, ?)", new)
                self._trim(room)
            written[room] = events[-1].seq if events else 0
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
        db.execute("COMMIT")
        for room, seq in written.items():  # only once in the file: a failed write writes again
            if seq:
                self._written[room] = seq
            else:
                self._written.pop(room, None)

    def _trim(self, room: str) -> None:
        """``room``'s lines but its last ``history`` go."""
        if self._history <= 0:
            self._db.execute("DELETE FROM history WHERE room = ?", (room,))
            return
        self._db.execute(
            "DELETE FROM history WHERE room = ?1 AND id < (SELECT id FROM history"
            " WHERE room = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            (room, self._history - 1),
        )

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


def _due(due: Due, room: str, events: History, rooms: int) -> None:
    """``room``'s latest history (empty: the room is gone) waits in ``due`` instead of the
    one before it; a room gone since the file had it stays marked so (its lines go first).

    At most ``rooms`` rooms wait: twice --max-rooms, the rooms there are and those gone
    since the disk last worked (a room that waits with chat was there at the last report:
    gone since, it waits as gone). Past that the oldest gone room's wait ends (its lines
    stay in the file until the next start, which removes a room's it does not list)."""
    before = due.pop(room, None)
    reset = not events or (before is not None and before[0])
    if before is None and len(due) >= rooms:
        oldest = next((key for key, (_, kept) in due.items() if not kept), next(iter(due)))
        del due[oldest]
        log.warning("state file: the lines of room %r stay until the next start", oldest)
    due[room] = (reset, events)


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
