"""Moderation in a room shared by several nodes (Redis). No I/O.

Bans, mutes (by name) and the topic are the room's, not the node's: every change is
reported as a :class:`~chatroom.server.core.actions.Persist` action, which the link keeps in
the ledger and publishes; every node applies the others' changes
(:meth:`ClusterModerationRules.remote_moderation`) and loads what the ledger keeps when it
(re)connects (:meth:`ClusterModerationRules.moderation_loaded`); a ban applied here sends
away this node's users it covers (but the operator who made it, if it is here).

An operator's ``/kick``, ``/ban NAME``, ``/mute`` and ``/unmute`` work on a user of any node,
as an IRC network's opers can KICK anyone in the channel: the room knows every user and
its node. When the user is another node's, the operator's node asks that node
(:class:`~chatroom.server.core.actions.ModerateElsewhere`, carrying a
:class:`~chatroom.server.core.node_requests.ModerationRequest`), and that node runs the very rule
it runs for its own operators (:meth:`ClusterModerationRules.moderate_for`): the kicked
user is told and leaves with reason ``kicked`` and ``by``; a ban is made for the address
that node knows, and kept and shared as every ban is; a mute is by name, shared. The
notices the rule has for the operator go back to it
(:class:`~chatroom.server.core.actions.AnswerElsewhere`), so it reads what it would for a user of
its own node. A user that left or was renamed before the request arrived is
``unknown_user``; a node nobody heard, or that did not answer in time, is ``unavailable``
(:meth:`ClusterModerationRules.moderation_undelivered`).

:class:`ClusterModerationRules` is the part of
:class:`~chatroom.server.core.cluster_room.ClusterRoom` that decides this, kept apart as
:class:`~chatroom.server.core.moderation.ModerationRules` is from the single-server room.
"""

from __future__ import annotations

import math
from typing import Any

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.core.actions import (
    AnswerElsewhere,
    Close,
    ConnId,
    Moderated,
    ModerateElsewhere,
    Outcome,
    Persist,
    RoomAction,
)
from chatroom.server.core.moderation import (
    Ban,
    ModerationRules,
    RemoteOperator,
    network_of,
    parse_target,
    unknown_user,
)
from chatroom.server.core.node_requests import ModerationAnswer, ModerationRequest
from chatroom.server.core.state import Member


