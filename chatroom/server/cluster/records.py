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
- ``chatroom:{ROOM}:room:R:seq``, ``:room:R:events`` — the same for room ``R`` (ROOM: the
  default room); ``:rooms``, ``:rooms:log``, ``:rooms:listed``: lua/common.lua;
- ``chatroom:{ROOM}:users`` — hash id -> JSON of a :class:`UserRecord` (with its rooms);
- ``chatroom:{ROOM}:names`` — hash name key (casefolded name) -> id: the name claims;
- ``chatroom:{ROOM}:requests`` — hash request key (a sender's name key and a request
  id, JSON) -> ``"SEQ EXPIRES_MS"``, and ``chatroom:{ROOM}:request-order``, the same keys
  in a sorted set by when they expire: a request id seen, on any node, for
  ``request_ttl``; ``request_table`` of them at most (the oldest forgotten first);
- ``chatroom:{ROOM}:nodes`` — set of nodes, each alive while its heartbeat key
  ``chatroom:{ROOM}:node:NODE`` (a string with a TTL) exists;
- pub/sub channel ``chatroom:{ROOM}:private:NODE`` — payloads for one node (``/msg``);
- ``chatroom:{ROOM}:mod:ban``, ``:mod:mute``, ``:mod:topic``, ``:mod:account`` — hashes
  key -> JSON record of the bans, the mutes (by name key), the topic and the registered
  names (by skeleton; name, scrypt hash, created), as the state file keeps them, and
  ``:mod:bot``, the users marked as programs (``/bot``) by id, until they leave (a record's
  ``until`` is when it expires: expired ones are dropped when read); every change is also
  published on ``chatroom:{ROOM}:moderation`` (``{"kind", "key", "data", "node"}``), so
  every node enforces it at once.

The ``{ROOM}`` hash tag keeps one server's keys, all its rooms', in one Redis Cluster slot.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from chatroom.protocol import compact_json, name_skeleton

HISTORY_TYPES = frozenset({"message", "action"})
BROADCAST_TYPES = frozenset({"message", "action", "join", "leave", "rename"})
# bot: the users marked as programs (/bot), by id, so every node's who shows the mark.
MODERATION_KINDS = ("ban", "mute", "topic", "account", "bot")


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
    requests: str  # request keys seen (rules/programs.py) -> "SEQ EXPIRES_MS"
    request_order: str  # the same keys by when they expire: the oldest go first
    room_prefix: str  # + ROOM + ":seq" / ":events": another room's (lua/common.lua)
    rooms: str  # hash: room -> users in it (the rooms in use)
    rooms_log: str  # stream: rooms coming into use and going out of it (lua/common.lua)
    listed: str  # set: the rooms every node keeps (--rooms)
    default: str = ""  # the default room: its seq and events are ``seq`` and ``events``

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
            requests=f"{prefix}:requests",
            request_order=f"{prefix}:request-order",
            room_prefix=f"{prefix}:room:",
            rooms=f"{prefix}:rooms",
            rooms_log=f"{prefix}:rooms:log",
            listed=f"{prefix}:rooms:listed",
            default=room,
        )

    def events_of(self, room: str) -> str:
        """The stream of ``room`` (the default room's is ``events``, as before rooms)."""
        return self.events if room == self.default else f"{self.room_prefix}{room}:events"

    def seq_of(self, room: str) -> str:
        return self.seq if room == self.default else f"{self.room_prefix}{room}:seq"

    @property
    def shared(self) -> list[str]:
        """The keys every script that appends is given, in the order the scripts use."""
        return [self.seq, self.events, self.users, self.names, self.nodes, self.epoch]

    @property
    def appending(self) -> list[str]:
        """The append script's keys: the shared ones, then the request ids'."""
        return [*self.shared, self.requests, self.request_order]


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as the room's nodes share it; ``key`` is ``name_skeleton(name)``: a name and
    its look-alikes are one claim server-wide. ``rooms``: the rooms it is in, which the
    append script keeps (a record of a server before rooms has none: the default room)."""

    id: str
    name: str
    key: str
    node: str
    rooms: tuple[str, ...] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, id: str, name: str, node: str) -> UserRecord:
        """The record for ``name``, its key computed here (casefold, which Lua cannot do)."""
        return cls(id=id, name=name, key=name_skeleton(name), node=node)

    def to_json(self) -> str:
        """What a join or rename hands the append script (which adds the rooms)."""
        return compact_json({"id": self.id, "name": self.name, "key": self.key, "node": self.node})

    @classmethod
    def from_json(cls, text: str) -> UserRecord:
        data = json.loads(text)
        rooms = data.get("rooms")
        record = cls(
            id=data["id"],
            name=data["name"],
            key=data["key"],
            node=data["node"],
            rooms=tuple(rooms.split()) if isinstance(rooms, str) else None,
        )
        if not all(isinstance(value, str) for value in (record.id, record.name, record.node)):
            raise ValueError("not a user record")
        return record


@dataclass(frozen=True, slots=True)
class Position:
    """Where one room's stream is: the id to read on from, the seq it had, its first."""

    last_id: str  # "0-0" when the stream is empty
    seq: int  # 0 when nothing was ever appended
    first_seq: int = 0  # of the stream's first event (1: never trimmed; 0: empty)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Who is on the server, and where each room in use is, taken at once; ``last_id``,
    ``seq`` and ``first_seq`` are the default room's."""

    users: dict[str, UserRecord]
    last_id: str  # "0-0" when the stream is empty
    seq: int  # 0 when nothing was ever appended
    epoch: str  # which history seq counts in (see the module's docstring)
    first_seq: int = 0  # of the stream's first event (1: never trimmed; 0: empty)
    rooms: dict[str, Position] = field(default_factory=dict)  # the other rooms in use
    log_id: str = "0-0"  # the rooms log's last entry


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


