"""Names: /nick and ``rename|NAME``. No I/O.

A name is 1–32 characters of PRECIS's nickname profile and held by one user, compared
without case, form or look-alikes (:func:`chatroom.protocol.name_skeleton`).
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import RoomAction
from chatroom.server.core.rules import accounts
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, send
from chatroom.server.core.rules.sequencing import renamed_everywhere
from chatroom.server.core.state import Member


def rename(ctx: Context, member: Member, command: c.Nick, now: float) -> list[RoomAction]:
    new = command.name
    problem = p.name_problem(new)
    if problem is not None:
        return error(member, p.ErrorCode.NAME_INVALID, f"cannot use that name: {problem}")
    new = p.normal_name(new)
    if new == member.name:
        return send(member, p.Notice(code=p.NoticeCode.INFO, text=f"you are already {new}"))
    refused = accounts.refusal(ctx, member, new)
    if refused is not None:
        return refused
    holder = ctx.state.holder_of(new)
    if holder is not None and holder != member.id:
        return error(member, p.ErrorCode.NAME_TAKEN, taken(ctx, new, holder))
    if ctx.sequencer.rename_pending(member.conn):
        return error(member, p.ErrorCode.BAD_USAGE, "your previous rename is still under way")
    return renamed_everywhere(ctx, member, new, now)


def taken(ctx: Context, name: str, holder: str) -> str:
    """Why ``name`` is taken: by whom, if the holder's name only looks like it."""
    user = ctx.state.user(holder)
    if user is None or p.name_key(user.name) == p.name_key(name):
        return f"the name {name} is taken"
    return f"the name {name} is taken: it looks like {user.name}, who is online"


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Nick: rename,
}
