"""Appending a broadcast event, and applying it once it is sequenced. No I/O.

Appending asks the room's sequencer (:mod:`chatroom.server.core.sequencer`): one server
applies the event at once; a shared room's ledger sequences it and every node applies it
when the ledger hands it back. Applying updates who is here and under which name, then
broadcasts the event to this node's members.
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId, Renamed, RoomAction, Subscribe, Unsubscribe
from chatroom.server.core.rules import rejoin
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.output import broadcast, broadcast_in, greeting, room_greeting, send
from chatroom.server.core.state import Member

REAPED = (
    "this server did not answer the room for a while and was taken for"
    " gone: you left the room for everyone else and are joining again"
)


def next_seq(ctx: Context, room: str | None = None) -> int:
    """The seq for an event about to be appended in ``room`` (None: the default room; 0 in
    a shared room: the ledger decides)."""
    channel = ctx.state.rooms.get(room) if room is not None else ctx.state.rooms.main
    return ctx.sequencer.next_seq(channel.seq if channel is not None else 0)


def append(ctx: Context, event: p.BroadcastEvent, member: Member | None) -> list[RoomAction]:
    """Put ``event`` (from ``member``'s line, if any) in the room's order."""
    carried = ctx.sequencer.sequence(event, member.conn if member is not None else None)
    return apply(ctx, event, ctx.node) if carried is None else carried


def apply(ctx: Context, event: p.BroadcastEvent, node: str) -> list[RoomAction]:
    """A sequenced event, appended by ``node``: update who is here, then broadcast it to
    this node's members. The lines its member's join or rename held back are released
    only after the broadcast was made for the formats as they were (one of them may be
    /format, and the join must still reach its sender)."""
    state = ctx.state
    actions: list[RoomAction] = []
    skip: set[ConnId] | None = None
    if type(event) is p.Message or type(event) is p.Action:  # almost every event: first
        channel = state.said(event)
        if channel is None:
            return []
        return broadcast_in(channel, event, state.ignores.ignorers_of(event.id))
    own: Member | None = None
    match event:
        case p.Join():
            first = state.user(event.id) is None  # its first room: it is welcomed
            own = state.joined(event, node)
            room = event.room or state.default
            if own is not None and not state.is_subscribed(own.conn, room):
                actions += admit(ctx, own, room, welcome=first)
        case p.Rename():
            own = state.renamed(event, node)
            if own is not None:
                actions.append(Renamed(own.conn, event.old, event.new))
        case p.Leave():
            state.left(event)
    actions += broadcast(ctx, event, skip)
    if own is not None:
        for line in ctx.sequencer.applied(event, own.conn):
            actions += ctx.rerun(own.conn, line, event.ts)
    if isinstance(event, p.Leave):
        actions += _left_room(ctx, event)
        reaped = state.local(event.id)
        room = event.room or state.default
        if reaped is not None and state.is_subscribed(reaped.conn, room):
            # A shared room's ledger took this node for dead while it was only slow (paused,
            # a loaded host) and reaped a member that is still here: it joins again (told
            # once, at its first room's leave).
            if reaped.rooms[0] == room:
                actions += send(reaped, p.Notice(code=p.NoticeCode.INFO, text=REAPED))
            actions += rejoin.rejoin(ctx, reaped, event.ts, room)
    return actions


def _left_room(ctx: Context, event: p.Leave) -> list[RoomAction]:
    """This node's member parted the room, or was kicked out of it, and saw its own leave:
    it receives the room no more."""
    if event.reason is not p.LeaveReason.PART and event.reason is not p.LeaveReason.KICKED:
        return []
    member = ctx.state.local(event.id)
    room = event.room or ctx.state.default
    if member is None or room not in member.rooms:
        return []
    ctx.state.unsubscribe(member, room)
    return [Unsubscribe(member.conn, room)]


def admit(
    ctx: Context, member: Member, room: str | None = None, *, welcome: bool = True
) -> list[RoomAction]:
    """A member's join in ``room`` (None: the default room) is sequenced: greet it (with
    the welcome when it is its first room) and subscribe it to the room's broadcasts."""
    room = room or ctx.state.default
    ctx.state.subscribe(member, room)
    home = welcome and room == ctx.state.default
    greeted = greeting(ctx, member) if home else room_greeting(ctx, member, room)
    return [*greeted, Subscribe(member.conn, member.format, room)]


def announce(ctx: Context, member: Member, now: float) -> list[RoomAction]:
    """A member admitted quietly joins the room for everyone to see."""
    member.quiet(None)
    room = ctx.state.default
    join = p.Join(seq=next_seq(ctx, room), ts=now, id=member.id, name=member.name, room=room)
    return append(ctx, join, member)


def rooms_of(ctx: Context, member: Member) -> list[str]:
    """``member``'s rooms as the room has applied them, by name (in a shared room, one whose
    join is still with the ledger has none: then the default room, as before rooms)."""
    user = ctx.state.user(member.id)
    return sorted(user.rooms) if user is not None and user.rooms else [ctx.state.default]


def renamed_everywhere(ctx: Context, member: Member, new: str, now: float) -> list[RoomAction]:
    """``member`` is called ``new`` from now on: a rename in each of its rooms, each with
    that room's seq (a member not yet in any room: in the default room)."""
    actions: list[RoomAction] = []
    for room in rooms_of(ctx, member):
        event = p.Rename(
            seq=next_seq(ctx, room), ts=now, id=member.id, old=member.name, new=new, room=room
        )
        actions += append(ctx, event, member)
    return actions
