"""Moderation: what operators may do to the room. No I/O.

Who is an operator is :mod:`.operators`' (``/oper``). An operator may kick, mute
and ban users, set the topic and lift bans; each rule returns what it did and what the
operator is told (an :data:`~chatroom.server.core.actions.Outcome`), so the same rule
serves an operator on another node of a shared room (:mod:`.shared`). A command on a user
of another node is sent there (:class:`~chatroom.server.core.actions.ModerateElsewhere`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import Moderated, ModerateElsewhere, Outcome, RoomAction
from chatroom.server.core.moderation_state import (
    Ban,
    Mute,
    Network,
    in_room,
    network_of,
    parse_target,
    span,
)
from chatroom.server.core.node_requests import ModerationRequest
from chatroom.server.core.rules import rooms
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.leaving import send_away
from chatroom.server.core.rules.output import (
    broadcast,
    error,
    info,
    persist,
    send,
    unknown_user,
)
from chatroom.server.core.state import Member


@dataclass(frozen=True, slots=True)
class RemoteOperator:
    """An operator on another node of a shared room, for whom this node carries out a
    command on one of its own members (:mod:`.shared`); it is answered there."""

    name: str
    node: str


# Whom a moderation rule acts for: a member of this node, or an operator on another node.
Asker = Member | RemoteOperator


# --- what everyone may ask ------------------------------------------------------------------


def motd(ctx: Context, member: Member, command: c.Motd, now: float) -> list[RoomAction]:
    text = ctx.moderation.motd
    if text is None:
        return info(member, "no motd")
    return send(member, p.Notice(code=p.NoticeCode.MOTD, text=text))


def topic(ctx: Context, member: Member, command: c.Topic, now: float) -> list[RoomAction]:
    """``/topic`` shows it; ``/topic TEXT`` (operators) sets it for everyone."""
    room = member.here
    if command.text is None:
        return send(member, ctx.moderation.topic_of(room) or p.Topic(text="", room=room))
    if not member.operator:
        return not_operator(member, command)
    new = p.Topic(text=command.text, by=member.name, room=room)
    ctx.moderation.set_topic(new, room)
    key = "topic" if room == ctx.state.default else f"#{room}"  # rooms cannot hold a "#"
    return [
        Moderated(member.conn, f"topic set by {member.name}"),
        *persist(ctx, "topic", key, {"text": command.text, "by": member.name}),
        *broadcast(ctx, new, room=room),
    ]


def not_operator(member: Member, command: c.Command) -> list[RoomAction]:
    word = type(command).__name__.lower()
    return error(member, p.ErrorCode.NOT_OPERATOR, f"/{word} is for operators (see /oper)")


# --- operators' commands on a user ------------------------------------------------------------


def kick(ctx: Context, member: Member, command: c.Kick, now: float) -> list[RoomAction]:
    room = member.here
    elsewhere = room if room != ctx.state.default else None
    target = _target(ctx, member, command, command.target, elsewhere)
    if not isinstance(target, Member):
        return target
    if room != ctx.state.default:  # out of this room alone (rules/rooms.py)
        if room not in target.rooms:
            text = f"{target.name} is not in {p.shown_room(room)}"
            return error(member, p.ErrorCode.NOT_IN_ROOM, text)
        report = moderated(member, target, f"{member.name} kicked {target.name} out of #{room}")
        return [report, *rooms.kick_out(ctx, target, room, member.name, command.reason, now)]
    return answered(member, kick_member(ctx, member, target, command.reason, now))


def mute(ctx: Context, member: Member, command: c.Mute, now: float) -> list[RoomAction]:
    target = _target(ctx, member, command, command.target)
    if not isinstance(target, Member):
        return target
    return answered(member, mute_member(ctx, member, target, command.seconds, now))


def unmute(ctx: Context, member: Member, command: c.Unmute, now: float) -> list[RoomAction]:
    target = _target(ctx, member, command, command.target)
    if not isinstance(target, Member):
        return target
    return answered(member, unmute_member(ctx, member, target))


def _target(
    ctx: Context, member: Member, command: c.Command, name: str, room: str | None = None
) -> Member | list:
    """This node's member called ``name``, or what to do instead: refuse a non-operator,
    ask the node of another node's user (a kick out of ``room`` alone: one it is in), tell
    the operator nobody has that name."""
    if not member.operator:
        return not_operator(member, command)
    state = ctx.state
    user = state.user(state.holder_of(name) or "")
    if user is not None and user.node != ctx.node:  # only in a shared room
        if room is not None and room not in user.rooms:
            text = f"{user.name} is not in {p.shown_room(room)}"
            return error(member, p.ErrorCode.NOT_IN_ROOM, text)
        where = (user.id, user.name, user.node)
        return moderate_elsewhere(ctx, member, command, *where, room=room)
    target = state.local(user.id) if user is not None else None
    if target is None:
        return error(member, p.ErrorCode.UNKNOWN_USER, unknown_user(name))
    return target


def moderate_elsewhere(
    ctx: Context,
    member: Member,
    command: c.Command,
    user_id: str,
    name: str,
    node: str,
    room: str | None = None,
) -> list[RoomAction]:
    """Have ``node``, which holds the user ``command`` names, carry it out (a kick: out of
    ``room`` alone, if given)."""
    reason = seconds = None
    match command:
        case c.Kick(_, reason):
            kind = "kick"
        case c.Mute(_, seconds):
            kind = "mute"
        case c.Unmute():
            kind = "unmute"
        case c.Ban(_, seconds, reason):
            kind = "ban"
        case _:
            raise AssertionError(f"not a command on a user: {command!r}")
    request = ModerationRequest(
        request=ctx.moderation.new_request(),
        command=kind,
        target_id=user_id,
        target=name,
        by=member.name,
        by_id=member.id,
        by_node=ctx.node,
        seconds=seconds,
        reason=reason,
        room=room if kind == "kick" else None,
    )
    logged = f"{member.name} asks node {node} to {kind} {name}"
    return [Moderated(member.conn, logged), ModerateElsewhere(node, request, member.conn)]


def answered(member: Member, outcome: Outcome) -> list[RoomAction]:
    """A rule's outcome for an operator of this node: what it told it is sent to it."""
    actions, told = outcome
    return actions + [action for event in told for action in send(member, event)]


