"""What a room shared by several servers through a ledger (Redis) adds. No I/O.

The ledger sequences every broadcast event (:class:`~chatroom.server.core.sequencer.
LedgerSequencer`); what follows from that, beyond one server's rules, lives here:

- lines a member sends while its join or rename is with the ledger wait (``held_lines`` at
  most); while the ledger is unavailable, lines that need the room are refused at once as
  ``unavailable``, and only its choice of format waits (:func:`held`);
- the ledger may refuse an append (:func:`refused`): a name taken on another node, an id
  another node's user holds (it joins again under its id with this node's tag), the ledger
  unreachable;
- after an outage the ledger's view replaces this node's (:func:`resync`);
- a private message from or to another node (:func:`remote_private`,
  :func:`private_undelivered`).

Bans, mutes and the topic every node shares, and an operator's command on another node's
user, are in :mod:`.shared_moderation`.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import (
    Append,
    Close,
    ConnId,
    RoomAction,
    TurnedAway,
    Unsubscribe,
)
from chatroom.server.core.admission import Cause
from chatroom.server.core.codec import LineTooLong, command_of
from chatroom.server.core.inputs import Resynced
from chatroom.server.core.refusal import Refusal
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.entry import guest_name
from chatroom.server.core.rules.output import error, send, to_everyone
from chatroom.server.core.rules.programs import refused_id, with_id
from chatroom.server.core.rules.rejoin import name_lost, rejoin
from chatroom.server.core.rules.sequencing import admit
from chatroom.server.core.sequencer import LedgerSequencer
from chatroom.server.core.state import Member

UNSENT = "your last line may not have reached the room: it is unavailable right now"
UNJOINED = (
    "the room is unavailable; you will join when it is back (until then what you send is not"
    " delivered)"
)


def ledger(ctx: Context) -> LedgerSequencer:
    sequencer = ctx.sequencer
    assert isinstance(sequencer, LedgerSequencer), "only a shared room hears from a ledger"
    return sequencer


def held(ctx: Context, member: Member, line: str | LineTooLong) -> list[RoomAction] | None:
    """A line from ``member`` while its join or rename is with the ledger: kept until it
    comes back ([]), handled now (None), or refused."""
    sequencer = ledger(ctx)
    if sequencer.hold(member.conn, line):
        return []  # handled once its join comes back, in order
    # The ledger cannot take its join now, or it has sent enough lines ahead of it.
    match command_of(line):
        case c.Nothing():
            return []
        case c.Quit() | c.Help():
            return None  # these need nothing of the room: handled now
        case c.SetFormat():
            sequencer.hold_format(member.conn, line, _is_format)
            return []
    if sequencer.unjoined(member.conn):
        text = "the room is unavailable: your line was not sent (you will join when it is back)"
    elif sequencer.rename_pending(member.conn):
        text = "your line was not sent: the room has not taken your rename yet"
    else:
        text = "your line was not sent: the room has not taken your join yet"
    return error(member, p.ErrorCode.UNAVAILABLE, text)


def _is_format(line: str | LineTooLong) -> bool:
    return isinstance(command_of(line), c.SetFormat)


def refused(
    ctx: Context, conn: ConnId | None, event: p.BroadcastEvent, reason: Refusal
) -> list[RoomAction]:
    """The ledger refused an :class:`Append` that came from ``conn``'s line (a request's:
    its error carries the request's id)."""
    rid = refused_id(ctx, event)
    member = ctx.state.member(conn) if conn is not None else None
    if member is None:
        return []
    if rid is not None:
        return with_id(error(member, p.ErrorCode.UNAVAILABLE, UNSENT), member, rid)
    match event:
        case p.Rename():
            if reason == Refusal.TAKEN:
                refusal = error(member, p.ErrorCode.NAME_TAKEN, f"the name {event.new} is taken")
            else:
                refusal = error(member, p.ErrorCode.UNAVAILABLE, UNSENT)
            # Then the lines that waited for it, under the name it still has.
            for line in ledger(ctx).rename_refused(member.conn):
                refusal += ctx.rerun(member.conn, line, event.ts)
            return refusal
        case p.Join():
            return _join_refused(ctx, member, event, reason)
    return error(member, p.ErrorCode.UNAVAILABLE, UNSENT)


def _join_refused(ctx: Context, member: Member, event: p.Join, reason: Refusal) -> list[RoomAction]:
    state, sequencer = ctx.state, ledger(ctx)
    if reason == Refusal.ROOM_LIMIT:  # counted server-wide by the ledger (rules/rooms.py)
        sequencer.applied(event, member.conn)  # its lines no longer wait for this join
        text = f"the server has {ctx.rules.max_rooms} rooms, the most it holds; join one (/rooms)"
        refusal = error(member, p.ErrorCode.ROOM_LIMIT, text)
        if member.format is p.OutputFormat.TEXT:  # it left its room for this one: back home
            home = p.Join(seq=0, ts=event.ts, id=member.id, name=member.name, room=state.default)
            refusal.append(Append(home, member.conn))
        return refusal
    if reason == Refusal.DUPLICATE and not member.id.endswith(sequencer.tag):
        return _rejoin_as(ctx, member, f"{member.id}~{sequencer.tag}", event)
    if (
        reason == Refusal.TAKEN
        and ctx.rules.hide_addresses
        and event.name == member.name
        and not state.is_subscribed(member.conn)
    ):
        # A guest name drawn here that another node's guest holds: draw again.
        state.adopt_name(member, guest_name(ctx))
        return [Append(p.replace(event, name=member.name), member.conn)]
    if reason == Refusal.TAKEN and event.name != member.id:
        # Joining again under its name, which someone claimed meanwhile.
        return name_lost(member, event.name, event.ts)
    if reason in (Refusal.TAKEN, Refusal.DUPLICATE):  # an id or name held
        text = "your address is already in the room on another server"
        sequencer.forget(member.conn)
        state.remove_member(member.conn)
        notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=text)
        away = TurnedAway(member.conn, text, Cause.ELSEWHERE)
        return [*send(member, notice), away, Close(member.conn)]
    sequencer.join_failed(member.conn)
    return send(member, p.Notice(code=p.NoticeCode.INFO, text=UNJOINED))


