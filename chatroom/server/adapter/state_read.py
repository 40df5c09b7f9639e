"""Reading the state file (``--state``) at start: what it keeps, each record checked.

A file another version, a tool or a damaged disk wrote may hold records this server cannot
use: a ban whose ``until`` is not a number or that has no target, a mute with a bad
``until``, a history line that is not an event, lines out of order, a registered name that
is no name or whose hash a check could not run on. Each is skipped with
one warning line naming the file and the record; the rest is restored. Only a file that is
unusable as a whole (not SQLite, a newer schema, tables without their columns) stops the
start, with one line (:class:`StateError`).

Each room's history is kept under its key (``""``: the default room, whatever its name; a
file from before rooms has only those). The lines of a room the start does not list
(``--rooms``) are removed: such a room is gone with its users (docs/PROTOCOL.md, "Rooms").
A topic is kept under ``"topic"`` (the default room's) or ``"#KEY"``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import sqlite3
from collections.abc import Collection
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.accounts_state import Account
from chatroom.server.core.actions import Restored

log = logging.getLogger("chatroom.server.store")

SCHEMA_VERSION = 4
SCHEMA = """
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
"""
# What each version adds to a file of the one before it, applied in order, each in one
# transaction with its version number (a file of version 0 is a new one: SCHEMA and all).
MIGRATIONS = {
    1: SCHEMA,  # the history and the records (bans, mutes, the topic)
    # 2: registered names (/register), under their name's skeleton.
    2: """
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL, created REAL NOT NULL
);
""",
    # 3: request ids remembered (rules/programs.py), written with the history they ack.
    3: """
CREATE TABLE IF NOT EXISTS requests (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, time REAL NOT NULL
);
""",
    # 4: rooms: each line's room (the lines there were are the default room's).
    4: """
