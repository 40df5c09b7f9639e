"""What the room is told: every event that reaches it, as a small frozen value. No I/O.

The adapter turns what happens on its connections and timers into these, the cluster link
what the ledger and the other nodes say, and both hand them to the one entry point,
:meth:`Room.handle <chatroom.server.core.room.Room.handle>`, with the time.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatroom import protocol as p
from chatroom.server.core.actions import Check, ConnId
from chatroom.server.core.codec import LineTooLong
from chatroom.server.core.node_requests import ModerationAnswer, ModerationRequest
from chatroom.server.core.refusal import Refusal


class _Input(msgspec.Struct, frozen=True, gc=False):
    """A frozen value (a msgspec Struct: one is made per line)."""


# --- from this node's connections and timers (the adapter)


class Connected(_Input):
    conn: ConnId
    host: str
    port: int


class LineReceived(_Input):
    conn: ConnId
    line: str | LineTooLong


class Disconnected(_Input):
    """``conn`` is gone, for ``reason`` (whatever ended it: EOF, reset, slow, ...)."""

    conn: ConnId
    reason: p.LeaveReason


class TimerFired(_Input):
    """The time :meth:`Room.next_check` gave for ``conn`` has come."""

    conn: ConnId


class Restarting(_Input):
    """An upgrade cannot carry this connection (TLS, WebSocket): the old process lets it go."""

    conn: ConnId


class ShuttingDown(_Input):
    """The server is stopping."""


class StateFlushDue(_Input):
    """Time to hand the state file the history, if it changed (every ``state_flush``)."""


class LeaseGranted(_Input):
    """The state file holds a longer seq ``lease`` (core/sequencer.py's LocalSequencer)."""

    lease: int


class PasswordChecked(_Input):
    """The adapter checked the password of ``conn``'s ``/oper NAME`` or ``/login NAME``
    (a :class:`~chatroom.server.core.actions.CheckPassword` for ``purpose``): ``ok`` if it
    was right. ``busy``: it had no room for the check, which was not made."""

    conn: ConnId
    purpose: Check
    name: str
    ok: bool
    busy: bool = False


class PasswordHashed(_Input):
    """The adapter hashed the password of ``conn``'s ``/register`` of ``name`` (a
    :class:`~chatroom.server.core.actions.HashPassword`): ``stored``, its scrypt form, or
    None if it had no room for the work (busy), which was not done."""

    conn: ConnId
    name: str
    stored: str | None


class Paced(_Input):
    """Flood control started pacing ``conn``'s lines: the next is read in ``retry_after``
    seconds (once per pacing episode: until its bucket is full again)."""

    conn: ConnId
    retry_after: float


# --- from the shared ledger and the other nodes (the cluster link)


class Sequenced(_Input):
    """The ledger's next event, appended by ``node``."""

    event: p.BroadcastEvent
    node: str


class AppendRefused(_Input):
    """The ledger refused an Append that came from ``conn``'s line."""

    conn: ConnId | None
    event: p.BroadcastEvent
    reason: Refusal


class Repeated(_Input):
    """The ledger did not append ``conn``'s request's ``event``: its id was seen already
    (on any node), when its line got ``seq``."""

    conn: ConnId | None
    event: p.Message | p.Action
    seq: int


class RoomSynced(msgspec.Struct, frozen=True, gc=False):
    """One room as the ledger has it: its last seq, its recent history, and the seq after
    which that history is every message."""

    room: str
    seq: int
    history: list[p.Message | p.Action]
    kept_from: int = 0  # ``history`` is every message after this seq (fewer: ``--keep``)


class Resynced(_Input):
    """The ledger's view after (re)connecting: ``(id, name, node[, rooms])`` of everyone
    (rooms None or left out: the default room), the default room's last seq and recent
    history, the epoch, and the other rooms in use."""

    users: list[tuple[str, str, str] | tuple[str, str, str, tuple[str, ...] | None]]
    seq: int
    history: list[p.Message | p.Action]
    epoch: str
    kept_from: int = 0  # ``history`` is every message after this seq (fewer: ``--keep``)
    rooms: tuple[RoomSynced, ...] = ()


class LedgerStatus(_Input):
    """The ledger went away or came back: ``text`` tells this node's members."""

    text: str


class PrivateArrived(_Input):
    """A private message from another node for ``recipient_id`` (from ``sender_id``)."""

    recipient_id: str
    event: p.Private
    sender_id: str | None


class PrivateUndelivered(_Input):
    """``conn``'s private message could not be carried to the recipient's node."""

    conn: ConnId
    event: p.Private


class ModerationAsked(_Input):
    """An operator on another node asks for ``request`` on a user of this node."""

    request: ModerationRequest


class ModerationAnswered(_Input):
    answer: ModerationAnswer


class ModerationUndelivered(_Input):
    """The node of an operator's command's target was not reached, or did not answer."""

    operator: ConnId
    request: ModerationRequest
    maybe_done: bool


class ModerationChanged(_Input):
    """Another node changed a ban, a mute, the topic or a registered name (``data`` None:
    lifted)."""

    kind: str
    key: str
    data: dict[str, Any] | None


class ModerationLoaded(_Input):
    """The bans, mutes, topic and registered names the ledger keeps (``kind -> key ->
    record``)."""

    records: dict[str, dict[str, dict[str, Any]]]


Input = (
    Connected
    | LineReceived
    | Disconnected
    | TimerFired
    | ShuttingDown
    | Restarting
    | StateFlushDue
    | LeaseGranted
    | PasswordChecked
    | PasswordHashed
    | Paced
    | Sequenced
    | Repeated
    | AppendRefused
    | Resynced
    | LedgerStatus
    | PrivateArrived
    | PrivateUndelivered
    | ModerationAsked
    | ModerationAnswered
    | ModerationUndelivered
    | ModerationChanged
    | ModerationLoaded
)
