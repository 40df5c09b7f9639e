"""Timers' decisions: the idle warning and kick, and a quiet newcomer's announcement. No I/O.

The adapter asks :func:`next_check` when to call back for a connection, and calls
:func:`check` then; the rule decides from the member's last line and the time it is given.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.server.core.actions import Close, ConnId, Deliver, RoomAction
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.leaving import disconnect
from chatroom.server.core.rules.output import send
from chatroom.server.core.rules.sequencing import announce
from chatroom.server.core.state import Member


def next_check(ctx: Context, member: Member) -> float | None:
    """When the caller should next call :func:`check` for ``member`` (None: never): to
    warn or kick it when idle, or to announce it if it was admitted quietly."""
    rules = ctx.rules
    deadline = None
    if rules.idle_timeout > 0:
        deadline = member.last_active + rules.idle_timeout
        if rules.idle_timeout > rules.idle_warning_min_timeout and not member.warned:
            deadline -= rules.idle_warning_lead
    if member.quiet_until is not None:
        return member.quiet_until if deadline is None else min(deadline, member.quiet_until)
    return deadline


def check(ctx: Context, conn: ConnId, now: float) -> list[RoomAction]:
    """A timer for ``conn`` fired: announce it if it was admitted quietly and its time has
    come; warn or kick it if it has been idle long enough."""
    member = ctx.state.member(conn)
    if member is None:
        return []
    actions: list[RoomAction] = []
    if member.quiet_until is not None and now >= member.quiet_until:
        actions = announce(ctx, member, now)
    rules = ctx.rules
    timeout = rules.idle_timeout
    if timeout <= 0:
        return actions
    idle = now - member.last_active
    if idle >= timeout:
        notice = p.Notice(
            code=p.NoticeCode.TIMEOUT, text=f"disconnected: no line from you for {timeout:g}s"
        )
        return [
            *actions,
            Deliver.one(conn, member.format, notice),
            *disconnect(ctx, conn, p.LeaveReason.TIMEOUT, now),
            Close(conn),
        ]
    warn_at = timeout - rules.idle_warning_lead
    if timeout > rules.idle_warning_min_timeout and not member.warned and idle >= warn_at:
        member.warn()
        left = timeout - idle
        notice = p.Notice(
            code=p.NoticeCode.IDLE_WARNING,
            text=f"you will be disconnected in {left:.0f}s unless you send a line",
            fact=p.Fact.IDLE,
            seconds=int(f"{left:.0f}"),
        )
        return actions + send(member, notice)
    return actions
