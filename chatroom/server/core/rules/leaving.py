"""Leaving the room: a connection that ended or is sent away, /quit, the server stopping.
No I/O."""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Close, ConnId, Left, RoomAction, Unsubscribe
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import send, to_everyone
from chatroom.server.core.rules.sequencing import append, next_seq, rooms_of
from chatroom.server.core.state import Member


def disconnect(
    ctx: Context,
    conn: ConnId,
    reason: p.LeaveReason,
    now: float,
    text: str | None = None,
    by: str | None = None,
) -> list[RoomAction]:
    """``conn`` is gone (or is being sent away); tell everyone else. Idempotent.

    A member admitted quietly and never announced leaves unannounced too: its join and
    leave take no seq, so nobody can tell they were there at all."""
    state = ctx.state
    subscribed = state.is_subscribed(conn)
    ctx.sequencer.forget(conn)
    member = state.remove_member(conn)
    if member is None:
        return []
    ctx.admission.churn.left(conn, member.connected_at, member.spoke, now)
    quiet = member.quiet_until is not None or member.waiting
    actions: list[RoomAction] = [Unsubscribe(conn)] if subscribed else []
    actions.append(Left(conn, member.name, reason, quiet=quiet))
    if quiet:
        return actions
    for room in rooms_of(ctx, member):
        actions += append(ctx, leave_event(ctx, member, room, reason, now, text, by), None)
    return actions


def leave_event(
    ctx: Context,
    member: Member,
    room: str,
    reason: p.LeaveReason,
    now: float,
    text: str | None = None,
    by: str | None = None,
) -> p.Leave:
    return p.Leave(
        seq=next_seq(ctx, room), ts=now, id=member.id, name=member.name, reason=reason,
        text=text, by=by, room=room,
    )  # fmt: skip


def send_away(
    ctx: Context, member: Member, told: str, now: float, reason: str | None, by: str
) -> list[RoomAction]:
    """An operator sends ``member`` away (a kick, a ban): it is ``told`` why, leaves with
    reason ``kicked`` and ``by``, and is closed."""
    notice = p.Notice(code=p.NoticeCode.INFO, text=told)
    return [
        *send(member, notice),
        *disconnect(ctx, member.conn, p.LeaveReason.KICKED, now, reason, by=by),
        Close(member.conn),
    ]


def quit_room(ctx: Context, member: Member, reason: str | None, now: float) -> list[RoomAction]:
    """/quit [REASON]."""
    conn = member.conn
    return [*disconnect(ctx, conn, p.LeaveReason.QUIT, now, reason), Close(conn)]


def quit_command(ctx: Context, member: Member, command: c.Quit, now: float) -> list[RoomAction]:
    return quit_room(ctx, member, command.reason, now)


def restart_away(ctx: Context, conn: ConnId, now: float) -> list[RoomAction]:
    """An upgrade cannot carry ``conn`` (TLS, WebSocket: docs/OPERATIONS.md, "Upgrades"): it
    is told to reconnect (a client does so by itself, and resumes by seq), leaves, and is
    closed."""
    member = ctx.state.member(conn)
    if member is None:
        return [Close(conn)]
    notice = p.Notice(code=p.NoticeCode.SHUTDOWN, text=RESTART_NOTICE)
    return [
        *send(member, notice),
        *disconnect(ctx, conn, p.LeaveReason.SHUTDOWN, now, "upgrade"),
        Close(conn),
    ]


RESTART_NOTICE = "the server restarts for an upgrade: reconnect, you will be back at once"


def shutdown(ctx: Context) -> list[RoomAction]:
    """The server is stopping: tell everyone and close every connection.

    Everyone leaves at once, so each user gets one ``shutdown`` notice rather than a leave
    line for every other user (which would be N² lines for N users)."""
    notice = p.Notice(code=p.NoticeCode.SHUTDOWN, text="the server is shutting down")
    actions = to_everyone(ctx, notice)
    ctx.sequencer.everyone_left()
    for conn in ctx.state.everyone_leaves():
        actions += [Unsubscribe(conn), Close(conn)]
    return actions


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Quit: quit_command,
}
