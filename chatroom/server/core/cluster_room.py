"""One node of a room shared by several servers through a ledger (Redis). No I/O.

:class:`ClusterRoom` keeps every rule of :class:`~chatroom.server.core.room.Room` and changes
only how a broadcast event is sequenced: appending it becomes an
:class:`~chatroom.server.core.actions.Append` action, and every node applies the ledger's events
in the ledger's order (:meth:`ClusterRoom.sequenced`), so all of them agree on one order.
What follows from that lives here, fenced off from the single-server room:

- a newcomer is a member at once but joins the room only when its join comes back from the
  ledger; lines it sends meanwhile wait (``held_lines`` of them at most) and are handled
  after its welcome; while the ledger is unavailable, lines that need the room are refused
  at once as ``unavailable``, and only its choice of format waits;
- a newcomer admitted quietly while the room churns is welcomed at once; its join goes to
  the ledger with its first line (which then waits as above) or when its quiet time is up,
  and if it leaves before that the ledger never hears of it;
- a rename is with the ledger until it comes back, and a second one waits for it;
- the ledger may refuse an append (:meth:`refused`), a private message may be for a user on
  another node (:class:`~chatroom.server.core.actions.SendPrivate`), and after an outage the
  ledger's view replaces this node's (:meth:`resync`);
- a member the ledger reaped while this node was only slow joins again;
- a user id is unique room-wide: two nodes may see one address and port (behind a load
  balancer), and the one whose join the ledger refuses as a duplicate joins again under
  the id with this node's tag added;
- bans, mutes (by name) and the topic are the room's, not the node's, and an operator's
  command on another node's user is carried out by that node: both are in
  :mod:`chatroom.server.core.cluster_moderation`, a part of this room.
"""

from __future__ import annotations

import zlib

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import (
    Append,
    Close,
    ConnId,
    RoomAction,
    SendPrivate,
    TurnedAway,
)
from chatroom.server.core.admission import Cause
from chatroom.server.core.cluster_moderation import ClusterModerationRules
from chatroom.server.core.codec import LineTooLong, command_of
from chatroom.server.core.refusal import Refusal
from chatroom.server.core.room import Room
from chatroom.server.core.state import Member

UNSENT = "your last line may not have reached the room: it is unavailable right now"