class ClusterModerationRules(ModerationRules):
    """The moderation rules of one node of a shared room (mixed into ``ClusterRoom``)."""

    node: str
    requests_made: int  # this node's ModerationRequests so far: the next one's number

    # --- an operator's command on another node's user ----------------------------------

    def _moderate_elsewhere(self, member: Member, command: c.Command) -> list[RoomAction] | None:
        match command:
            case c.Kick(name, reason):
                kind, seconds = "kick", None
            case c.Mute(name, seconds):
                kind, reason = "mute", None
            case c.Unmute(name):
                kind, seconds, reason = "unmute", None, None
            case c.Ban(name, seconds, reason) if parse_target(name) is None:
                kind = "ban"
            case _:
                return None
        user = self.state.user(self.state.holder_of(name) or "")
        if user is None or user.node == self.node:
            return None  # ours, or nobody's: the rule as on one server
        self.requests_made += 1
        request = ModerationRequest(
            request=self.requests_made,
            command=kind,
            target_id=user.id,
            target=user.name,
            by=member.name,
            by_id=member.id,
            by_node=self.node,
            seconds=seconds,
            reason=reason,
        )
        logged = f"{member.name} asks node {user.node} to {kind} {user.name}"
        return [Moderated(member.conn, logged), ModerateElsewhere(user.node, request, member.conn)]

    def moderate_for(self, request: ModerationRequest, now: float) -> list[RoomAction]:
        """An operator on another node asks for ``request`` on a user of this node: the
        rule this node's own operators get, and the answer for the operator."""
        asker = RemoteOperator(request.by, request.by_node)
        target = self.state.local(request.target_id)
        if (
            target is None
            or self.state.user(target.id) is None  # its join is not in the room (yet)
            or p.name_skeleton(target.name) != p.name_skeleton(request.target)
        ):  # it left, or was renamed, since the operator named it
            error = p.Error(code=p.ErrorCode.UNKNOWN_USER, message=unknown_user(request.target))
            outcome: Outcome = [], [error]
        else:
            reason = p.strip_controls(request.reason or "").strip() or None
            match request.command:
                case "kick":
                    outcome = self._kick_member(asker, target, reason, now)
                case "mute":
                    outcome = self._mute_member(asker, target, request.seconds, now)
                case "unmute":
                    outcome = self._unmute_member(asker, target)
                case "ban":
                    outcome = self._ban_member(asker, target, request.seconds, reason, now)
        actions, told = outcome
        answer = ModerationAnswer(request=request.request, to_id=request.by_id, events=tuple(told))
        return [*actions, AnswerElsewhere(request.by_node, answer)]

    def moderation_answered(self, answer: ModerationAnswer) -> list[RoomAction]:
        """The answer to a command of this node's operator, from the target's node."""
        member = self.state.local(answer.to_id)
        if member is None:  # the operator left meanwhile
            return []
        return [action for event in answer.events for action in self._send(member, event)]

    def moderation_undelivered(
        self, operator: ConnId, request: ModerationRequest, *, maybe_done: bool
    ) -> list[RoomAction]:
        """The node of a command's target could not be reached (nobody was listening
        there), or did not answer in time: then it may have done it all the same."""
        member = self.state.member(operator)
        if member is None:
            return []
        what = f"/{request.command} {request.target}"
        if maybe_done:
            text = f"no answer from {request.target}'s server: {what} may not have been done"
        else:
            text = f"{request.target}'s server cannot be reached: {what} was not done"
        return self._error(member, p.ErrorCode.UNAVAILABLE, text)

    # --- bans, mutes and the topic every node shares --------------------------------------

    def remote_moderation(
        self, kind: str, key: str, data: dict[str, Any] | None, now: float
    ) -> list[RoomAction]:
        """Another node's change to a ban, a mute or the topic (``data`` None: lifted)."""
        mod = self.moderation
        try:
            match kind:
                case "ban" if data is None:
                    mod.bans.pop(key, None)
                case "ban":
                    ban = Ban.from_record(data)
                    mod.bans[key] = ban
                    return self._send_away(ban, now)
                case "mute" if data is None:
                    mod.muted_names.pop(key, None)
                    for member in self.state.members():
                        if p.name_key(member.name) == key:
                            mod.mutes.pop(member.id, None)
                case "mute":
                    until = data.get("until")
                    mod.muted_names[key] = math.inf if until is None else float(until)
                case "topic":
                    return self._topic_changed(data)
        except (KeyError, TypeError, ValueError):
            pass  # a record this node cannot read: another version's, or damaged
        return []

    def moderation_loaded(
        self, records: dict[str, dict[str, dict[str, Any]]], now: float
    ) -> list[RoomAction]:
        """The bans, mutes and topic the ledger keeps (``kind -> key -> record``), read when
        this node (re)connects: they replace this node's (mutes by user id stay)."""
        mod = self.moderation
        bans: dict[str, Ban] = {}
        for key, record in records.get("ban", {}).items():
            try:
                bans[key] = Ban.from_record(record)
            except (KeyError, TypeError, ValueError):
                continue
        mutes: dict[str, float] = {}
        for key, record in records.get("mute", {}).items():
            until = record.get("until")
            if until is None or isinstance(until, int | float):
                mutes[key] = math.inf if until is None else float(until)
        new_bans = [ban for key, ban in bans.items() if key not in mod.bans]
        mod.bans = bans
        mod.muted_names = mutes
        actions: list[RoomAction] = []
        for ban in new_bans:
            actions += self._send_away(ban, now)
        return actions + self._topic_changed(records.get("topic", {}).get("topic"))

    def _topic_changed(self, data: dict[str, Any] | None) -> list[RoomAction]:
        text = data.get("text") if data else None
        by = data.get("by") if data else None
        topic = p.Topic(text=text, by=by if isinstance(by, str) else None) if text else None
        if not isinstance(text, str | None) or topic == self.moderation.topic:
            return []
        self.moderation.topic = topic
        return self._broadcast(topic or p.Topic(text=""))

    def _send_away(self, ban: Ban, now: float) -> list[RoomAction]:
        """This node's members that ``ban`` (made on another node) covers leave."""
        told = f"you were banned by {ban.by}" + (f": {ban.reason}" if ban.reason else "")
        actions: list[RoomAction] = []
        for other in self.state.members():
            # The operator who made it stays, as on the node that made it (a /ban NAME of
            # another node's user, from the same address as the operator's).
            made_it = other.operator and other.name == ban.by
            if not made_it and ban.matches(network_of(other.address)):
                actions += [
                    *self._send(other, p.Notice(code=p.NoticeCode.INFO, text=told)),
                    *self.disconnect(other.conn, p.LeaveReason.KICKED, now, ban.reason, by=ban.by),
                    Close(other.conn),
                ]
        return actions

    def _persist(self, kind: str, key: str, data: Any) -> list[RoomAction]:
        # Not a state file: the ledger keeps it, and every node enforces it (ClusterLink).
        return [Persist(kind, key, data)]
