"""What the room asks its adapter to do, and what it reports having decided. No I/O.

The room answers every event with a list of these frozen values. The output actions
(:class:`Deliver`, :class:`Broadcast`, :class:`Subscribe`, :class:`Unsubscribe`,
:class:`Close`) are carried out by the adapter through the outbox; the reports
(:class:`Admitted`, :class:`TurnedAway`, :class:`Renamed`, :class:`Left`) say what the room
decided so the adapter can log it without comparing the room's state before and after;
:class:`Append`, :class:`SendPrivate`, :class:`ModerateElsewhere` and
:class:`AnswerElsewhere` exist only in a room shared through a ledger;
:class:`Persist` only in a room that keeps its state in a file (``--state``);
:class:`CheckPassword` and :class:`HashPassword` are work for the adapter to do off the event
loop.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from chatroom import protocol as p
from chatroom.server.core.admission import Cause
from chatroom.server.core.node_requests import ModerationAnswer, ModerationRequest
from chatroom.server.core.text_format import render_text

ConnId = int  # the adapter's opaque number for one connection


class _Value(msgspec.Struct, frozen=True, gc=False):
    """A frozen value, equal by value. A msgspec Struct rather than a frozen dataclass: the
    room makes several per chat line, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` per field) cost ~9x as much. ``gc=False``: they hold strings,
    numbers, bytes, events and containers of those, never a cycle."""


def encode(event: p.Event, fmt: p.OutputFormat) -> bytes:
    """``event`` as the bytes a connection in ``fmt`` receives, line ending included."""
    if fmt is p.OutputFormat.JSON:
        return p.encode_json_line(event)
    return render_text(event).encode()


# --- output


class Deliver(_Value):
    """Write ``payload``, the encoded ``events``, to each of ``recipients``."""

    recipients: tuple[ConnId, ...]
    payload: bytes
    events: tuple[p.Event, ...]

    @classmethod
    def one(cls, conn: ConnId, fmt: p.OutputFormat, event: p.Event) -> Deliver:
        return cls((conn,), encode(event, fmt), (event,))


class Broadcast(_Value):
    """Write ``payload``, the encoded ``events``, to every subscriber of ``room`` in ``fmt``
    but those in ``skip`` (members who /ignore its sender; almost always none)."""

    fmt: p.OutputFormat
    payload: bytes
    events: tuple[p.Event, ...]
    skip: frozenset[ConnId] = frozenset()
    room: str = p.DEFAULT_ROOM


class Subscribe(_Value):
    """From here on ``conn`` receives ``room``'s broadcasts, in ``fmt`` (the format of all
    its rooms: a subscription in another format replaces them all)."""

    conn: ConnId
    fmt: p.OutputFormat
    room: str = p.DEFAULT_ROOM


class Unsubscribe(_Value):
    """From here on ``conn`` receives no broadcasts of ``room`` (None: of any room)."""

    conn: ConnId
    room: str | None = None


class Close(_Value):
    """Close ``conn`` once what was delivered to it has been flushed."""

    conn: ConnId


class Charge(_Value):
    """Count ``lines`` more lines against ``conn``'s flood control: what it asked for was
    as costly as that many lines (a who of a big room)."""

    conn: ConnId
    lines: int


# --- reports: what the room decided, for the log


class Admitted(_Value):
    """``conn`` is in the room as ``name``; ``online`` connections are on this node.
    ``quiet``: admitted while the room churns, its join not yet announced. ``waiting``:
    connected to a room with a password it has not given yet (then it is reported again)."""

    conn: ConnId
    name: str
    online: int
    quiet: bool = False
    waiting: bool = False


class TurnedAway(_Value):
    """``conn`` was refused (it is told why and closed): ``reason`` is the text it got."""

    conn: ConnId
    reason: str
    cause: Cause


class Renamed(_Value):
    conn: ConnId
    old: str
    new: str


class Left(_Value):
    """``conn``, known as ``name``, left the room (or was sent away) for ``reason``."""

    conn: ConnId
    name: str
    reason: p.LeaveReason
    quiet: bool = False  # it was never announced, and neither is its leave


# --- a room shared through a ledger (chatroom.server.core.rules.shared)


class Append(_Value):
    """Have the shared ledger sequence ``event`` (its ``seq`` is still 0).

    The ledger gives it the room-wide seq, or refuses it (a name taken on another node, the
    ledger unreachable): the caller then hands the room ``Sequenced`` — on
    every node, for every event, in the ledger's order — or ``AppendRefused``.
    """

    event: p.BroadcastEvent
    conn: ConnId | None  # whose line it came from, to tell them if it is refused
    # A chat line sent as a request (rules/programs.py): the ledger appends it only if this
    # key (its sender's name key and id) was not seen within the request TTL.
    request: str | None = None


class SendPrivate(_Value):
    """Carry a private message to ``recipient_id`` on another node."""

    node: str
    recipient_id: str
    event: p.Private
    sender: ConnId  # told if the message cannot be carried
    sender_id: str  # so the recipient's node can drop it if the recipient ignores them


class ModerateElsewhere(_Value):
    """Have ``node``, which holds the user an operator's command names, carry it out.

    The caller hands the room ``ModerationAnswered`` when the answer
    comes, or ``ModerationUndelivered`` if nobody on ``node`` heard it or no
    answer came in time.
    """

    node: str
    request: ModerationRequest
    operator: ConnId  # told if it cannot be carried


class AnswerElsewhere(_Value):
    """Tell the operator on ``node`` how its command on our user went (at most once: an
    answer nobody hears is lost, and the operator is told its command may not have been
    carried out)."""

    node: str
    answer: ModerationAnswer


class Moderated(_Value):
    """A moderation decision about ``conn`` (an /oper, a kick...), for the log: ``text``
    says what, never with a password. ``flood``: the kind of report an attacker can make
    many of (a wrong /oper), logged once per interval and kind."""

    conn: ConnId
    text: str
    flood: str = ""


# --- work the adapter does off the event loop


class Check(StrEnum):
    """What a password is checked for: ``/oper NAME`` against the ops file's hash, or
    ``/login NAME`` against the registered name's."""

    OPER = "oper"
    LOGIN = "login"


class CheckPassword(_Value):
    """Check ``password`` against ``stored`` (a scrypt hash: an ops file's, a registered
    name's, or a decoy for a name that is no operator's) off the event loop, in a bounded
    pool, and hand the room :class:`~chatroom.server.core.inputs.PasswordChecked` for
    ``conn``, ``purpose`` and ``name``. The password is in no repr and no log."""

    conn: ConnId
    purpose: Check
    name: str
    password: str
    stored: str

    def __repr__(self) -> str:
        return (
            f"CheckPassword(conn={self.conn!r}, purpose={self.purpose.value!r}, "
            f"name={self.name!r}, password=<hidden>)"
        )

    def __rich_repr__(self) -> Any:
        yield "conn", self.conn
        yield "purpose", self.purpose.value
        yield "name", self.name


class HashPassword(_Value):
    """Hash ``password`` (scrypt, as the ops file's) for ``conn``'s ``/register`` of
    ``name``, off the event loop in the same pool, and hand the room
    :class:`~chatroom.server.core.inputs.PasswordHashed`. The password is in no repr."""

    conn: ConnId
    name: str
    password: str

    def __repr__(self) -> str:
        return f"HashPassword(conn={self.conn!r}, name={self.name!r}, password=<hidden>)"

    def __rich_repr__(self) -> Any:
        yield "conn", self.conn
        yield "name", self.name


PasswordWork = CheckPassword | HashPassword


# --- state that survives a restart (--state; chatroom.server.adapter.store)


class Persist(_Value):
    """Keep this in the state file, so a restarted server has it back (:class:`Restored`).

    ``kind`` ``"history"``: ``data`` is a room's whole history now, a tuple of messages and
    actions, oldest first (``key``: the room's, ``""`` the default room's): it replaces what
    the file had; empty: the room is gone, its lines go. ``"topic"`` is kept under
    ``"topic"`` (the default room's) or ``"#KEY"``.
    ``"ban"``, ``"mute"``, ``"topic"``, ``"account"`` (a registered name, under its
    skeleton): ``data`` is the record to keep under ``key`` (a plain dict), or None to
    forget it. Only a room made with ``restored``, or a shared one, reports these.
    """

    kind: str
    key: str
    data: Any


class Restored(_Value):
    """What the state file held at start, for a new room: the recent chat (oldest first),
    the bans, mutes and registered names as :class:`Persist` kept them (``key -> record``)
    and the topic — the default room's; ``histories`` and ``topics`` are the other rooms'
    (by room key) — and the request ids remembered (``[name key, id, seq, when]``). Where
    the rooms go on: the ``epoch`` (None: a new one), ``seq`` and ``seqs`` (the other
    rooms') after a clean stop where they stopped; after a crash every room's is the seq
    lease, and ``lost``: seqs after the last message kept may be lost. ``lease``: the seq
    lease the file holds now (None: no lease)."""

    history: tuple[p.Message | p.Action, ...] = ()
    bans: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    mutes: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    topic: dict[str, Any] | None = None
    topics: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)  # other rooms'
    histories: dict[str, tuple[p.Message | p.Action, ...]] = msgspec.field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    epoch: str | None = None
    seq: int = 0
    seqs: dict[str, int] = msgspec.field(default_factory=dict)  # other rooms', likewise
    requests: tuple[tuple[Any, ...], ...] = ()
    lost: bool = False
    lease: int | None = None


Report = Admitted | TurnedAway | Renamed | Left | Moderated
RoomAction = (
    Deliver
    | Broadcast
    | Subscribe
    | Unsubscribe
    | Close
    | Charge
    | Report
    | Append
    | SendPrivate
    | ModerateElsewhere
    | AnswerElsewhere
    | Persist
    | CheckPassword
    | HashPassword
)
# What a moderation rule did, and what the operator who asked for it is told (rules/moderation.py).
Outcome = tuple[list[RoomAction], list[p.Notice | p.Error]]