def moderated(asker: Asker, target: Member | None, text: str) -> Moderated:
    """The log's report of a moderation decision (about ``target``, if a user): named after
    the operator's connection, or after the target's if the operator is on another node
    (which logs its own side)."""
    if isinstance(asker, RemoteOperator):
        assert target is not None, "an operator on another node names a user of ours"
        return Moderated(target.conn, f"{text} (an operator on node {asker.node})")
    return Moderated(asker.conn, text)


def kick_member(
    ctx: Context, asker: Asker, target: Member, reason: str | None, now: float
) -> Outcome:
    told = f"you were kicked by {asker.name}" + (f": {reason}" if reason else "")
    actions = [
        moderated(asker, target, f"{asker.name} kicked {target.name}"),
        *send_away(ctx, target, told, now, reason, asker.name),
    ]
    return actions, []  # the operator sees the leave, as everyone does


def mute_member(
    ctx: Context, asker: Asker, target: Member, seconds: float | None, now: float
) -> Outcome:
    """Mute ``target``: its connection, its name and its address, so that neither a
    reconnect, a rename nor a restart ends it; not the address if many share it (an exempt
    network) or if it is the operator's own (a NAT: the operator would mute itself)."""
    until = math.inf if seconds is None else now + seconds
    shared = ctx.admission.is_exempt(target.address) or (
        isinstance(asker, Member) and asker is not target and asker.address == target.address
    )
    address = None if shared else target.address
    # Given in a room other than the default one, it holds in that room alone.
    room = asker.here if isinstance(asker, Member) and asker.here != ctx.state.default else None
    key = in_room(p.name_key(target.name), room)
    made = Mute(target.name, address, until, room)
    ctx.moderation.mute(target.id, key, made)
    lasting = f" for {span(seconds)}" if seconds is not None else ""
    lasting += f" in {p.shown_room(room)}" if room is not None else ""
    told = p.Notice(code=p.NoticeCode.INFO, text=f"you were muted by {asker.name}{lasting}")
    done = p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is muted{lasting}")
    actions = [
        moderated(asker, target, f"{asker.name} muted {target.name}{lasting}"),
        *persist(ctx, "mute", key, made.record()),
        *send(target, told),
    ]
    return actions, [] if target is asker else [done]


