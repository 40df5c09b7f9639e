"""Reading the state file (``--state``) at start: what it keeps, each record checked.

A file another version, a tool or a damaged disk wrote may hold records this server cannot
use: a ban whose ``until`` is not a number or that has no target, a mute with a bad
``until``, a history line that is not an event, lines out of order. Each is skipped with
one warning line naming the file and the record; the rest is restored. Only a file that is
unusable as a whole (not SQLite, a newer schema, tables without their columns) stops the
start, with one line (:class:`StateError`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import sqlite3
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import Restored

log = logging.getLogger("chatroom.server.store")

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL, key TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, key)
);
"""
KINDS = ("ban", "mute", "topic")
_UNDECODABLE = (ValueError, TypeError, RecursionError, p.ProtocolError)


class StateError(Exception):
    """The state file cannot be opened or read; the message says why, on one line."""


def load(db: sqlite3.Connection, path: str, history: int, now: float) -> Restored:
    """What the file at ``path`` keeps; raises sqlite3.Error or ValueError if it is unusable."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise ValueError(f"schema version {version} is newer than this server's")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    skipped = Skipped(path)
    events = _history(db, history, skipped) if history > 0 else []
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
    skipped.done()
    if expired:
        db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", expired)
        log.info("state file %s: %d expired bans or mutes forgotten", path, len(expired))
    return Restored(
        history=tuple(events),
        bans=records["ban"],
        mutes=records["mute"],
        topic=records["topic"].get("topic"),
    )


def _history(db: sqlite3.Connection, history: int, skipped: Skipped) -> list[p.Message | p.Action]:
    """The last ``history`` lines that are chat, each after the one before it."""
    rows = db.execute(
        "SELECT id, event FROM history ORDER BY id DESC LIMIT ?", (history,)
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
    if kind == "topic" and not isinstance(record.get("text"), str):
        return {}, "its text is not text"
    return record, None


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
