"""Who is in the room, as this client knows it, and who "you" are.

Users are tracked by id (``ip:port``), which never changes, because names do. The roster
is filled from a ``who`` reply and kept current from join, leave and rename events. It also
holds the marks the user list shows by id: operators and registered names, as the last
``who`` said (a rename drops the registered mark until the next ``who``: the new name may
not be registered), and whom this user ignores, as the server's replies said
(chatroom/client/ignores.py). When the
server changes our own id or name by itself (the fact ``identity``), :meth:`identity`
follows it.
"""

from __future__ import annotations

import ipaddress
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
    _registered: set[str] = field(default_factory=set)  # ids whose names are registered (who)
    _away: set[str] = field(default_factory=set)  # ids away, as the last who said (and facts)

    def welcome(self, event: Welcome) -> None:
        """A fresh connection: we know ourselves, and nobody else until ``who`` arrives."""
        self.own_id, self.own_name = event.id, event.name
        self._names = {event.id: event.name}
        self._ops = set()
        self._ignored = set()  # a new connection ignores nobody
        self._registered = set()
        self._away = set()

    def entered(self, own_id: str | None, own_name: str | None, *, ignored: set[str]) -> None:
        """A room joined: we know ourselves, and nobody else until its ``who`` arrives;
        whom we ignore holds in every room (the server's ignores are server-wide)."""
        self.own_id, self.own_name = own_id, own_name
        self._names = {own_id: own_name} if own_id is not None and own_name is not None else {}
        self._ops, self._registered, self._away = set(), set(), set()
        self._ignored = set(ignored)

    def apply(self, event: Who | Join | Leave | Rename) -> None:
        match event:
            case Who(users=users):
                self._names = {user.id: user.name for user in users}
                self._ops = {user.id for user in users if user.op}
                self._registered = {user.id for user in users if user.registered}
                self._away = {user.id for user in users if user.away is not None}
                self._ignored &= self._names.keys()
            case Join(id=user_id, name=name):
                self._names[user_id] = name
            case Leave(id=user_id):
                self._names.pop(user_id, None)
                self._ops.discard(user_id)
                self._away.discard(user_id)
                self._ignored.discard(user_id)  # the server forgets an ignore then
                self._registered.discard(user_id)
            case Rename(id=user_id, new=new):
                self._names[user_id] = new
                self._registered.discard(user_id)
                if user_id == self.own_id:
                    self.own_name = new

    def clear(self) -> None:
        self._names = {}
        self._ops = set()
        self._ignored = set()
        self._registered = set()
        self._away = set()

    def own_away(self, away: bool) -> None:
        """The server said we are away (the fact ``away``) or back (``back``)."""
        if self.own_id is None:
            return
        if away:
            self._away.add(self.own_id)
        else:
            self._away.discard(self.own_id)

    def away(self) -> set[str]:
        """The ids of the users away, as the last ``who`` said (ours: as the facts say)."""
        return set(self._away)

    def identity(self, user_id: str, name: str) -> None:
        """The server changed our own id or name by itself: we are ``user_id``, ``name``."""
        old = self.own_id
        if old is not None and old != user_id:
            self._names.pop(old, None)
            if old in self._ops:  # the connection is the same: so is its operator status
                self._ops.discard(old)
                self._ops.add(user_id)
        self.own_id, self.own_name = user_id, name
        self._names[user_id] = name

    def ignoring(self, change: IgnoreChange) -> None:
        """The server said whom this user ignores now (a user this roster does not list is
        not marked: every event before the reply has been applied, so it is gone)."""
        match change:
            case Ignored(user_id):
                self._ignored.update({user_id} & self._names.keys())
            case Unignored(user_id):
                self._ignored.discard(user_id)
            case IgnoreList(ids):
                self._ignored = set(ids) & self._names.keys()

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

    def registered(self) -> set[str]:
        """The ids whose names the last ``who`` marked registered (``/register``)."""
        return set(self._registered)

    def is_own(self, user_id: str) -> bool:
        return user_id == self.own_id

    def users(self) -> list[tuple[str, str]]:
        """(id, name) pairs, sorted by name as people read a list: case-insensitively."""
        return sorted(self._names.items(), key=lambda item: (name_key(item[1]), item[0]))

    def names(self) -> list[str]:
        return [name for _, name in self.users()]

    def sharing_address(self, user_id: str) -> list[str] | None:
        """The names of the users at ``user_id``'s address (it among them), sorted; None
        when ids are not addresses (a room that hides them)."""
        address = address_of(user_id)
        if address is None:
            return None
        return [name for uid, name in self.users() if address_of(uid) == address]

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._names


def address_of(user_id: str) -> str | None:
    """The IP address in an ``ip:port`` id (``[v6]:port`` too); None for an opaque id."""
    host, _, port = user_id.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(host)) if port.isdigit() else None
    except ValueError:
        return None
