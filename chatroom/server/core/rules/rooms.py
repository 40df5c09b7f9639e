"""Rooms: /join, /part, /rooms, and an operator's /kick out of a room. No I/O.

A connection is always in at least one room. In text mode (nc) it is in one: ``/join``
moves it (a ``part`` leave in the old room, a join in the new) and ``/part`` takes it back
to the default room. In JSON mode ``/join`` adds a room and ``/part`` leaves one; its plain
lines go to the room it joined (or named in ``/join``) last, and a request may name the
room of its line (rules/programs.py). Rooms themselves are data in
:class:`~chatroom.server.core.state.RoomState` (docs/PROTOCOL.md, "Rooms").
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import RoomAction
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.leaving import leave_event
from chatroom.server.core.rules.output import error, room_greeting, send
from chatroom.server.core.rules.sequencing import append, next_seq
from chatroom.server.core.state import Member

_TEXT = p.OutputFormat.TEXT


def join(ctx: Context, member: Member, command: c.Join, now: float) -> list[RoomAction]:
    room = p.room_key(command.room)
    if room is None:
        return error(member, p.ErrorCode.BAD_ROOM, p.ROOM_RULE)
    state = ctx.state
    if room in member.rooms:  # named again: it is where its lines go now
        state.make_current(member, room)
        return room_greeting(ctx, member, room)
    refused = _limit(ctx, member, room)
    if refused:
        return refused
    actions: list[RoomAction] = []
    if member.format is _TEXT:  # one room at a time: it leaves the one it is in
        for old in list(member.rooms):
            actions += append(ctx, leave_event(ctx, member, old, p.LeaveReason.PART, now), member)
    return actions + _enter(ctx, member, room, now)


def part(ctx: Context, member: Member, command: c.Part, now: float) -> list[RoomAction]:
    room = p.room_key(command.room) if command.room is not None else member.here
    if room is None:
        return error(member, p.ErrorCode.BAD_ROOM, p.ROOM_RULE)
    default = ctx.state.default
    if room not in member.rooms:
        return error(member, p.ErrorCode.NOT_IN_ROOM, f"you are not in {p.shown_room(room)}")
    if member.format is _TEXT or member.rooms == [room]:
        if room == default:
            text = f"you are in {p.shown_room(default)}; /join ROOM goes to another room"
            return error(member, p.ErrorCode.NOT_IN_ROOM, text)
        return join(ctx, member, c.Join(default), now)  # back to the default room
    return append(ctx, leave_event(ctx, member, room, p.LeaveReason.PART, now), member)


def list_rooms(ctx: Context, member: Member, command: c.Rooms, now: float) -> list[RoomAction]:
    shown = [ch for ch in ctx.state.rooms.all() if len(ch) or ch.listed]
    shown.sort(key=lambda channel: channel.key)
    limit = ctx.rules.rooms_listed
    entries = tuple(
        p.RoomEntry(
            room=channel.key,
            users=len(channel),
            topic=topic.text if (topic := ctx.moderation.topic_of(channel.key)) else None,
        )
        for channel in shown[:limit]
    )
    total = len(shown) if len(shown) > limit else None
    return send(member, p.RoomList(rooms=entries, total=total))


def kick_out(
    ctx: Context, target: Member, room: str, by: str, reason: str | None, now: float
) -> list[RoomAction]:
    """An operator sends ``target`` out of ``room`` (not the default room: a kick there
    disconnects): a ``kicked`` leave there; a member that was in no other room joins the
    default room first (its name is never free meanwhile)."""
    why = f": {reason}" if reason else ""
    told = f"you were kicked out of {p.shown_room(room)} by {by}{why}"
    actions = send(target, p.Notice(code=p.NoticeCode.INFO, text=told))
    if target.rooms == [room]:  # its only room: it goes to the default room first
        actions += _enter(ctx, target, ctx.state.default, now)
    leave = leave_event(ctx, target, room, p.LeaveReason.KICKED, now, reason, by)
    return actions + append(ctx, leave, None)


def _enter(ctx: Context, member: Member, room: str, now: float) -> list[RoomAction]:
    join = p.Join(seq=next_seq(ctx, room), ts=now, id=member.id, name=member.name, room=room)
    return append(ctx, join, member)


def _limit(ctx: Context, member: Member, room: str) -> list[RoomAction]:
    """The error for a join past a limit: the connection's rooms, or the server's."""
    rules = ctx.rules
    if member.format is not _TEXT and len(member.rooms) >= rules.rooms_per_connection:
        text = f"you are in {len(member.rooms)} rooms, the most one may be in; /part one first"
        return error(member, p.ErrorCode.ROOM_LIMIT, text)
    if ctx.state.rooms.get(room) is None and len(ctx.state.rooms) >= rules.max_rooms:
        text = f"the server has {rules.max_rooms} rooms, the most it holds; join one (/rooms)"
        return error(member, p.ErrorCode.ROOM_LIMIT, text)
    return []


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Join: join,
    c.Part: part,
    c.Rooms: list_rooms,
}
