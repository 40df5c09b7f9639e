"""Moderation in a room shared by several nodes (Redis). No I/O.

Bans, mutes (by name) and the topic are the room's, not the node's: every change is
reported as a :class:`~chatroom.server.actions.Persist` action, which the link keeps in
the ledger and publishes; every node applies the others' changes
(:meth:`ClusterModerationRules.remote_moderation`) and loads what the ledger keeps when it
(re)connects (:meth:`ClusterModerationRules.moderation_loaded`); a ban applied here sends
away this node's users it covers.

:class:`ClusterModerationRules` is the part of
:class:`~chatroom.server.cluster_room.ClusterRoom` that decides this, kept apart as
:class:`~chatroom.server.moderation.ModerationRules` is from the single-server room.
"""

from __future__ import annotations

import math
from typing import Any

from chatroom import protocol as p
from chatroom.server.actions import Close, Persist, RoomAction
from chatroom.server.moderation import Ban, ModerationRules, network_of


class ClusterModerationRules(ModerationRules):
    """The moderation rules of one node of a shared room (mixed into ``ClusterRoom``)."""

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
            if ban.matches(network_of(other.address)):
                actions += [
                    *self._send(other, p.Notice(code=p.NoticeCode.INFO, text=told)),
                    *self.disconnect(other.conn, p.LeaveReason.KICKED, now, ban.reason, by=ban.by),
                    Close(other.conn),
                ]
        return actions

    def _persist(self, kind: str, key: str, data: Any) -> list[RoomAction]:
        # Not a state file: the ledger keeps it, and every node enforces it (ClusterLink).
        return [Persist(kind, key, data)]
