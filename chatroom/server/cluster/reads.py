"""What the ledger's reads return, parsed: one XREAD over the rooms log and the rooms'
streams, and the snapshot script's reply (lua/snapshot.lua). No I/O here."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from chatroom.server.cluster.records import (
    Entry,
    Position,
    Skip,
    Snapshot,
    UserRecord,
    raw_entries,
)

log = logging.getLogger("chatroom.server")


@dataclass(slots=True)
class RoomsRead:
    """One read of the rooms log and the rooms' streams (:meth:`RedisLedger.read_rooms`):
    the log's entries (id, text), each room's events and the id its read got to."""

    log: list[tuple[str, str]] = field(default_factory=list)
    entries: dict[str, list[Entry]] = field(default_factory=dict)
    read_to: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, reply: Any, log_key: str, rooms: dict[str, str], skip: Skip, max_body: int
    ) -> RoomsRead:
        """An XREAD's reply (RESP2 or RESP3) over the rooms log (``log_key``) and the
        streams in ``rooms`` (stream key -> room)."""
        found = cls()
        pairs = reply.items() if isinstance(reply, dict) else (reply or [])
        for key, rows in pairs:
            if not rows:
                continue
            if key == log_key:
                found.log = [(row[0], log_text(row[1])) for row in rows]
                continue
            room = rooms.get(key)
            if room is not None:
                found.read_to[room] = rows[-1][0]
                found.entries[room] = raw_entries(rows, skip, max_body)
        return found


def log_text(fields: Any) -> str:
    """The text of a rooms log entry (field ``r``); "" if it has none."""
    if isinstance(fields, dict):
        value = fields.get("r")
    else:
        value = fields[1] if len(fields) == 2 and fields[0] == "r" else None
    return value if isinstance(value, str) else ""


def snapshot_args(epoch: str | None, default: str, applied: dict[str, int]) -> list[Any]:
    """The snapshot script's ARGV: the epoch known, then each room and the last seq this
    node applied in it, the default room first (lua/snapshot.lua)."""
    args: list[Any] = [epoch or "", default, applied.get(default, 0)]
    for room, seq in applied.items():
        if room != default:
            args += [room, seq]
    return args


def snapshot_of(flat: list[str], epoch: str, log_id: str, found: list[Any], default: str):
    """The snapshot script's reply as a :class:`Snapshot` (``default``: the default room's
    key); a user record that cannot be read is skipped and logged."""
    rooms = {
        found[i]: Position(found[i + 1], int(found[i + 2]), int(found[i + 3]))
        for i in range(0, len(found), 4)
    }
    main = rooms.pop(default)
    users = {}
    for i in range(0, len(flat), 2):
        try:
            record = UserRecord.from_json(flat[i + 1])
        except (ValueError, KeyError, TypeError, RecursionError):
            log.warning("cluster: skipped a bad user record of the room: %.40r", flat[i])
            continue
        users[record.id] = record
    return Snapshot(users, main.last_id, main.seq, epoch, main.first_seq, rooms, log_id)