# A node's name as the stream and key names carry it: no spaces, no braces (hash tags).
NODE_RE = re.compile(r"[^\s{}\x00-\x1f\x7f]{1,128}")
_GOOD_NODES: set[str] = set()  # node names seen valid: one lookup a line, not a match

# Told why an entry, or one line of it, is skipped: ``skip(stream_id, why)``.
Skip = Callable[[str, str], None]


def row_entries(stream_id: str, fields: Any, skip: Skip, max_body: int) -> list[Entry]:
    """The events of one stream entry (its fields: a dict, or XREAD's raw flat list), in
    order. What is not an event as the scripts write them (or as servers before 2026-12
    did) is left out, each bad line told to ``skip``; a body longer than ``max_body``
    characters is one. Never raises."""
    try:
        if isinstance(fields, list):
            if len(fields) == 2 and fields[0] == "e":
                return _lines(stream_id, fields[1], max_body)
            fields = dict(zip(fields[::2], fields[1::2], strict=True))
        if "e" in fields:
            return _lines(stream_id, fields["e"], max_body)
        # As servers before 2026-12 wrote it: one event in three fields.
        return [_entry(stream_id, fields["seq"], fields["node"], fields["body"], max_body)]
    except (ValueError, KeyError, TypeError, AttributeError):
        return _checked(stream_id, fields, skip, max_body)


def raw_entries(rows: list[Any], skip: Skip, max_body: int) -> list[Entry]:
    """The events of XREAD's raw rows, ``[id, [field, value, ...]]`` each, in order; the
    scripts write one field, ``e``: ``"SEQ NODE BODY"`` lines (several events an entry)."""
    entries = []
    for row in rows:
        try:
            stream_id, fields = row
            if len(fields) == 2 and fields[0] == "e":
                entries += _lines(stream_id, fields[1], max_body)
                continue
        except (ValueError, KeyError, TypeError, AttributeError):
            if not (isinstance(row, list | tuple) and len(row) == 2):
                skip(str(row)[:40], "not a stream entry")
                continue
        entries += row_entries(stream_id, fields, skip, max_body)
    return entries


def _lines(stream_id: str, value: str, max_body: int) -> list[Entry]:
    """The events of an entry's ``e`` field: ``SEQ NODE BODY`` lines; raises on a bad one."""
    entries = []
    for line in value.split("\n"):
        seq, node, text = line.split(" ", 2)
        if len(text) > max_body or (node not in _GOOD_NODES and not _good_node(node)):
            raise ValueError(line[:40])
        entries.append(Entry(stream_id, int(seq), text, node))
    return entries


def _entry(stream_id: str, seq: Any, node: Any, text: Any, max_body: int) -> Entry:
    """One event, checked; raises ValueError saying what is wrong."""
    if not isinstance(seq, str) or not seq.isascii() or not seq.isdigit():
        raise ValueError(f"its seq {_shown(seq)} is not a number")
    if not isinstance(node, str) or not _good_node(node):
        raise ValueError(f"its node {_shown(node)} is not a node's name")
    if not isinstance(text, str) or not text:
        raise ValueError("it has no event")
    if len(text) > max_body:
        raise ValueError(f"its event is {len(text)} characters long (at most {max_body})")
    return Entry(stream_id, int(seq), text, node)


def _checked(stream_id: str, fields: Any, skip: Skip, max_body: int) -> list[Entry]:
    """:func:`row_entries` once the quick way failed: line by line, saying what is wrong."""
    if isinstance(fields, list):
        if len(fields) % 2:
            skip(stream_id, "an odd number of fields")
            return []
        fields = dict(zip(fields[::2], fields[1::2], strict=True))
    if not isinstance(fields, dict):
        skip(stream_id, "not a stream entry")
        return []
    if "e" not in fields:
        if {"seq", "node", "body"} <= fields.keys():
            lines = [(fields["seq"], fields["node"], fields["body"])]
        else:
            names = ", ".join(_shown(name) for name in list(fields)[:4])
            skip(stream_id, f"no event in it (its fields: {names})")
            return []
    elif not isinstance(fields["e"], str) or not fields["e"]:
        skip(stream_id, "its field e is empty")
        return []
    else:
        lines = [(line.split(" ", 2) + ["", ""])[:3] for line in fields["e"].split("\n")]
    entries = []
    for number, (seq, node, text) in enumerate(lines, 1):
        try:
            entries.append(_entry(stream_id, seq, node, text, max_body))
        except ValueError as exc:
            where = f"line {number}: " if len(lines) > 1 else ""
            skip(stream_id, f"{where}{exc}")
    return entries


def _good_node(node: str) -> bool:
    if NODE_RE.fullmatch(node) is None:
        return False
    if len(_GOOD_NODES) >= 1024:  # bounded, whatever names an entry makes up
        _GOOD_NODES.clear()
    _GOOD_NODES.add(node)
    return True


def _shown(value: Any) -> str:
    """A value from an entry, as a log line may show it: short."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}...{text[-1]}"


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