def _rejoin_as(ctx: Context, member: Member, user_id: str, event: p.Join) -> list[RoomAction]:
    """Another node's user holds ``member``'s id: it joins as ``user_id`` instead."""
    old = member.id
    ctx.state.reidentify(member, user_id)
    join = p.Join(seq=0, ts=event.ts, id=member.id, name=member.name, room=event.room)
    actions: list[RoomAction] = [Append(join, member.conn)]
    if ctx.state.is_subscribed(member.conn):  # it was told its old id already
        text = f"another user of the room has the id {old}: yours is now {member.id}"
        notice = p.Notice(
            code=p.NoticeCode.INFO, text=text, fact=p.Fact.IDENTITY, id=member.id, name=member.name
        )
        actions += send(member, notice)
    return actions


def private_undelivered(ctx: Context, conn: ConnId, event: p.Private) -> list[RoomAction]:
    """A private message could not be carried to the recipient's node."""
    member = ctx.state.member(conn)
    if member is None:
        return []
    text = f"your private message to {event.recipient} may not have been delivered"
    return error(member, p.ErrorCode.UNAVAILABLE, text)


def remote_private(
    ctx: Context, recipient_id: str, event: p.Private, sender_id: str | None
) -> list[RoomAction]:
    """A private message from another node for ``recipient_id``, if it is here and does not
    ignore its sender (``sender_id``; None from nodes that predate it)."""
    member = ctx.state.local(recipient_id)
    if member is None or not ctx.state.is_subscribed(member.conn):
        return []
    if sender_id is not None and sender_id in member.ignoring:
        return []  # silently, as on one node: the sender is not told it is ignored
    return send(member, event)


def resync(ctx: Context, synced: Resynced, now: float) -> list[RoomAction]:
    """Take the ledger's view — ``(id, name, node, rooms)`` of everyone, each room's last
    seq and recent history, its epoch — after (re)connecting to it. If the epoch is not
    the one this node had, the ledger started over (Redis restarted empty, or from an older
    snapshot) and this node's members are told that seq counts again. A member of this node
    that the ledger lost (it restarted, or declared this node dead) joins again each room
    it is in; one the ledger has in a room this node never applied its join to is in it
    now; users it still lists for this node that are gone from here are appended as
    leaving (one leave that is not a part leaves every room)."""
    state = ctx.state
    actions: list[RoomAction] = []
    epoch = synced.epoch
    if state.epoch is not None and epoch != state.epoch:
        text = "the room's history was reset: its shared store started over"
        actions += to_everyone(ctx, p.Notice(code=p.NoticeCode.RESET, text=text, epoch=epoch))
    default = (state.default,)  # a user's rooms left out or None: the default room
    users = [(*u[:3], default if len(u) < 4 or u[3] is None else u[3]) for u in synced.users]
    rooms = [(state.default, synced.seq, synced.history, synced.kept_from)]
    rooms += [(r.room, r.seq, r.history, r.kept_from) for r in synced.rooms]
    state.reset(users, rooms, now, epoch)  # type: ignore[arg-type]
    for member in state.members():
        if member.quiet_until is not None:  # not announced yet: the ledger never knew it
            continue
        user = state.user(member.id)
        if user is None or user.node != ctx.node:
            for room in member.rooms or [state.default]:
                actions += rejoin(ctx, member, now, room)
            continue
        if user.name != member.name:
            state.adopt_name(member, user.name)
        extra = sorted(user.rooms - set(member.rooms))  # its join went through: it is in it
        moved = member.format is p.OutputFormat.TEXT and extra  # an nc user's move, done
        for room in list(member.rooms):
            if room in user.rooms:
                continue
            if moved:  # its part went through too: it is in one room, the ledger's
                state.unsubscribe(member, room)
                actions.append(Unsubscribe(member.conn, room))
            else:
                actions += rejoin(ctx, member, now, room)
        for room in extra[:1] if moved else extra:
            actions += admit(ctx, member, room)
    for user in state.users():
        if user.node == ctx.node and state.local(user.id) is None:
            room = min(user.rooms) if user.rooms else state.default
            leave = p.Leave(
                seq=0, ts=now, id=user.id, name=user.name, reason=p.LeaveReason.ERROR, room=room
            )
            actions.append(Append(leave, None))
    return actions


def ledger_notice(ctx: Context, text: str) -> list[RoomAction]:
    """Tell this node's members about the ledger going away or coming back (once each,
    whatever rooms they are in)."""
    return to_everyone(ctx, p.Notice(code=p.NoticeCode.INFO, text=text))
