"""What one shared room keeps in Redis: its keys, and the records in them as Python reads
and writes them. No I/O here (redis_ledger.py talks to Redis).

- ``chatroom:{ROOM}:seq`` — the room-wide sequence counter (INCR);
- ``chatroom:{ROOM}:epoch`` — which history ``seq`` counts in: made with the counter (or
  by the first snapshot), so a Redis that restarted empty has a new one, and made anew by a
  snapshot that finds ``seq`` below what the node saw in the same epoch (Redis came back
  from an older snapshot of its data);
- ``chatroom:{ROOM}:events`` — a Stream of every broadcast event, in ``seq`` order: each
  entry holds up to ``events_per_entry`` (the config's) events of one script call, as one
  field ``e`` of ``"SEQ NODE BODY"`` lines joined by newlines, BODY the event's compact
  JSON wire dict without ``seq`` (servers before 2026-12 wrote one event an entry in three
  fields, ``seq``, ``body``, ``node``: still read); capped with ``MAXLEN ~`` at
  ``stream_maxlen`` events' worth of full entries (a quiet room's entries hold fewer);
- ``chatroom:{ROOM}:users`` — hash id -> JSON of a :class:`UserRecord`;
- ``chatroom:{ROOM}:names`` — hash name key (casefolded name) -> id: the name claims;
- ``chatroom:{ROOM}:nodes`` — set of nodes, each alive while its heartbeat key
  ``chatroom:{ROOM}:node:NODE`` (a string with a TTL) exists;
- pub/sub channel ``chatroom:{ROOM}:private:NODE`` — payloads for one node (``/msg``);
- ``chatroom:{ROOM}:mod:ban``, ``:mod:mute``, ``:mod:topic`` — hashes key -> JSON record of
  the bans, the mutes (by name key) and the topic, as the state file keeps them (a record's
  ``until`` is when it expires: expired ones are dropped when read); every change is also
  published on ``chatroom:{ROOM}:moderation`` (``{"kind", "key", "data", "node"}``), so
  every node enforces it at once.

The ``{ROOM}`` hash tag keeps one room's keys in one Redis Cluster slot.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import msgspec

from chatroom.protocol import compact_json, name_skeleton

HISTORY_TYPES = frozenset({"message", "action"})
MODERATION_KINDS = ("ban", "mute", "topic")


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The names of one room's keys and channels (see the module's docstring)."""

    seq: str
    events: str
    users: str
    names: str
    nodes: str
    epoch: str
    heartbeat_prefix: str  # + node
    private_prefix: str  # + node
    mod_prefix: str  # + kind
    mod_channel: str

    @classmethod
    def of(cls, room: str) -> RoomKeys:
        prefix = f"chatroom:{{{room}}}"
        return cls(
            seq=f"{prefix}:seq",
            events=f"{prefix}:events",
            users=f"{prefix}:users",
            names=f"{prefix}:names",
            nodes=f"{prefix}:nodes",
            epoch=f"{prefix}:epoch",
            heartbeat_prefix=f"{prefix}:node:",
            private_prefix=f"{prefix}:private:",
            mod_prefix=f"{prefix}:mod:",
            mod_channel=f"{prefix}:moderation",
        )

    @property
    def shared(self) -> list[str]:
        """The keys every script that appends is given, in the order the scripts use."""
        return [self.seq, self.events, self.users, self.names, self.nodes, self.epoch]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the room's nodes share it; ``key`` is ``name_skeleton(name)``: a name and
    its look-alikes are one claim room-wide."""

    id: str
    name: str
    key: str
    node: str

    @classmethod
    def of(cls, id: str, name: str, node: str) -> UserRecord:
        """The record for ``name``, its key computed here (casefold, which Lua cannot do)."""
        return cls(id=id, name=name, key=name_skeleton(name), node=node)

    def to_json(self) -> str:
        return compact_json(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> UserRecord:
        data = json.loads(text)
        return cls(id=data["id"], name=data["name"], key=data["key"], node=data["node"])


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who is in the room, the stream id to read on from, and the seq it had, taken at once."""

    users: dict[str, UserRecord]
    last_id: str  # "0-0" when the stream is empty
    seq: int  # 0 when nothing was ever appended
    epoch: str  # which history seq counts in (see the module's docstring)


class Entry(msgspec.Struct, frozen=True, gc=False):
    """One event of the stream; ``text`` is its wire dict's JSON without ``seq``, as the
    node that appended it wrote it (decoded once, where it is needed: :attr:`body`, or
    straight to an event). A Struct: one is made per event read, a ninth of a frozen
    dataclass's cost."""

    stream_id: str
    seq: int
    text: str
    node: str

    @property
    def body(self) -> dict[str, Any]:
        """The event's wire dict without ``seq``."""
        return json.loads(self.text)


def parse_stream_id(stream_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of a stream id ``"MS-SEQ"`` (``"MS"`` alone: seq 0); the tuples order
    as Redis orders the ids."""
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def id_after(stream_id: str) -> str:
    """The smallest stream id greater than ``stream_id``.

    ``history(id_after(snapshot.last_id), n)`` is the newest ``n`` chat entries up to and
    including the snapshot's last one (``history`` itself is strictly before its id).
    """
    ms, seq = parse_stream_id(stream_id)
    return f"{ms}-{seq + 1}"


def row_entries(stream_id: str, fields: dict[str, str]) -> list[Entry]:
    """The events of one stream entry (a dict of its fields), in order."""
    if "e" in fields:
        return _lines(stream_id, fields["e"])
    # As servers before 2026-12 wrote it: one event in three fields.
    return [Entry(stream_id, int(fields["seq"]), fields["body"], fields["node"])]


def _lines(stream_id: str, value: str) -> list[Entry]:
    """The events of an entry's ``e`` field: ``SEQ NODE BODY`` lines."""
    entries = []
    for line in value.split("\n"):
        seq, node, text = line.split(" ", 2)
        entries.append(Entry(stream_id, int(seq), text, node))
    return entries


def raw_entries(rows: list[Any]) -> list[Entry]:
    """The events of XREAD's raw rows, ``[id, [field, value, ...]]`` each, in order; the
    scripts write one field, ``e``: ``"SEQ NODE BODY"`` lines (several events an entry)."""
    entries = []
    for stream_id, fields in rows:
        if isinstance(fields, list):
            if len(fields) == 2 and fields[0] == "e":
                entries += _lines(stream_id, fields[1])
                continue
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        entries += row_entries(stream_id, fields)
    return entries


def live_records(reply: dict[str, str], now: float) -> tuple[dict[str, Any], list[str]]:
    """A moderation hash's records (``key -> record``) that have not expired by ``now``,
    and the keys of those that have; what is not a JSON object is skipped."""
    found: dict[str, Any] = {}
    expired = []
    for key, text in reply.items():
        try:
            record = json.loads(text)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        until = record.get("until")
        if isinstance(until, int | float) and until <= now:
            expired.append(key)
        else:
            found[key] = record
    return found, expired
