"""What one node of a shared room asks another on its private channel, and the answer.
No I/O.

An operator's ``/kick``, ``/ban NAME``, ``/mute`` or ``/unmute`` naming a user of another
node is carried out by that node, which alone holds the user's connection and address: the
operator's node sends a :class:`ModerationRequest` on the target node's private pub/sub
channel (the one ``/msg`` uses), and the target's node sends back a
:class:`ModerationAnswer` with what the operator is told.

What the nodes trust: a node acts on a request as on any other node's word through Redis
(an appended event, a ban record): that its operator is verified (only a node's room makes
a request, and only for a member that ``/oper`` made an operator). A payload is taken only
in these exact shapes, checked here as it is decoded, and can ask for nothing but these
four commands on one user of the receiving node.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from chatroom import protocol as p

_Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ModerationRequest(msgspec.Struct, frozen=True, tag_field="type", tag="moderate"):
    """An operator of ``by_node`` asks the target's node for ``command`` on its user."""

    request: int  # the asking node's number for it, which its answer repeats
    command: Literal["kick", "ban", "mute", "unmute"]
    target_id: str
    # Its name when the operator named it: a user renamed since is not the one meant.
    target: _Name
    by: _Name  # the operator's name, as the target is told ("kicked by NAME")
    by_id: str  # the operator's user id on by_node, whom the answer is for
    by_node: str
    seconds: Annotated[float, msgspec.Meta(gt=0)] | None = None  # ban, mute; None: no end
    reason: Annotated[str, msgspec.Meta(max_length=200)] | None = None  # kick, ban
    # A kick out of this room alone (not the default room, where a kick disconnects).
    room: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_.-]{1,32}$")] | None = None


class ModerationAnswer(msgspec.Struct, frozen=True, tag_field="type", tag="moderated"):
    """What the operator of a :class:`ModerationRequest` is told (nothing, for a kick:
    it sees the leave, as everyone does)."""

    request: int
    to_id: str  # the operator's user id
    events: tuple[p.Notice | p.Error, ...] = ()


NodeMessage = ModerationRequest | ModerationAnswer
TYPES = frozenset({"moderate", "moderated"})  # the payload types of these messages


def to_payload(message: NodeMessage) -> dict[str, Any]:
    """The JSON object a message is published as."""
    return msgspec.to_builtins(message)


def from_payload(payload: dict[str, Any]) -> NodeMessage:
    """The message a published JSON object holds; raises ValueError (one line) if it is
    not exactly one of them."""
    try:
        return msgspec.convert(payload, NodeMessage)
    except msgspec.ValidationError as exc:
        raise ValueError(f"not a node request: {exc}") from None
