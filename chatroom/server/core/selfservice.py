"""What users decide for themselves: whom they ignore, and that they are away. No I/O.

``/ignore NAME`` is filtered here, on the server, so nc users have it too: the member gets
nothing more from that user — chat, ``/me``, private messages — while joins, leaves and
renames still show. The room's broadcasts are one shared payload per format
(:mod:`chatroom.server.core.outbox`); a broadcast from an ignored user names its ignorers to
*skip*, so only they get a copy of their own. The room keeps who ignores whom by the
ignored user's id (``ignored_by``): a broadcast from someone nobody ignores costs one
lookup in an empty dict.

The words of the confirmations are part of the protocol (docs/PROTOCOL.md, "Ignore and
away"): chatroom-client reads them to mark ignored users in its user list.

``/away [TEXT]`` marks the member away (no TEXT: back): it is shown in who, and a sender of
a private message to it is told.

:class:`SelfServiceRules` is a part of :class:`~chatroom.server.core.room.Room` (a mixin, as
:class:`~chatroom.server.core.moderation.ModerationRules` is).
"""

from __future__ import annotations

from chatroom import protocol as p
from chatroom.protocol import commands as c
from chatroom.server.config import RoomRules
from chatroom.server.core.actions import ConnId, RoomAction
from chatroom.server.core.state import Member, RoomState


class SelfServiceRules:
    """Mixed into :class:`~chatroom.server.core.room.Room`, whose state and helpers it uses."""

    rules: RoomRules
    state: RoomState
    # ignored user id -> the conns of this node's members ignoring it (never an empty set)
    ignored_by: dict[str, set[ConnId]]

    def _self_service(self, member: Member, command: c.Command) -> list[RoomAction]:
        match command:
            case c.Ignore(None):
                names = [self._name_of_id(uid) for uid in member.ignoring]
                text = f"you ignore: {', '.join(names)}" if names else "you ignore nobody"
                return self._info(member, text)
            case c.Ignore(name) if name is not None:
                return self._ignore(member, name)
            case c.Unignore(name):
                return self._unignore(member, name)
            case c.Away(text):
                member.away = text
                self.state.changed()  # who shows it
                said = f"you are marked away: {text}" if text else "you are back"
                return self._info(member, said)
        raise AssertionError(f"not a self-service command: {command!r}")

    def _ignore(self, member: Member, name: str) -> list[RoomAction]:
        user_id = self.state.holder_of(name)
        user = self.state.user(user_id) if user_id is not None else None
        if user is None:
            shown = p.strip_controls(name)[:40]
            return self._error(member, p.ErrorCode.UNKNOWN_USER, f"no user named {shown} is online")
        if user.id == member.id:
            return self._error(member, p.ErrorCode.BAD_USAGE, "you cannot ignore yourself")
        if user.id not in member.ignoring and len(member.ignoring) >= self.rules.max_ignores:
            text = f"you ignore {self.rules.max_ignores} users already: /unignore one first"
            return self._error(member, p.ErrorCode.BAD_USAGE, text)
        member.ignoring.add(user.id)
        self.ignored_by.setdefault(user.id, set()).add(member.conn)
        return self._info(member, f"you ignore {user.name} (/unignore {user.name} to undo)")

    def _unignore(self, member: Member, name: str) -> list[RoomAction]:
        user_id = self.state.holder_of(name)
        shown = p.strip_controls(name)[:40]
        if user_id is None or user_id not in member.ignoring:
            return self._info(member, f"you do not ignore {shown}")
        self._stop_ignoring(member, user_id)
        return self._info(member, f"you no longer ignore {self._name_of_id(user_id)}")

    def _stop_ignoring(self, member: Member, user_id: str) -> None:
        member.ignoring.discard(user_id)
        conns = self.ignored_by.get(user_id)
        if conns is not None:
            conns.discard(member.conn)
            if not conns:
                del self.ignored_by[user_id]

    def _ignorer_left(self, member: Member) -> None:
        """``member`` left: it ignores nobody any more."""
        for user_id in list(member.ignoring):
            self._stop_ignoring(member, user_id)

    def _ignored_left(self, user_id: str) -> None:
        """``user_id`` left the room: its ignorers forget it (its id is never used again)."""
        for conn in self.ignored_by.pop(user_id, ()):
            ignorer = self.state.member(conn)
            if ignorer is not None:
                ignorer.ignoring.discard(user_id)

    def _ignores(self, recipient: Member, sender_id: str) -> bool:
        return sender_id in recipient.ignoring

    def _away_notice(self, recipient_id: str) -> list[p.Event]:
        """What the sender of a private message to ``recipient_id`` is told: it is away."""
        member = self.state.local(recipient_id)
        if member is None or member.away is None:
            return []
        return [p.Notice(code=p.NoticeCode.INFO, text=f"{member.name} is away: {member.away}")]

    def _name_of_id(self, user_id: str) -> str:
        user = self.state.user(user_id)
        return user.name if user is not None else user_id

    def _info(self, member: Member, text: str) -> list[RoomAction]:
        return self._send(member, p.Notice(code=p.NoticeCode.INFO, text=text))

    # Provided by the room.
    def _send(self, member: Member, event: p.Event) -> list[RoomAction]:
        raise NotImplementedError

    def _error(self, member: Member, code: p.ErrorCode, message: str) -> list[RoomAction]:
        raise NotImplementedError
