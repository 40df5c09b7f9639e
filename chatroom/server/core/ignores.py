"""Who ignores whom (/ignore), indexed by the ignored user: the one object that changes it.
No I/O.

A broadcast from an ignored user names its ignorers to skip (rules/selfservice.py); the
index lets a broadcast from someone nobody ignores cost one lookup in an empty dict. A
member's own set (``Member.ignoring``) and this index change together, here alone.
"""

from __future__ import annotations

from collections.abc import Callable

from chatroom.server.core.actions import ConnId
from chatroom.server.core.member import Member


class Ignores:
    __slots__ = ("_by",)

    def __init__(self) -> None:
        # ignored user id -> the conns of this node's members ignoring it (never empty)
        self._by: dict[str, set[ConnId]] = {}

    def ignorers_of(self, user_id: str) -> set[ConnId] | None:
        """The conns of this node's members who ignore ``user_id`` (None: nobody does)."""
        return self._by.get(user_id)

    @property
    def by_user(self) -> dict[str, set[ConnId]]:
        """Ignored user id -> its ignorers' conns (read only)."""
        return self._by

    def ignore(self, member: Member, user_id: str) -> None:
        member.ignoring.add(user_id)
        self._by.setdefault(user_id, set()).add(member.conn)

    def unignore(self, member: Member, user_id: str) -> None:
        member.ignoring.discard(user_id)
        conns = self._by.get(user_id)
        if conns is not None:
            conns.discard(member.conn)
            if not conns:
                del self._by[user_id]

    def member_gone(self, member: Member) -> None:
        """``member`` left this node: it ignores nobody any more."""
        for user_id in list(member.ignoring):
            self.unignore(member, user_id)

    def user_gone(self, user_id: str, member_of: Callable[[ConnId], Member | None]) -> None:
        """``user_id`` left the server: its ignorers forget it (its id is never used again)."""
        for conn in self._by.pop(user_id, ()):
            ignorer = member_of(conn)
            if ignorer is not None:
                ignorer.ignoring.discard(user_id)