class ClusterRoom(ClusterModerationRules, Room):
    def __init__(self, rules: RoomRules, node: str) -> None:
        super().__init__(rules, node)
        # Members whose join the ledger has not sequenced yet, with the lines they sent.
        self._waiting: dict[ConnId, list[str | LineTooLong]] = {}
        self._renaming: set[ConnId] = set()  # members whose rename is with the ledger
        # Members whose join the ledger could not take (unavailable): they join on resync.
        self._unjoined: set[ConnId] = set()
        # Added to a user id that another node's user holds already: unique to this node.
        self._tag = f"n{zlib.crc32(node.encode()):08x}"
        self.requests_made = 0  # operators' commands sent to other nodes (moderation)

    # --- this node's connections ---------------------------------------------------------

    def connect(self, conn: ConnId, host: str, port: int, now: float) -> list[RoomAction]:
        actions = super().connect(conn, host, port, now)
        member = self.state.member(conn)
        if member is not None and member.quiet_until is None:  # its join is with the ledger
            self._waiting[conn] = []
        return actions

    def disconnect(
        self,
        conn: ConnId,
        reason: p.LeaveReason,
        now: float,
        text: str | None = None,
        by: str | None = None,
    ) -> list[RoomAction]:
        self._forget(conn)
        return super().disconnect(conn, reason, now, text, by)

    def shutdown(self, now: float) -> list[RoomAction]:
        """As :meth:`Room.shutdown`; the caller has the ledger announce these users' leaves
        to the other nodes."""
        self._waiting.clear()
        self._renaming.clear()
        self._unjoined.clear()
        return super().shutdown(now)

    # --- events from the ledger ----------------------------------------------------------

    def sequenced(self, event: p.BroadcastEvent, node: str) -> list[RoomAction]:
        """The ledger's next event, appended by ``node``: apply it here."""
        return self._apply(event, node)

    def refused(
        self, conn: ConnId | None, event: p.BroadcastEvent, reason: Refusal
    ) -> list[RoomAction]:
        """The ledger refused an :class:`Append` that came from ``conn``'s line."""
        member = self.state.member(conn) if conn is not None else None
        if member is None:
            return []
        match event:
            case p.Rename():
                self._renaming.discard(member.conn)
                if reason == Refusal.TAKEN:
                    refusal = self._error(
                        member, p.ErrorCode.NAME_TAKEN, f"the name {event.new} is taken"
                    )
                else:
                    refusal = self._error(member, p.ErrorCode.UNAVAILABLE, UNSENT)
                # Then the lines that waited for it, under the name it still has.
                return refusal + self._release(member, event.ts)
            case p.Join():
                if reason == Refusal.DUPLICATE and not member.id.endswith(self._tag):
                    return self._rejoin_as(member, f"{member.id}~{self._tag}", event)
                if (
                    reason == Refusal.TAKEN
                    and self.rules.hide_addresses
                    and event.name == member.name
                    and not self.state.is_subscribed(member.conn)
                ):
                    # A guest name drawn here that another node's guest holds: draw again.
                    self.state.adopt_name(member, self._guest_name())
                    return [Append(p.replace(event, name=member.name), member.conn)]
                if reason == Refusal.TAKEN and event.name != member.id:
                    # Joining again under its name, which someone claimed meanwhile.
                    return self._name_lost(member, event.name, event.ts)
                if reason in (Refusal.TAKEN, Refusal.DUPLICATE):  # an id or name held
                    text = "your address is already in the room on another server"
                    self._forget(member.conn)
                    self.state.remove_member(member.conn)
                    notice = p.Notice(code=p.NoticeCode.SERVER_FULL, text=text)
                    away = TurnedAway(member.conn, text, Cause.ELSEWHERE)
                    return [*self._send(member, notice), away, Close(member.conn)]
                self._unjoined.add(member.conn)
                notice = p.Notice(
                    code=p.NoticeCode.INFO,
                    text="the room is unavailable; you will join when it is back (until then"
                    " what you send is not delivered)",
                )
                return self._send(member, notice)
        return self._error(member, p.ErrorCode.UNAVAILABLE, UNSENT)

    def _rejoin(self, member: Member, now: float) -> list[RoomAction]:
        """``member`` is here but the ledger lost it: it joins again, under its name unless
        someone holds it now (then under its id, and it is told)."""
        if self.state.holder_of(member.name) not in (None, member.id):
            return self._name_lost(member, member.name, now)
        return [Append(p.Join(seq=0, ts=now, id=member.id, name=member.name), member.conn)]

    def _name_lost(self, member: Member, name: str, now: float) -> list[RoomAction]:
        text = f"your name {name} was taken while you were away: you are {member.id} again"
        join = p.Join(seq=0, ts=now, id=member.id, name=member.id)
        notice = p.Notice(code=p.NoticeCode.INFO, text=text)
        return [*self._send(member, notice), Append(join, member.conn)]

    def _rejoin_as(self, member: Member, user_id: str, event: p.Join) -> list[RoomAction]:
        """Another node's user holds ``member``'s id: it joins as ``user_id`` instead."""
        old = member.id
        self.state.reidentify(member, user_id)
        join = p.Join(seq=0, ts=event.ts, id=member.id, name=member.name)
        actions: list[RoomAction] = [Append(join, member.conn)]
        if self.state.is_subscribed(member.conn):  # it was told its old id already
            text = f"another user of the room has the id {old}: yours is now {member.id}"
            actions += self._send(member, p.Notice(code=p.NoticeCode.INFO, text=text))
        return actions

    def private_undelivered(self, conn: ConnId, event: p.Private) -> list[RoomAction]:
        """A private message could not be carried to the recipient's node."""
        member = self.state.member(conn)
        if member is None:
            return []
        return self._error(
            member,
            p.ErrorCode.UNAVAILABLE,
            f"your private message to {event.recipient} may not have been delivered",
        )

    def remote_private(
        self, recipient_id: str, event: p.Private, sender_id: str | None
    ) -> list[RoomAction]:
        """A private message from another node for ``recipient_id``, if it is here and does
        not ignore its sender (``sender_id``; None from nodes that predate it)."""
        member = self.state.local(recipient_id)
        if member is None or not self.state.is_subscribed(member.conn):
            return []
        if sender_id is not None and self._ignores(member, sender_id):
            return []  # silently, as on one node: the sender is not told it is ignored
        return self._send(member, event)

    def resync(
        self,
        users: list[tuple[str, str, str]],
        seq: int,
        history: list[p.Message | p.Action],
        now: float,
        epoch: str,
    ) -> list[RoomAction]:
        """Take the ledger's view — ``(id, name, node)`` of everyone, the last seq, recent
        history, its epoch — after (re)connecting to it. If the epoch is not the one this
        node had, the ledger started over (Redis restarted empty, or from an older snapshot)
        and this node's members are told that seq counts again. Members of this node that
        the ledger lost (it restarted, or declared this node dead) are appended as joining
        again; users it still lists for this node that are gone from here are appended as
        leaving."""
        state = self.state
        actions: list[RoomAction] = []
        if state.epoch is not None and epoch != state.epoch:
            text = "the room's history was reset: its shared store started over"
            actions += self._broadcast(p.Notice(code=p.NoticeCode.RESET, text=text, epoch=epoch))
        state.reset(users, seq, history, now, epoch)
        for member in state.members():
            if member.quiet_until is not None:  # not announced yet: the ledger never knew it
                continue
            user = state.user(member.id)
            if user is None or user.node != self.node:
                actions += self._rejoin(member, now)
            elif user.name != member.name:
                state.adopt_name(member, user.name)
        for user in state.users():
            if user.node == self.node and state.local(user.id) is None:
                leave = p.Leave(
                    seq=0, ts=now, id=user.id, name=user.name, reason=p.LeaveReason.ERROR
                )
                actions.append(Append(leave, None))
        return actions

    def ledger_notice(self, text: str) -> list[RoomAction]:
        """Tell this node's members about the ledger going away or coming back."""
        return self._broadcast(p.Notice(code=p.NoticeCode.INFO, text=text))

    # --- how a shared room sequences -----------------------------------------------------

    def _new_seq(self) -> int:
        return 0  # the ledger decides

    def _append(self, event: p.BroadcastEvent, member: Member | None) -> list[RoomAction]:
        if member is not None and isinstance(event, p.Rename):
            # Its next lines wait for the rename to come back, as a newcomer's wait for its
            # join: a line sent right after /nick then carries the new name, as on one
            # server, not the old one the ledger would sequence after the rename.
            self._renaming.add(member.conn)
            self._waiting.setdefault(member.conn, [])
        return [Append(event, member.conn if member is not None else None)]

    def _announce(self, member: Member, now: float) -> list[RoomAction]:
        # Its lines wait for the join to come back from the ledger, as a newcomer's do.
        self._waiting[member.conn] = []
        return super()._announce(member, now)

    def _held(self, member: Member, line: str | LineTooLong) -> list[RoomAction] | None:
        waiting = self._waiting.get(member.conn)
        if waiting is None:
            return None
        if member.conn not in self._unjoined and len(waiting) < self.rules.held_lines:
            waiting.append(line)  # handled once its join comes back, in order
            return []
        # The ledger cannot take its join now, or it has sent enough lines ahead of it.
        match command_of(line):
            case c.Nothing():
                return []
            case c.Quit() | c.Help():
                return None  # these need nothing of the room: handled now
            case c.SetFormat():
                # Only its last choice of format matters: it waits, in place of any other.
                waiting[:] = [w for w in waiting if not isinstance(command_of(w), c.SetFormat)]
                waiting.append(line)
                return []
        if member.conn in self._unjoined:
            text = "the room is unavailable: your line was not sent (you will join when it is back)"
        elif member.conn in self._renaming:
            text = "your line was not sent: the room has not taken your rename yet"
        else:
            text = "your line was not sent: the room has not taken your join yet"
        return self._error(member, p.ErrorCode.UNAVAILABLE, text)

    def _release(self, member: Member, now: float) -> list[RoomAction]:
        """The lines that waited for ``member``'s rename, handled now, in order (one of
        them may be another /nick: the lines after it wait again)."""
        actions: list[RoomAction] = []
        for line in self._waiting.pop(member.conn, []):
            actions += self.receive(member.conn, line, now)
        return actions

    def _rename_refusal(self, member: Member) -> list[RoomAction]:
        if member.conn in self._renaming:
            return self._error(
                member, p.ErrorCode.BAD_USAGE, "your previous rename is still under way"
            )
        return []

    def _private_elsewhere(
        self, sender: Member, node: str, user_id: str, private: p.Private
    ) -> list[RoomAction]:
        return [SendPrivate(node, user_id, private, sender.conn, sender.id)]

    def _apply(self, event: p.BroadcastEvent, node: str) -> list[RoomAction]:
        actions = super()._apply(event, node)
        if type(event) is p.Message or type(event) is p.Action:
            return actions  # nothing more to do (almost every event: checked first)
        member = self.state.local(event.id) if node == self.node else None
        match event:
            case p.Join() if member is not None:
                self._unjoined.discard(member.conn)
                # Only now, after the broadcast was made for the formats as they were: one
                # of these lines may be /format, and the join must still reach its sender.
                for line in self._waiting.pop(member.conn, []):
                    actions += self.receive(member.conn, line, event.ts)
            case p.Rename() if member is not None:
                self._renaming.discard(member.conn)
                actions += self._release(member, event.ts)
            case p.Leave():
                reaped = self.state.local(event.id)
                if reaped is not None and self.state.is_subscribed(reaped.conn):
                    # The ledger took this node for dead while it was only slow (paused, a
                    # loaded host) and reaped a member that is still here: it joins again.
                    text = (
                        "this server did not answer the room for a while and was taken for"
                        " gone: you left the room for everyone else and are joining again"
                    )
                    notice = p.Notice(code=p.NoticeCode.INFO, text=text)
                    actions += self._send(reaped, notice)
                    actions += self._rejoin(reaped, event.ts)
        return actions

    def _forget(self, conn: ConnId) -> None:
        self._waiting.pop(conn, None)
        self._renaming.discard(conn)
        self._unjoined.discard(conn)
