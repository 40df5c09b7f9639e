"""What users decide for themselves: whom they ignore, and that they are away. No I/O.

``/ignore NAME`` is filtered on the server, so nc users have it too: the member gets
nothing more from that user — chat, ``/me``, private messages — while joins, leaves and
renames still show. The room's broadcasts are one shared payload per format
(:mod:`chatroom.server.core.outbox`); a broadcast from an ignored user names its ignorers
to *skip*, so only they get a copy of their own. The state keeps who ignores whom by the
ignored user's id: a broadcast from someone nobody ignores costs one lookup in an empty
dict.

Each confirmation carries its fact (docs/PROTOCOL.md, "Ignore and away"): ``ignored`` and
``unignored`` with the user's id and name, ``ignore_list`` with the ids, ``away`` and
``back``; chatroom-client reads those, never the words.

``/away [TEXT]`` marks the member away (no TEXT: back): it is shown in who, and a sender of
a private message to it is told.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import RoomAction
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, info, unknown_user
from chatroom.server.core.state import Member


def ignore(ctx: Context, member: Member, command: c.Ignore, now: float) -> list[RoomAction]:
    state, rules = ctx.state, ctx.rules
    if command.target is None:
        ids = tuple(member.ignoring)
        names = [_name_of(ctx, uid) for uid in ids]
        text = f"you ignore: {', '.join(names)}" if names else "you ignore nobody"
        return info(member, text, fact=p.Fact.IGNORE_LIST, ids=ids)
    user_id = state.holder_of(command.target)
    user = state.user(user_id) if user_id is not None else None
    if user is None:
        return error(member, p.ErrorCode.UNKNOWN_USER, unknown_user(command.target))
    if user.id == member.id:
        return error(member, p.ErrorCode.BAD_USAGE, "you cannot ignore yourself")
    if user.id not in member.ignoring and len(member.ignoring) >= rules.max_ignores:
        text = f"you ignore {rules.max_ignores} users already: /unignore one first"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    state.ignores.ignore(member, user.id)
    text = f"you ignore {user.name} (/unignore {user.name} to undo)"
    return info(member, text, fact=p.Fact.IGNORED, id=user.id, name=user.name)


def unignore(ctx: Context, member: Member, command: c.Unignore, now: float) -> list[RoomAction]:
    user_id = ctx.state.holder_of(command.target)
    if user_id is None or user_id not in member.ignoring:
        return info(member, f"you do not ignore {p.strip_controls(command.target)[:40]}")
    ctx.state.ignores.unignore(member, user_id)
    name = _name_of(ctx, user_id)
    text = f"you no longer ignore {name}"
    return info(member, text, fact=p.Fact.UNIGNORED, id=user_id, name=name)


def away(ctx: Context, member: Member, command: c.Away, now: float) -> list[RoomAction]:
    ctx.state.set_away(member, command.text)
    if command.text:
        return info(member, f"you are marked away: {command.text}", fact=p.Fact.AWAY)
    return info(member, "you are back", fact=p.Fact.BACK)


def _name_of(ctx: Context, user_id: str) -> str:
    user = ctx.state.user(user_id)
    return user.name if user is not None else user_id


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Ignore: ignore,
    c.Unignore: unignore,
    c.Away: away,
}
