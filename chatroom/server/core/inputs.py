"""What the room is told: every event that reaches it, as a small frozen value. No I/O.

The adapter turns what happens on its connections and timers into these, the cluster link
what the ledger and the other nodes say, and both hand them to the one entry point,
:meth:`Room.handle <chatroom.server.core.room.Room.handle>`, with the time.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId
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


class ShuttingDown(_Input):
    """The server is stopping."""


class StateFlushDue(_Input):
    """Time to hand the state file the history, if it changed (every ``state_flush``)."""


class OperatorChecked(_Input):
    """The adapter checked the password of ``conn``'s ``/oper NAME`` (a
    :class:`~chatroom.server.core.actions.CheckOperator`): ``ok`` if it was right.
    ``busy``: it had no room for the check, which was not made."""

    conn: ConnId
    name: str
    ok: bool
    busy: bool = False


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


class Resynced(_Input):
    """The ledger's view after (re)connecting: ``(id, name, node)`` of everyone, the last
    seq, the recent history, the epoch."""

    users: list[tuple[str, str, str]]
    seq: int
    history: list[p.Message | p.Action]
    epoch: str


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
    """Another node changed a ban, a mute or the topic (``data`` None: lifted)."""

    kind: str
    key: str
    data: dict[str, Any] | None


class ModerationLoaded(_Input):
    """The bans, mutes and topic the ledger keeps (``kind -> key -> record``)."""

    records: dict[str, dict[str, dict[str, Any]]]


Input = (
    Connected
    | LineReceived
    | Disconnected
    | TimerFired
    | ShuttingDown
    | StateFlushDue
    | OperatorChecked
    | Sequenced
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
