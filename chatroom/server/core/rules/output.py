"""The room's output: an event for one member, for everyone, and its greeting. No I/O."""

from __future__ import annotations

from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import Broadcast, ConnId, Deliver, Persist, RoomAction, encode
from chatroom.server.core.rules.context import Context
from chatroom.server.core.state import Member


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


def broadcast(ctx: Context, event: p.Event, skip: set[ConnId] | None = None) -> list[RoomAction]:
    """The event for everyone in the room (but ``skip``, those ignoring its sender):
    encoded once per output format in use."""
    formats = ctx.state.formats_in_use()
    if skip:
        skipped = frozenset(skip)
        return [Broadcast(fmt, encode(event, fmt), (event,), skipped) for fmt in formats]
    return [Broadcast(fmt, encode(event, fmt), (event,)) for fmt in formats]


def persist(ctx: Context, kind: str, key: str, data: Any) -> list[RoomAction]:
    return [Persist(kind, key, data)] if ctx.persisting else []


def topic_text(ctx: Context) -> str | None:
    """The topic for a welcome (None: none set)."""
    topic = ctx.moderation.topic
    return topic.text if topic is not None and topic.text else None


def greeting(ctx: Context, member: Member) -> list[RoomAction]:
    """A welcome, the motd and the history, for a member whose join is sequenced (or that
    changed its format)."""
    state = ctx.state
    unannounced = state.user(member.id) is None  # quiet, or its join is pending
    welcome = p.Welcome(
        id=member.id,
        name=member.name,
        idle_timeout=ctx.rules.idle_timeout,
        users=state.user_count + unannounced,
        epoch=state.epoch,
        topic=topic_text(ctx),
    )
    events: list[p.Event] = [welcome]
    motd = ctx.moderation.motd
    if motd is not None:
        events.append(p.Notice(code=p.NoticeCode.MOTD, text=motd))
    if not member.bot:  # a program asks with /history (docs/BOTS.md)
        replay = state.chat.last(ctx.rules.history)
        events += [p.replace(event, history=True) for event in replay]
    payload = b"".join(encode(event, member.format) for event in events)
    return [Deliver((member.conn,), payload, tuple(events))]
