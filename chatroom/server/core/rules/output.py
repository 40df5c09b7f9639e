"""The room's output: an event for one member, for everyone, and its greeting. No I/O."""

from __future__ import annotations

from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import Broadcast, ConnId, Deliver, Persist, RoomAction, encode
from chatroom.server.core.channel import Channel
from chatroom.server.core.rules.context import Context
from chatroom.server.core.state import Member

_NOBODY: frozenset[ConnId] = frozenset()


def send(member: Member, event: p.Event) -> list[RoomAction]:
    return [Deliver.one(member.conn, member.format, event)]


def error(member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
    return send(member, p.Error(code=code, message=message))


def info(member: Member, text: str, **facts: Any) -> list[RoomAction]:
    """An ``info`` notice for ``member``: ``text`` for people, ``facts`` for programs
    (:class:`~chatroom.protocol.Fact` and its fields)."""
    return send(member, p.Notice(code=p.NoticeCode.INFO, text=text, **facts))


def unknown_user(name: str) -> str:
    """The error for a command that names nobody in the room."""
    return f"no user named {p.strip_controls(name)[:40]} is online"


def broadcast(
    ctx: Context, event: p.Event, skip: set[ConnId] | None = None, room: str | None = None
) -> list[RoomAction]:
    """The event for everyone in its room (``room``, else the event's, else the default
    room; but ``skip``, those ignoring its sender): encoded once per output format in use."""
    room = room or getattr(event, "room", None) or ctx.state.default
    channel = ctx.state.rooms.get(room)
    return broadcast_in(channel, event, skip) if channel is not None else []


def broadcast_in(channel: Channel, event: p.Event, skip: set[ConnId] | None) -> list[RoomAction]:
    """:func:`broadcast` to ``channel``, found already (a chat line's path)."""
    room, skipped = channel.key, frozenset(skip) if skip else _NOBODY
    return [
        Broadcast(f, encode(event, f), (event,), skipped, room) for f in channel.formats_in_use()
    ]


def to_everyone(ctx: Context, event: p.Event) -> list[RoomAction]:
    """The event for every member of this node, once each, whatever rooms it is in."""
    by_format: dict[p.OutputFormat, list[ConnId]] = {}
    for member in ctx.state.members():
        if member.rooms:
            by_format.setdefault(member.format, []).append(member.conn)
    return [Deliver(tuple(conns), encode(event, fmt), (event,)) for fmt, conns in by_format.items()]


def persist(ctx: Context, kind: str, key: str, data: Any) -> list[RoomAction]:
    return [Persist(kind, key, data)] if ctx.persisting else []


def topic_text(ctx: Context, room: str | None = None) -> str | None:
    """The topic of ``room`` (None: the default room) for a greeting (None: none set)."""
    topic = ctx.moderation.topic_of(room or ctx.state.default)
    return topic.text if topic is not None and topic.text else None


def greeting(ctx: Context, member: Member) -> list[RoomAction]:
    """A welcome, the motd and the history, for a member whose join is sequenced (or that
    changed its format)."""
    state = ctx.state
    main = state.rooms.main
    unannounced = not main.has(member.id)  # quiet, or its join is pending
    welcome = p.Welcome(
        id=member.id,
        name=member.name,
        idle_timeout=ctx.rules.idle_timeout,
        users=len(main) + unannounced,
        epoch=state.epoch,
        topic=topic_text(ctx),
        room=main.key,
    )
    events: list[p.Event] = [welcome]
    motd = ctx.moderation.motd
    if motd is not None:
        events.append(p.Notice(code=p.NoticeCode.MOTD, text=motd))
    return _with_replay(ctx, member, events, main.key)


def room_greeting(ctx: Context, member: Member, room: str) -> list[RoomAction]:
    """What one who joins ``room`` (not the default room) gets before its join: the room,
    its users and topic, then its recent history."""
    channel = ctx.state.rooms.get(room)
    users = len(channel) if channel is not None else 0
    users += channel is None or not channel.has(member.id)
    entered = p.RoomEntered(room=room, users=users, topic=topic_text(ctx, room))
    return _with_replay(ctx, member, [entered], room)


def _with_replay(
    ctx: Context, member: Member, events: list[p.Event], room: str
) -> list[RoomAction]:
    channel = ctx.state.rooms.get(room)
    if not member.bot and channel is not None:  # a program asks with /history (docs/BOTS.md)
        replay = channel.history.last(ctx.rules.history)
        events += [p.replace(event, history=True) for event in replay]
    payload = b"".join(encode(event, member.format) for event in events)
    return [Deliver((member.conn,), payload, tuple(events))]