ALTER TABLE history ADD COLUMN room TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS history_room ON history (room, id);
""",
}
# epoch: where the room goes on: {"epoch", "seq"} after a clean stop, {"epoch", "lease"}
# while it runs (a crash restarts above the lease: core/sequencer.py).
KINDS = ("ban", "mute", "topic", "epoch")
_UNDECODABLE = (ValueError, TypeError, RecursionError, p.ProtocolError)


class StateError(Exception):
    """The state file cannot be opened or read; the message says why, on one line."""


def load(
    db: sqlite3.Connection,
    path: str,
    history: int,
    now: float,
    rooms: Collection[str] | None = None,
) -> Restored:
    """What the file at ``path`` keeps; raises sqlite3.Error or ValueError if it is unusable.
    ``rooms``: the rooms listed (--rooms); the lines of any other (but the default room's)
    are removed (None: every room's are read)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema version {version} is newer than this server's")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)  # a file of any version has these (damaged: made again)
    for number in range(version + 1, SCHEMA_VERSION + 1):
        db.executescript(f"BEGIN; {MIGRATIONS[number]} PRAGMA user_version = {number}; COMMIT;")
        if version:
            log.info("state file %s: schema version %d now (was %d)", path, number, version)
    if rooms is not None:
        _forget_rooms(db, path, rooms)
    skipped = Skipped(path)
    histories = _histories(db, history, skipped) if history > 0 else {}
    records: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    expired = []
    for kind, key, data in db.execute("SELECT kind, key, data FROM records"):
        record, why = _record(kind, key, data)
        if why is not None:
            skipped.record(f"a {_shown(kind)} record {_shown(key)}: {why}")
        elif record.get("until") is not None and record["until"] <= now:
            expired.append((kind, key))
        else:
            records[kind][key] = record
    accounts = _accounts(db, skipped)
    skipped.done()
    if expired:
        db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", expired)
        log.info("state file %s: %d expired bans or mutes forgotten", path, len(expired))
    stopped = records["epoch"].get("room") or {}
    topics = records["topic"]
    crashed = "lease" in stopped  # it never wrote where it stopped: it goes on above
    requests = [*stopped.get("requests", ()), *_requests(db)]
    return Restored(
        history=histories.pop("", ()),
        bans=records["ban"],
        mutes=records["mute"],
        topic=topics.get("topic"),
        topics={key[1:]: record for key, record in topics.items() if key != "topic"},
        histories=histories,
        accounts=accounts,
        epoch=stopped.get("epoch"),
        seq=stopped["lease"] if crashed else stopped.get("seq", 0),
        seqs=stopped.get("seqs", {}),
        requests=tuple(tuple(entry) for entry in requests),
        lost=crashed,
    )


def _forget_rooms(db: sqlite3.Connection, path: str, rooms: Collection[str]) -> None:
    """Remove the lines of the rooms not listed now (nor the default room's)."""
    kept = ["", *rooms]
    marks = ", ".join("?" * len(kept))
    gone = db.execute(f"DELETE FROM history WHERE room NOT IN ({marks})", kept).rowcount
    if gone:
        log.info("state file %s: %d lines of rooms not listed (--rooms) removed", path, gone)


def _requests(db: sqlite3.Connection) -> list[list[Any]]:
    """The request ids the file remembers (each checked), oldest first."""
    entries = []
    for key, seq, when in db.execute("SELECT key, seq, time FROM requests ORDER BY rowid"):
        try:
            name, rid = json.loads(key)
        except (ValueError, TypeError, RecursionError):
            continue
        entry = [name, rid, seq, when]
        if _request_entry(entry):
            entries.append(entry)
    return entries


def _accounts(db: sqlite3.Connection, skipped: Skipped) -> dict[str, dict[str, Any]]:
    """The registered names, each checked (a name, a hash a check can run on, a time), by
    their skeleton as this version computes it."""
    accounts: dict[str, dict[str, Any]] = {}
    for key, name, stored, created in db.execute("SELECT key, name, hash, created FROM accounts"):
        try:
            account = Account.from_record({"name": name, "hash": stored, "created": created})
        except ValueError as exc:
            skipped.record(f"a registered name {_shown(key)}: {str(exc)[:60]}")
            continue
        kept = accounts.get(account.key)
        if kept is None or account.created < kept["created"]:  # look-alikes: the older
            accounts[account.key] = account.record()
    return accounts


def _histories(
    db: sqlite3.Connection, history: int, skipped: Skipped
) -> dict[str, tuple[p.Message | p.Action, ...]]:
    """Each room's last ``history`` lines that are chat, by room key ("": the default)."""
    histories = {}
    for (room,) in db.execute("SELECT DISTINCT room FROM history ORDER BY room").fetchall():
        if room != "" and not _is_room(room):
            skipped.record(f"the history of {_shown(room)}: not a room")
            continue
        events = _history(db, room, history, skipped)
        if events:
            histories[room] = tuple(events)
    return histories


def _history(
    db: sqlite3.Connection, room: str, history: int, skipped: Skipped
) -> list[p.Message | p.Action]:
    """``room``'s last ``history`` lines that are chat, each after the one before it."""
    rows = db.execute(
        "SELECT id, event FROM history WHERE room = ? ORDER BY id DESC LIMIT ?", (room, history)
    ).fetchall()
    events: list[p.Message | p.Action] = []
    for row_id, text in reversed(rows):
        try:
            event = p.decode_json(text) if isinstance(text, str) else None
        except _UNDECODABLE as exc:
            skipped.record(f"history line {row_id}: {str(exc)[:60]}")
            continue
        if not isinstance(event, p.Message | p.Action):
            skipped.record(f"history line {row_id}: not a message or an action")
        elif room and event.room != room:
            skipped.record(f"history line {row_id}: of room {_shown(event.room)}, not {room!r}")
        elif events and event.seq <= events[-1].seq:
            skipped.record(f"history line {row_id}: seq {event.seq} after {events[-1].seq}")
        else:
            events.append(event)
    return events


def _record(kind: Any, key: Any, data: Any) -> tuple[dict[str, Any], str | None]:
    """A record as the room takes it, or why it cannot be one."""
    if kind not in KINDS:
        return {}, "not a kind of record this server keeps"
    if not isinstance(key, str) or not isinstance(data, str):
        return {}, "not text"
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return {}, "not JSON"
    if not isinstance(record, dict):
        return {}, "not a JSON object"
    until = record.get("until")
    if until is not None and (
        isinstance(until, bool) or not isinstance(until, int | float) or math.isnan(until)
    ):
        return {}, f"its until {_shown(until)} is not a time"
    if kind == "ban":
        return record, _ban_problem(record, key)
    if kind == "topic" and key != "topic" and not (key[:1] == "#" and _is_room(key[1:])):
        return {}, "not a room's topic"
    if kind == "topic" and not isinstance(record.get("text"), str):
        return {}, "its text is not text"
    if kind == "epoch":
        return record, _stop_problem(record)
    return record, None


def _stop_problem(record: dict[str, Any]) -> str | None:
    """Why an epoch record (epoch, and seq or lease, and from older servers request ids)
    cannot be used, if it cannot."""
    which = "lease" if "lease" in record else "seq"
    seq, requests = record.get(which), record.get("requests", [])
    if not isinstance(record.get("epoch"), str) or not record["epoch"]:
        return "its epoch is not text"
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return f"its {which} {_shown(seq)} is not a seq"
    if not isinstance(requests, list) or not all(_request_entry(e) for e in requests):
        return "its request ids are not [name, id, seq, time] each"
    seqs = record.get("seqs", {})
    if not isinstance(seqs, dict) or not all(
        _is_room(k) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        for k, v in seqs.items()
    ):
        return "its rooms' seqs are not {room: seq}"
    return None


def _request_entry(entry: Any) -> bool:
    if not isinstance(entry, list) or len(entry) != 4:
        return False
    name, rid, seq, when = entry
    return (
        isinstance(name, str)
        and (isinstance(rid, str) or (isinstance(rid, int) and not isinstance(rid, bool)))
        and isinstance(seq, int)
        and isinstance(when, int | float)
        and not isinstance(when, bool)
    )


def _ban_problem(record: dict[str, Any], key: str) -> str | None:
    target = record.get("target")
    if not isinstance(target, str) or not target:
        return "it has no target"
    if target != key:
        return f"its target {_shown(target)} is not its key"
    for name in ("name", "reason", "by"):
        if not isinstance(record.get(name), str | None):
            return f"its {name} is not text"
    if "/" in target:
        try:
            ipaddress.ip_network(target, strict=False)
        except ValueError:
            return f"its target {_shown(target)} is not a network"
    return None


def _is_room(key: Any) -> bool:
    """Whether ``key`` is a room's key as the server writes it (lowercase, no ``#``)."""
    return isinstance(key, str) and p.room_key(key) == key


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:36]}...{text[-1]}"


class Skipped:
    """One warning line for each record skipped (the first ``SHOWN``; then one line with
    the count of the others)."""

    SHOWN = 20

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0

    def record(self, what: str) -> None:
        self.count += 1
        if self.count <= self.SHOWN:
            log.warning("state file %s: skipped %s", self.path, what)

    def done(self) -> None:
        if self.count > self.SHOWN:
            more = self.count - self.SHOWN
            log.warning("state file %s: skipped %d more bad records", self.path, more)
