"""Moderation in a room shared by several nodes (Redis). No I/O.

Bans, mutes (by name), the topic and the registered names are the room's, not the node's:
every change is
reported as a :class:`~chatroom.server.core.actions.Persist` action, which the link keeps in
the ledger and publishes; every node applies the others' changes (:func:`remote_change`)
and loads what the ledger keeps when it (re)connects (:func:`loaded`); a ban applied here
sends away this node's users it covers (but the operator who made it, if it is here).

An operator's ``/kick``, ``/ban NAME``, ``/mute`` and ``/unmute`` work on a user of any
node, as an IRC network's opers can KICK anyone in the channel: the room knows every user
and its node. When the user is another node's, the operator's node asks that node
(:func:`~chatroom.server.core.rules.moderation.moderate_elsewhere`), and that node runs
the very rule it runs for its own operators (:func:`moderate_for`): the kicked user is
told and leaves with reason ``kicked`` and ``by``; a ban is made for the address that node
knows, and kept and shared as every ban is; a mute holds the name and the address that
node knows, shared. The notices the rule
has for the operator go back to it (:class:`~chatroom.server.core.actions.AnswerElsewhere`),
so it reads what it would for a user of its own node. A user that left or was renamed
before the request arrived is ``unknown_user``; a node nobody heard, or that did not answer
in time, is ``unavailable`` (:func:`undelivered`).
"""

from __future__ import annotations

from typing import Any

from chatroom import protocol as p
from chatroom.server.core.accounts_state import Account
from chatroom.server.core.actions import AnswerElsewhere, ConnId, Outcome, RoomAction
from chatroom.server.core.moderation_state import Ban, Mute, network_of
from chatroom.server.core.node_requests import ModerationAnswer, ModerationRequest
from chatroom.server.core.rules import accounts as account_rules
from chatroom.server.core.rules import moderation as rules
from chatroom.server.core.rules.context import Context
from chatroom.server.core.rules.leaving import send_away
from chatroom.server.core.rules.output import broadcast, error, send, unknown_user
from chatroom.server.core.rules.rooms import kick_out
from chatroom.server.core.state import Member


def moderate_for(ctx: Context, request: ModerationRequest, now: float) -> list[RoomAction]:
    """An operator on another node asks for ``request`` on a user of this node: the rule
    this node's own operators get, and the answer for the operator."""
    asker = rules.RemoteOperator(request.by, request.by_node)
    state = ctx.state
    target = state.local(request.target_id)
    if (
        target is None
        or state.user(target.id) is None  # its join is not in the room (yet)
        or p.name_skeleton(target.name) != p.name_skeleton(request.target)
    ):  # it left, or was renamed, since the operator named it
        error_event = p.Error(code=p.ErrorCode.UNKNOWN_USER, message=unknown_user(request.target))
        outcome: Outcome = [], [error_event]
    else:
        reason = p.strip_controls(request.reason or "").strip() or None
        match request.command:
            case "kick" if request.room is not None:  # out of that room alone
                outcome = _kick_out(ctx, asker, target, request.room, reason, now)
            case "kick":
                outcome = rules.kick_member(ctx, asker, target, reason, now)
            case "mute":
                outcome = rules.mute_member(ctx, asker, target, request.seconds, now)
            case "unmute":
                outcome = rules.unmute_member(ctx, asker, target)
            case "ban":
                outcome = rules.ban_member(ctx, asker, target, request.seconds, reason, now)
    actions, told = outcome
    answer = ModerationAnswer(request=request.request, to_id=request.by_id, events=tuple(told))
    return [*actions, AnswerElsewhere(request.by_node, answer)]


def _kick_out(
    ctx: Context,
    asker: rules.RemoteOperator,
    target: Member,
    room: str,
    reason: str | None,
    now: float,
) -> Outcome:
    """An operator of another node kicks ``target`` out of ``room`` (rules/rooms.py)."""
    if room not in target.rooms:
        text = f"{target.name} is not in {p.shown_room(room)}"
        return [], [p.Error(code=p.ErrorCode.NOT_IN_ROOM, message=text)]
    done = rules.moderated(asker, target, f"{asker.name} kicked {target.name} out of #{room}")
    return [done, *kick_out(ctx, target, room, asker.name, reason, now)], []


def answered(ctx: Context, answer: ModerationAnswer) -> list[RoomAction]:
    """The answer to a command of this node's operator, from the target's node."""
    member = ctx.state.local(answer.to_id)
    if member is None:  # the operator left meanwhile
        return []
    return [action for event in answer.events for action in send(member, event)]


