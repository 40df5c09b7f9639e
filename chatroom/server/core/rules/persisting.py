"""What a room with a state file (``--state``) hands it, and its seq lease. No I/O.

Every ``state_flush`` seconds (:class:`~chatroom.server.core.inputs.StateFlushDue`) the
file is handed the request ids remembered since the last flush and then the history, if
it changed: the store's thread writes what waits in one transaction, so an id is in the
file whenever its line is. With them, once half of it is used, a longer seq lease
(:class:`~chatroom.server.core.sequencer.LocalSequencer`): the epoch record
``{"epoch", "lease"}``, which a restart after a crash goes on from. The file says when it
has it (:class:`~chatroom.server.core.inputs.LeaseGranted`). Until then, if the lease is
used up (a disk that stalls for thousands of events), lines and newcomers are refused with
one line each — never numbered past what the file holds. A clean stop writes where it
stopped instead (``{"epoch", "seq", "seqs"}``, the other rooms' in ``seqs``): the restart
goes on from there, with no seq gap. A crash's restart goes on from the lease in every
room the file keeps (core/room.py).
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.server.core.actions import (
    Close,
    ConnId,
    Deliver,
    Persist,
    RoomAction,
    TurnedAway,
)
from chatroom.server.core.admission import Cause
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import error
from chatroom.server.core.sequencer import LocalSequencer
from chatroom.server.core.state import Member

SAVING = "the server is saving its state: send that again in a moment"
SAVING_NEWCOMER = "the server is saving its state: connect again in a moment"


def flush(ctx: Context, now: float) -> list[RoomAction]:
    """The state file's share, if it changed: the request ids remembered since the last
    flush, the history, and a longer seq lease if one is due. The ids go first: the file's
    thread writes them with the history or before it, never after."""
    if not ctx.persisting or not isinstance(ctx.sequencer, LocalSequencer):
        return []
    state = ctx.state
    actions: list[RoomAction] = []
    fresh = ctx.requests.fresh()
    if fresh:
        data = {"entries": fresh, "before": now - ctx.requests.ttl, "cap": ctx.requests.size}
        actions.append(Persist("requests", "", data))
    actions += [  # the rooms' whose history changed (key "": the default room)
        Persist("history", "" if room == state.default else room, events)
        for room, events in state.rooms.changed_histories()
    ]
    return actions + lease(ctx)


def lease(ctx: Context) -> list[RoomAction]:
    """A longer seq lease asked of the state file, if one is due (the rooms' highest seq
    told to the sequencer first)."""
    sequencer = ctx.sequencer
    if not isinstance(sequencer, LocalSequencer) or sequencer.lease is None:
        return []
    sequencer.refresh(max(channel.seq for channel in ctx.state.rooms.all()))
    due = sequencer.lease_due()
    return [] if due is None else [Persist("epoch", "room", lease_record(ctx.state.epoch, due))]


def lease_record(epoch: str | None, lease: int) -> dict[str, object]:
    """The epoch record while the server runs: a crash restarts above ``lease``."""
    return {"epoch": epoch, "lease": lease}


def granted(ctx: Context, lease: int) -> list[RoomAction]:
    """The state file holds ``lease``."""
    if isinstance(ctx.sequencer, LocalSequencer):
        ctx.sequencer.grant(lease)
    return []


def short(ctx: Context) -> bool:
    """Whether the seq lease is used up: no line or newcomer can be taken now."""
    return ctx.sequencer.short()


def refuse_line(ctx: Context, member: Member) -> list[RoomAction]:
    """A line while the lease is used up: not handled, its sender told (one line)."""
    return error(member, p.ErrorCode.UNAVAILABLE, SAVING) + lease(ctx)


def refuse_newcomer(ctx: Context, conn: ConnId) -> list[RoomAction]:
    """A newcomer while the lease is used up: turned away as when the server is full."""
    notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=SAVING_NEWCOMER)
    return [
        Deliver.one(conn, p.OutputFormat.TEXT, notice),
        TurnedAway(conn, SAVING_NEWCOMER, Cause.FULL),
        Close(conn),
        *lease(ctx),
    ]


def stopped(ctx: Context, now: float) -> list[RoomAction]:
    """A clean stop: the epoch and the last seq, so a restart goes on from it (and the
    request ids, as every flush hands them)."""
    if not ctx.persisting or not isinstance(ctx.sequencer, LocalSequencer):
        return []
    state = ctx.state
    fresh = flush(ctx, now)
    kept: dict[str, object] = {"epoch": state.epoch, "seq": state.seq}
    others = {ch.key: ch.seq for ch in state.rooms.all() if ch.key != state.default}
    if others:
        kept["seqs"] = others
    return [a for a in fresh if not (type(a) is Persist and a.kind == "epoch")] + [
        Persist("epoch", "room", kept)
    ]
