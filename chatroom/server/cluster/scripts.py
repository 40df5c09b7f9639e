"""The Lua scripts of the shared room and what Python hands them.

The scripts are package data (``lua/*.lua``). What they share with Python is passed in:
refusal reasons and the events per stream entry as constants put before the script's text
(:func:`scripts`), and leave bodies (reason included) encoded by Python
(:func:`leave_parts`). An append's batch goes as one MessagePack argument
(:func:`append_item` is one event's part of it).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import msgspec

from chatroom import protocol as p
from chatroom.server.cluster.records import UserRecord
from chatroom.server.core.refusal import Refusal

pack = msgspec.msgpack.Encoder().encode
REPEATED = "repeated:"  # an append's result for a request seen already: then its first seq
_BY_ID_ALONE = (p.Message, p.Action, p.Leave)
# A leave of one room only (a part keeps the name; a kick frees it with the last room);
# any other leaves every room the user is in (lua/append.lua).
_LEAVE_KINDS = {p.LeaveReason.PART: "part", p.LeaveReason.KICKED: "one"}


def _script(*files: str, **constants: str) -> str:
    """The Lua source of ``files`` (names in ``lua/``, without ``.lua``), after a line
    ``local NAME = "value"`` for each of ``constants``."""
    lua = resources.files("chatroom.server.cluster") / "lua"
    prelude = "".join(f"local {key} = {json.dumps(value)}\n" for key, value in constants.items())
    return prelude + "".join((lua / f"{name}.lua").read_text() for name in files)


@dataclass(frozen=True, slots=True)
class Scripts:
    """The sources of the four scripts (see ``lua/``)."""

    append: str
    reap: str
    forget: str
    snapshot: str


@functools.cache
def scripts(
    events_per_entry: int,
    default_room: str = "main",
    max_rooms: int = 1000,
    room_linger: float = 600.0,
) -> Scripts:
    """The scripts that write up to ``events_per_entry`` events in one stream entry (the
    config's ``events_per_entry``; see lua/common.lua), for a server whose default room is
    ``default_room``, with at most ``max_rooms`` rooms in use; a room out of use keeps its
    keys ``room_linger`` seconds."""
    shared = {
        "EVENTS_PER_ENTRY": str(events_per_entry),
        "DEFAULT_ROOM": default_room,
        "ROOM_LINGER": str(max(1, round(room_linger * 1000))),
    }
    return Scripts(
        append=_script(
            "common",
            "append",
            TAKEN=Refusal.TAKEN,
            GONE=Refusal.GONE,
            DUPLICATE=Refusal.DUPLICATE,
            ROOM_LIMIT=Refusal.ROOM_LIMIT,
            REPEATED=REPEATED,
            MAX_ROOMS=str(max_rooms),
            **shared,
        ),
        reap=_script("common", "reap", **shared),
        forget=_script("common", "forget", **shared),
        snapshot=_script("snapshot"),
    )


def stream_body(event: p.BroadcastEvent) -> str:
    """What the stream keeps of a broadcast event: its JSON without ``seq`` (the script
    numbers it; a reader puts the seq back, see cluster.event_of). A string: the scripts'
    MessagePack decoder takes no binary.

    The event's ``seq`` must be 0: it is the first field after ``type``, so ``,"seq":0`` is
    cut where it first occurs (a type tag cannot contain it).
    """
    if event.seq != 0:
        raise ValueError(f"a {event.type} to append must have seq 0, not {event.seq}")
    return p.encode_json(event).replace(',"seq":0', "", 1)


def append_item(
    event: p.BroadcastEvent,
    user: UserRecord | str,
    old_key: str | None,
    request: str | None = None,
    default_room: str = "main",
) -> tuple[str, ...]:
    """One event's entry in the append script's batch: type, stream body, user id, then
    for a join or rename the user's JSON, its key and the old key (``""`` for a join).
    A message, action or leave stops after the id (every string less is one the script's
    MessagePack decoder does not make: a third of its time), unless a message or action
    is a request's (then its ``request`` key follows) or a leave is of one room only
    (``"part"`` or, a kick, ``"one"`` follows). A leave's body is its head: the script adds the room
    (:func:`leave_head`). An event of a room other than ``default_room`` has its room
    last (the fourth string then ``""`` if there is none)."""
    room = event.room if event.room is not None else default_room
    elsewhere = (room,) if room != default_room else ()
    if isinstance(event, _BY_ID_ALONE):
        user_id = user.id if isinstance(user, UserRecord) else user
        if not isinstance(user_id, str):
            raise ValueError(f"a {event.type} needs the user's record or id")
        if isinstance(event, p.Leave):
            part = _LEAVE_KINDS.get(event.reason, "")
            item: tuple[str, ...] = (event.type, leave_head(event), user_id)
            return (*item, part, *elsewhere) if part or elsewhere else item
        if request is not None:
            return (event.type, stream_body(event), user_id, request, *elsewhere)
        if elsewhere:
            return (event.type, stream_body(event), user_id, "", room)
        return (event.type, stream_body(event), user_id)
    if not isinstance(user, UserRecord):
        raise ValueError(f"a {event.type} needs the user's record")
    if isinstance(event, p.Rename):
        if old_key is None:
            raise ValueError("a rename needs old_key")
        body = stream_body(event)
        return (event.type, body, user.id, user.to_json(), user.key, old_key, *elsewhere)
    if not isinstance(event, p.Join):
        raise ValueError(f"cannot append an event of type {event.type!r}")
    return (event.type, stream_body(event), user.id, user.to_json(), user.key, "", *elsewhere)


_ROOM_MARK = ',"room":"\\u0000"}'


def leave_head(leave: p.Leave) -> str:
    """A leave's stream body up to its room (the room is its last field): the scripts add
    ``,"room":ROOM}`` for each room a user leaves (lua/common.lua, leave_body)."""
    body = stream_body(p.replace(leave, room="\0"))
    assert body.endswith(_ROOM_MARK), body
    return body[: -len(_ROOM_MARK)]


def leave_parts(reason: p.LeaveReason, ts: float) -> list[str]:
    """The head of a leave with ``reason`` at ``ts`` (:func:`leave_head`) in three parts
    around where the user's id and name go: the scripts that remove users fill in the
    JSON strings, and then the room."""
    leave = p.Leave(seq=0, ts=float(ts), id="\0", name="\0", reason=reason)
    parts = leave_head(leave).split('"\\u0000"')
    assert len(parts) == 3, parts
    return parts


class Repeat(int):
    """An append's result for a request whose id was seen within the request TTL (on any
    node): not appended; the value is the seq its first try got."""


def append_result(result: Any) -> int | Refusal:
    """One append's result as the script gave it: a seq, a refusal, or a :class:`Repeat`."""
    if isinstance(result, bytes):
        result = result.decode()
    if isinstance(result, str):
        if result.startswith(REPEATED):
            return Repeat(int(result[len(REPEATED) :]))
        return Refusal(result)
    return int(result)
