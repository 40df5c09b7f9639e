"""What users say: chat, /me, and /msg to one user. No I/O."""

from __future__ import annotations

import math

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import RoomAction, SendPrivate
from chatroom.server.core.moderation_state import span
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error, send, unknown_user
from chatroom.server.core.rules.sequencing import append, next_seq
from chatroom.server.core.state import Member


def chat(ctx: Context, member: Member, command: c.Chat, now: float) -> list[RoomAction]:
    refused = muted(ctx, member, now)
    if refused:
        return refused
    message = p.Message(
        seq=next_seq(ctx), ts=now, id=member.id, name=member.name, text=command.text
    )
    return append(ctx, message, member)


def me(ctx: Context, member: Member, command: c.Me, now: float) -> list[RoomAction]:
    refused = muted(ctx, member, now)
    if refused:
        return refused
    action = p.Action(seq=next_seq(ctx), ts=now, id=member.id, name=member.name, text=command.text)
    return append(ctx, action, member)


def muted(ctx: Context, member: Member, now: float) -> list[RoomAction]:
    """The error for a muted member's chat, or nothing if it may speak."""
    moderation = ctx.moderation
    if not (moderation.mutes or moderation.kept_mutes):  # almost always: nobody is muted
        return []
    until = moderation.muted_until(member.id, member.name, now, member.address)
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
