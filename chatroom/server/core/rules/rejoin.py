"""A member of this node that a shared room's ledger lost joins again. No I/O.

The ledger restarted, or took this node for dead while it was only slow: the member is
still here, so its join is appended again — under its name unless someone holds it now.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.server.core.actions import Append, RoomAction
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import send
from chatroom.server.core.state import Member


def rejoin(ctx: Context, member: Member, now: float, room: str | None = None) -> list[RoomAction]:
    """``member`` is here but the ledger lost it in ``room`` (None: the default room): it
    joins again, under its name unless someone holds it now (then under its id, and it is
    told)."""
    room = room or ctx.state.default
    if ctx.state.holder_of(member.name) not in (None, member.id):
        return name_lost(member, member.name, now, room)
    join = p.Join(seq=0, ts=now, id=member.id, name=member.name, room=room)
    return [Append(join, member.conn)]


def name_lost(member: Member, name: str, now: float, room: str | None = None) -> list[RoomAction]:
    text = f"your name {name} was taken while you were away: you are {member.id} again"
    join = p.Join(seq=0, ts=now, id=member.id, name=member.id, room=room)
    notice = p.Notice(
        code=p.NoticeCode.INFO, text=text, fact=p.Fact.IDENTITY, id=member.id, name=member.id
    )
    return [*send(member, notice), Append(join, member.conn)]