def undelivered(
    ctx: Context, operator: ConnId, request: ModerationRequest, *, maybe_done: bool
) -> list[RoomAction]:
    """The node of a command's target could not be reached (nobody was listening there), or
    did not answer in time: then it may have done it all the same."""
    member = ctx.state.member(operator)
    if member is None:
        return []
    what = f"/{request.command} {request.target}"
    if maybe_done:
        text = f"no answer from {request.target}'s server: {what} may not have been done"
    else:
        text = f"{request.target}'s server cannot be reached: {what} was not done"
    return error(member, p.ErrorCode.UNAVAILABLE, text)


def remote_change(
    ctx: Context, kind: str, key: str, data: dict[str, Any] | None, now: float
) -> list[RoomAction]:
    """Another node's change to a ban, a mute, the topic or a registered name (``data``
    None: lifted)."""
    moderation = ctx.moderation
    try:
        match kind:
            case "bot":  # a user of another node marked as a program (rules/programs.py)
                ctx.state.mark_bot(key, data is not None)
            case "account" if data is None:
                gone = ctx.accounts.drop(key)
                return account_rules.dropped(ctx, gone, None) if gone is not None else []
            case "account":
                ctx.accounts.keep(Account.from_record(data))
            case "ban" if data is None:
                moderation.lift_ban(key)
            case "ban":
                made = Ban.from_record(data)
                moderation.add_ban(made)
                return _send_away(ctx, made, now)
            case "mute" if data is None:
                lifted = moderation.kept_mutes.get(key)
                moderation.keep_mute(key, None)
                for member in ctx.state.members():  # its connection's mute too, if here
                    if p.name_key(member.name) == key or (
                        lifted is not None and member.address == lifted.address
                    ):
                        moderation.unmute(member.id, member.name, member.address)
            case "mute":
                moderation.keep_mute(key, Mute.from_record(key, data))
            case "topic":
                return _topic_changed(ctx, data, key)
    except (AttributeError, KeyError, TypeError, ValueError):
        pass  # a record this node cannot read: another version's, or damaged
    return []


def loaded(
    ctx: Context, records: dict[str, dict[str, dict[str, Any]]], now: float
) -> list[RoomAction]:
    """The bans, mutes, topic and registered names the ledger keeps (``kind -> key ->
    record``), read when this node (re)connects: they replace this node's (mutes by user id
    stay)."""
    moderation = ctx.moderation
    ctx.accounts.take_shared(records.get("account", {}))
    for user_id in records.get("bot", {}):
        ctx.state.mark_bot(user_id)
    bans: dict[str, Ban] = {}
    for key, record in records.get("ban", {}).items():
        try:
            bans[key] = Ban.from_record(record)
        except (KeyError, TypeError, ValueError):
            continue
    mutes: dict[str, Mute] = {}
    for key, record in records.get("mute", {}).items():
        try:
            mutes[key] = Mute.from_record(key, record)
        except (AttributeError, TypeError, ValueError):
            continue
    new_bans = [made for key, made in bans.items() if key not in moderation.bans]
    moderation.take_shared(bans, mutes)
    actions: list[RoomAction] = []
    for made in new_bans:
        actions += _send_away(ctx, made, now)
    topics = dict(records.get("topic", {}))
    for room in [ctx.state.default, *ctx.moderation.topics]:  # a topic gone meanwhile too
        key = "topic" if room == ctx.state.default else f"#{room}"
        topics.setdefault(key, None)  # type: ignore[arg-type]
    for key, data in topics.items():
        actions += _topic_changed(ctx, data, key)
    return actions


def _topic_changed(ctx: Context, data: dict[str, Any] | None, key: str) -> list[RoomAction]:
    """The topic record ``key`` changed: ``"topic"`` is the default room's, ``"#ROOM"``
    another room's (rules/moderation.py)."""
    room = ctx.state.default if key == "topic" else p.room_key(key)
    if room is None or (key != "topic" and not key.startswith("#")):
        return []
    text = data.get("text") if data else None
    by = data.get("by") if data else None
    topic = p.Topic(text=text, by=by if isinstance(by, str) else None, room=room) if text else None
    if not isinstance(text, str | None) or topic == ctx.moderation.topic_of(room):
        return []
    ctx.moderation.set_topic(topic, room)
    return broadcast(ctx, topic or p.Topic(text="", room=room))


def _send_away(ctx: Context, made: Ban, now: float) -> list[RoomAction]:
    """This node's members that ``made`` (a ban from another node) covers leave."""
    told = f"you were banned by {made.by}" + (f": {made.reason}" if made.reason else "")
    actions: list[RoomAction] = []
    for other in ctx.state.members():
        # The operator who made it stays, as on the node that made it (a /ban NAME of
        # another node's user, from the same address as the operator's).
        made_it = other.operator and other.name == made.by
        if not made_it and made.matches(network_of(other.address)):
            actions += send_away(ctx, other, told, now, made.reason, made.by)
    return actions
