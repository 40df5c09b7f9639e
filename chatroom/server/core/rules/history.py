"""History on demand: ``/history [N]`` and ``/history since SEQ [EPOCH]``. No I/O.

Answered to the asker alone from what its room keeps in memory (``--keep`` messages:
:class:`~chatroom.server.core.history.ChatHistory`; a shared room's node keeps them as it
applies the stream, so no read of Redis is needed). An answer is a ``history`` notice
(``count`` messages follow, ``seq`` the last seq they cover, ``more`` if /history since
must be asked again from there), then the messages, oldest first, each marked
``history``, at most ``history_max`` of them; it is counted against flood control by its
size, as a who reply is.

``/history since SEQ EPOCH`` of another epoch (the room's history started over since the
asker saw SEQ) is answered with a ``reset`` notice naming the room's epoch, then the
newest ``--history`` messages, as a newcomer is replayed them. A SEQ older than what is
kept gets a ``history_gap`` notice first; a SEQ the room never reached (its seqs are lower)
is a reset too. So does a SEQ in a *hole* (the seqs a killed server gave after its state
file's last flush, or a shared room's node never read: core/history.py), and an answer
from before a hole stops at it, with ``more``.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Charge, Deliver, RoomAction, encode
from chatroom.server.core.channel import Channel
from chatroom.server.core.rules.context import Context
from chatroom.server.core.sequencer import LocalSequencer
from chatroom.server.core.state import Member

RESET_TEXT = "the room's history started over since seq {seq}: its epoch is now {epoch}"
GAP_TEXT = "messages after seq {seq} up to seq {kept} are no longer kept"
HOLE_TEXT = (
    "messages after seq {seq} up to seq {kept} may be missing: they were not saved before"
    " the server stopped, or not read here"
)


def last(ctx: Context, member: Member, command: c.History, now: float) -> list[RoomAction]:
    """``/history [N]``: the newest N messages (at most ``history_max``)."""
    count = ctx.rules.history if command.count is None else command.count
    events = _room(ctx, member).history.last(min(count, ctx.rules.history_max))
    text = f"the last {_messages(len(events))}"
    return answer(ctx, member, [], events, text, more=False)


def since(ctx: Context, member: Member, command: c.HistorySince, now: float) -> list[RoomAction]:
    """``/history since SEQ [EPOCH]``: what came after SEQ, or why it cannot be told."""
    state, seq, room = ctx.state, command.seq, _room(ctx, member)
    other_epoch = command.epoch is not None and command.epoch != state.epoch
    if seq > room.seq and not other_epoch and not isinstance(ctx.sequencer, LocalSequencer):
        # A shared room's node that has not applied SEQ yet (another node's client saw
        # it): nothing is missed; what follows comes live (a client drops seqs it has).
        return answer(ctx, member, [], [], f"nothing since seq {seq}")
    if other_epoch or seq > room.seq:
        text = RESET_TEXT.format(seq=seq, epoch=state.epoch)
        reset = p.Notice(code=p.NoticeCode.RESET, text=text, epoch=state.epoch, room=room.key)
        events = room.history.last(min(ctx.rules.history, ctx.rules.history_max))
        return answer(ctx, member, [reset], events, f"the last {_messages(len(events))}")
    notices: list[p.Event] = []
    kept_from = room.history.gap(seq, room.seq)
    if kept_from is not None:
        hole = room.history.hole
        text = (HOLE_TEXT if hole is not None and kept_from == hole[1] else GAP_TEXT).format(
            seq=seq, kept=kept_from
        )
        gap = p.Notice(code=p.NoticeCode.HISTORY_GAP, text=text, seq=kept_from, room=room.key)
        notices.append(gap)
        seq = kept_from
    events, more = room.history.after(seq, ctx.rules.history_max)
    text = f"{_messages(len(events))} since seq {command.seq}"
    return answer(ctx, member, notices, events, text, more=more)


def answer(
    ctx: Context,
    member: Member,
    before: list[p.Event],
    events: list[p.Message | p.Action],
    text: str,
    *,
    more: bool = False,
) -> list[RoomAction]:
    """The notices ``before``, the ``history`` notice, then ``events`` marked history: one
    delivery, counted against flood control by its size. The notice's ``seq`` is how far
    the answer covers the room: its last event's with ``more`` (ask again from there),
    else the room's last seq (nothing after it was left out)."""
    room = _room(ctx, member)
    last = events[-1].seq if more else room.seq
    if more:
        text += f" (more: ask /history since {last})"
    head = p.Notice(
        code=p.NoticeCode.HISTORY, text=text, count=len(events), seq=last, more=more, room=room.key
    )
    replayed = [p.replace(event, history=True) for event in events]
    out: list[p.Event] = [*before, head, *replayed]
    payload = b"".join(encode(event, member.format) for event in out)
    actions: list[RoomAction] = [Deliver((member.conn,), payload, tuple(out))]
    extra = len(events) // max(1, ctx.rules.who_users_per_line)
    return [*actions, Charge(member.conn, extra)] if extra else actions


def _room(ctx: Context, member: Member) -> Channel:
    """The room the asking line is for (one it is in: it exists)."""
    return ctx.state.rooms.get(member.here) or ctx.state.rooms.main


def _messages(count: int) -> str:
    return "1 message" if count == 1 else f"{count} messages"


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.History: last,
    c.HistorySince: since,
}
