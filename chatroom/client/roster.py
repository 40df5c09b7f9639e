"""Who is in the room, as this client knows it, and who "you" are.

Users are tracked by id (``ip:port``), which never changes, because names do. The roster
is filled from a ``who`` reply and kept current from join, leave and rename events. It also
holds the marks the user list shows by id: operators, as the last ``who`` said, and whom
this user ignores, as the server's replies said (chatroom/client/ignores.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatroom.client.ignores import IgnoreChange, Ignored, IgnoreList, Unignored
from chatroom.protocol import Join, Leave, Rename, Welcome, Who, name_key


@dataclass
class Roster:
    own_id: str | None = None
    own_name: str | None = None
    _names: dict[str, str] = field(default_factory=dict)  # id -> name
    _ops: set[str] = field(default_factory=set)  # ids of operators, as the last who said
    _ignored: set[str] = field(default_factory=set)  # ids this user ignores (the server said)

    def welcome(self, event: Welcome) -> None:
        """A fresh connection: we know ourselves, and nobody else until ``who`` arrives."""
        self.own_id, self.own_name = event.id, event.name
        self._names = {event.id: event.name}
        self._ops = set()
        self._ignored = set()  # a new connection ignores nobody

    def apply(self, event: Who | Join | Leave | Rename) -> None:
        match event:
            case Who(users=users):
                self._names = {user.id: user.name for user in users}
                self._ops = {user.id for user in users if user.op}
                self._ignored &= self._names.keys()
            case Join(id=user_id, name=name):
                self._names[user_id] = name
            case Leave(id=user_id):
                self._names.pop(user_id, None)
                self._ops.discard(user_id)
                self._ignored.discard(user_id)  # the server forgets an ignore then
            case Rename(id=user_id, new=new):
                self._names[user_id] = new
                if user_id == self.own_id:
                    self.own_name = new

    def clear(self) -> None:
        self._names = {}
        self._ops = set()
        self._ignored = set()

    def ignoring(self, change: IgnoreChange) -> None:
        """The server said whom this user ignores now (its names are current names)."""
        match change:
            case Ignored(name):
                self._ignored.update(self._ids_named([name]))
            case Unignored(name):
                self._ignored.difference_update(self._ids_named([name]))
            case IgnoreList(names):
                self._ignored = self._ids_named(names)

    def _ids_named(self, names: list[str] | tuple[str, ...]) -> set[str]:
        keys = {name_key(name) for name in names}
        return {user_id for user_id, name in self._names.items() if name_key(name) in keys}

    @property
    def ignores_anyone(self) -> bool:
        return bool(self._ignored)

    def ignored(self) -> set[str]:
        """The ids of the users this user ignores."""
        return set(self._ignored)

    def is_operator(self, user_id: str | None) -> bool:
        """Whether the last ``who`` marked ``user_id`` an operator (``op``)."""
        return user_id in self._ops

    @property
    def own_is_operator(self) -> bool:
        return self.is_operator(self.own_id)

    def operators(self) -> set[str]:
        return set(self._ops)

    def is_own(self, user_id: str) -> bool:
        return user_id == self.own_id

    def users(self) -> list[tuple[str, str]]:
        """(id, name) pairs, sorted by name as people read a list: case-insensitively."""
        return sorted(self._names.items(), key=lambda item: (name_key(item[1]), item[0]))

    def names(self) -> list[str]:
        return [name for _, name in self.users()]

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._names
