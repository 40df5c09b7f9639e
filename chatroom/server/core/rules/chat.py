"""What users say: chat, /me, and /msg to one user. No I/O."""

from __future__ import annotations

import math

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import RoomAction, SendPrivate
from chatroom.server.core.moderation_state import span
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, send, unknown_user
from chatroom.server.core.rules.sequencing import append
from chatroom.server.core.state import Member

_JSON = p.OutputFormat.JSON  # read once: an enum member's lookup is costly on every line


def chat(ctx: Context, member: Member, command: c.Chat, now: float) -> list[RoomAction]:
    if member.format is _JSON and command.text[0] == "{":  # a program's request
        return ctx.request(member, command.text, now)  # (rules/programs.py)
    return say(ctx, member, p.Message, command.text, now)


def me(ctx: Context, member: Member, command: c.Me, now: float) -> list[RoomAction]:
    return say(ctx, member, p.Action, command.text, now)


def say(
    ctx: Context, member: Member, kind: type[p.Message | p.Action], text: str, now: float
) -> list[RoomAction]:
    """``member`` says ``text`` (a message or a /me action) in the room its line is for."""
    refused = muted(ctx, member, now)
    if refused:
        return refused
    return append(ctx, said_event(ctx, member, kind, text, now), member)


def said_event(
    ctx: Context, member: Member, kind: type[p.Message | p.Action], text: str, now: float
) -> p.Message | p.Action:
    """The message or action ``member`` says, with its room's next seq (a chat line's and
    a request's: rules/programs.py)."""
    room = member.aimed or member.current  # member.here, without a property's call
    channel = ctx.state.rooms.get(room)
    seq = ctx.sequencer.next_seq(channel.seq if channel is not None else 0)
    return kind(seq=seq, ts=now, id=member.id, name=member.name, text=text, room=room)


def muted(ctx: Context, member: Member, now: float) -> list[RoomAction]:
    """The error for a muted member's chat, or nothing if it may speak."""
    moderation = ctx.moderation
    if not (moderation.mutes or moderation.kept_mutes):  # almost always: nobody is muted
        return []
    until = moderation.muted_until(member.id, member.name, now, member.address, member.here)
    if until is None:
        return []
    left = "" if until == math.inf else f" for {span(until - now)} more"
    return error(member, p.ErrorCode.MUTED, f"you are muted{left}: your line was not sent")


def private(ctx: Context, member: Member, command: c.Msg, now: float) -> list[RoomAction]:
    """A private message: to the sender and the recipient alone, on whichever node."""
    state = ctx.state
    user = state.user(state.holder_of(command.target) or "")
    if user is None:
        return error(member, p.ErrorCode.UNKNOWN_USER, unknown_user(command.target))
    message = p.Private(ts=now, sender=member.name, recipient=user.name, text=command.text)
    actions = send(member, message)
    if user.id == member.id:
        return actions
    if user.node != ctx.node:  # only in a shared room: its node delivers it
        return [*actions, SendPrivate(user.node, user.id, message, member.conn, member.id)]
    recipient = state.local(user.id)
    if recipient is None:
        return actions
    if recipient.away is not None:
        text = f"{recipient.name} is away: {recipient.away}"
        actions += send(member, p.Notice(code=p.NoticeCode.INFO, text=text))
    if member.id in recipient.ignoring:
        return actions  # silently: the sender is not told it is ignored
    return actions + send(recipient, message)


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Chat: chat,
    c.Me: me,
    c.Msg: private,
}