def unmute_member(ctx: Context, asker: Asker, target: Member) -> Outcome:
    """Lift every mute that holds ``target``: its connection's, its name's, its address's."""
    muted, lifted = ctx.moderation.unmute(target.id, target.name, target.address)
    if not muted:
        return [], [p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is not muted")]
    told = p.Notice(code=p.NoticeCode.INFO, text=f"you were unmuted by {asker.name}")
    done = p.Notice(code=p.NoticeCode.INFO, text=f"{target.name} is no longer muted")
    actions = [moderated(asker, target, f"{asker.name} unmuted {target.name}")]
    for key in lifted:
        actions += persist(ctx, "mute", key, None)
    actions += send(target, told)
    return actions, [] if target is asker else [done]


# --- bans ---------------------------------------------------------------------------------------


def ban(ctx: Context, member: Member, command: c.Ban, now: float) -> list[RoomAction]:
    """Ban an address, a network, or the address a user is connected from now; send away
    everyone it covers (but the operator who made it)."""
    if not member.operator:
        return not_operator(member, command)
    query, seconds, reason = command.target, command.seconds, command.reason
    network = parse_target(query)
    if network is not None:
        return answered(member, ban_network(ctx, member, network, None, seconds, reason, now))
    if ctx.state.holder_of(query) is None and ("/" in query or ":" in query):  # a typo, surely
        shown = p.strip_controls(query)[:50]
        text = f"not a user here, an address or a CIDR network: {shown}"
        return error(member, p.ErrorCode.BAD_USAGE, text)
    user = _target(ctx, member, command, query)
    if not isinstance(user, Member):
        return user
    return answered(member, ban_member(ctx, member, user, seconds, reason, now))


def ban_member(
    ctx: Context, asker: Asker, user: Member, seconds: float | None, reason: str | None, now: float
) -> Outcome:
    """Ban the address ``user`` is connected from (the rule of ``/ban NAME``)."""
    return ban_network(ctx, asker, network_of(user.address), user, seconds, reason, now)


def ban_network(
    ctx: Context,
    asker: Asker,
    target: Network | str,
    user: Member | None,
    seconds: float | None,
    reason: str | None,
    now: float,
) -> Outcome:
    """Ban ``target``; ``user`` is whom it was made against (``/ban NAME``), if anyone: its
    name is kept with the ban."""
    name = user.name if user is not None else None
    refused = _locks_out(ctx, asker, target)
    if refused is not None:
        return [], [p.Error(code=p.ErrorCode.BAD_USAGE, message=f"/ban {target} {refused}")]
    moderation = ctx.moderation
    bans_max = ctx.rules.max_bans
    moderation.forget_expired(now)
    if str(target) not in moderation.bans and len(moderation.bans) >= bans_max:
        text = f"too many bans (at most {bans_max}): /unban one first"
        return [], [p.Error(code=p.ErrorCode.BAD_USAGE, message=text)]
    until = math.inf if seconds is None else now + seconds
    made = Ban(target, until, name, reason, asker.name)
    moderation.add_ban(made)
    lasting = f" for {span(seconds)}" if seconds is not None else ""
    told = f"you were banned by {asker.name}{lasting}" + (f": {reason}" if reason else "")
    actions: list[RoomAction] = [
        moderated(asker, user, f"{asker.name} banned {made.describe(now)}"),
        *persist(ctx, "ban", str(target), made.record()),
    ]
    sent_away = 0
    for other in ctx.state.members():
        if other is not asker and made.matches(network_of(other.address)):
            sent_away += 1
            actions += send_away(ctx, other, told, now, reason, asker.name)
    users = "1 user" if sent_away == 1 else f"{sent_away} users"
    whose = f" ({name})" if name else ""
    done = f"banned {made.target}{whose}{lasting}; {users} sent away"
    return actions, [p.Notice(code=p.NoticeCode.INFO, text=done)]


def _locks_out(ctx: Context, asker: Asker, target: Network | str) -> str | None:
    """Why a ban of ``target`` is refused, if it is: it would send away everyone of an
    address family, the operator itself on its next connection, or an exempt network
    whole (where many share an address: loopback, a proxy). Refused, not confirmed: a
    mistake here locks out the operators too, and lasts across a restart."""
    if isinstance(target, str):
        return None
    if target.prefixlen == 0:
        return f"would ban every IPv{target.version} address; refused"
    if isinstance(asker, Member):
        own = network_of(asker.address)
        if not isinstance(own, str) and own.version == target.version and own.overlaps(target):  # type: ignore[arg-type]
            return "would ban your own address; refused"
    exempt = ctx.admission.covers_exempt(target)
    if exempt is not None:
        return f"would ban the exempt network {exempt} (--exempt-ip); refused"
    return None


def unban(ctx: Context, member: Member, command: c.Unban, now: float) -> list[RoomAction]:
    if not member.operator:
        return not_operator(member, command)
    bans = ctx.moderation.bans
    query = command.target
    network = parse_target(query)
    if network is not None:
        lifted = [str(network)] if str(network) in bans else []
    else:
        key = p.name_key(query)
        lifted = [k for k, made in bans.items() if made.name and p.name_key(made.name) == key]
    if not lifted:
        return info(member, f"no ban matches {p.strip_controls(query)[:50]}")
    forgotten: list[RoomAction] = []
    for key in lifted:
        ctx.moderation.lift_ban(key)
        forgotten += persist(ctx, "ban", key, None)
    text = f"unbanned {', '.join(lifted)}"
    return [Moderated(member.conn, f"{member.name} {text}"), *forgotten, *info(member, text)]


def list_bans(ctx: Context, member: Member, command: c.Bans, now: float) -> list[RoomAction]:
    if not member.operator:
        return not_operator(member, command)
    ctx.moderation.forget_expired(now)
    bans = ctx.moderation.bans
    lines = [f"bans ({len(bans)}):"] + [f"  {made.describe(now)}" for made in bans.values()]
    return info(member, "\n".join(lines) if bans else "no bans")


# The commands this module's rules answer (the room's dispatcher merges every module's).
COMMANDS = {
    c.Topic: topic,
    c.Motd: motd,
    c.Kick: kick,
    c.Mute: mute,
    c.Unmute: unmute,
    c.Ban: ban,
    c.Unban: unban,
    c.Bans: list_bans,
}
