"""What each connection is owed, assembled so a broadcast costs one append. No I/O.

Fan-out is the hot path of a chat server: one line to a room of N users is N deliveries.
Rather than appending every broadcast to every recipient's queue, the outbox keeps one
shared list of broadcast payloads per output format. At flush time those are joined once,
and every subscriber that got nothing else receives that same bytes object. Only a
connection that also got something of its own (a who reply, an error, a private message)
or joined, left or switched format mid-flush gets a personal copy — and its copy is cut
from the shared list at exactly the point where its own output was added, so every
connection sees every event in the one order the room produced them.
"""

from __future__ import annotations

from collections.abc import Hashable

ConnId = Hashable
Group = Hashable  # an output format: subscribers of one group receive the same bytes


class Outbox:
    def __init__(self) -> None:
        self._group_of: dict[ConnId, Group] = {}
        self._members: dict[Group, dict[ConnId, None]] = {}  # insertion-ordered sets
        self._shared: dict[Group, list[bytes]] = {}  # broadcasts since the last take()
        # Connections with output of their own. ``_cut[conn]`` is how much of their
        # group's shared list is already copied into ``_own[conn]`` (or was before they
        # subscribed), so only the rest is still theirs to receive.
        self._own: dict[ConnId, list[bytes]] = {}
        self._cut: dict[ConnId, int] = {}

    def __bool__(self) -> bool:
        return bool(self._own) or any(self._shared.values())

    def group_of(self, conn: ConnId) -> Group | None:
        return self._group_of.get(conn)

    def subscribe(self, conn: ConnId, group: Group) -> None:
        """From now on ``conn`` receives the broadcasts to ``group`` (and no other group)."""
        self.unsubscribe(conn)
        self._group_of[conn] = group
        self._members.setdefault(group, {})[conn] = None
        shared = self._shared.setdefault(group, [])
        self._own.setdefault(conn, [])
        self._cut[conn] = len(shared)

    def unsubscribe(self, conn: ConnId) -> None:
        """``conn`` receives no more broadcasts; what it is already owed stays queued."""
        group = self._group_of.pop(conn, None)
        if group is None:
            return
        self._settle(conn, group)
        del self._cut[conn]
        del self._members[group][conn]

    def broadcast(self, group: Group, payload: bytes) -> None:
        members = self._members.get(group)
        if members:
            self._shared[group].append(payload)

    def send(self, conn: ConnId, payload: bytes) -> None:
        group = self._group_of.get(conn)
        if group is not None:
            self._settle(conn, group)
        self._own.setdefault(conn, []).append(payload)

    def take(self) -> list[tuple[ConnId, bytes]]:
        """Everything owed, one bytes object per connection, in the order produced."""
        out: list[tuple[ConnId, bytes]] = []
        own, cut = self._own, self._cut
        for group, shared in self._shared.items():
            if not shared:
                continue
            blob = shared[0] if len(shared) == 1 else b"".join(shared)
            for conn in self._members[group]:
                if conn not in own:
                    out.append((conn, blob))
        for conn, parts in own.items():
            group = self._group_of.get(conn)
            if group is not None:
                shared = self._shared[group]
                start = cut[conn]
                if start < len(shared):
                    parts = [*parts, *shared[start:]]
                cut[conn] = 0
            if parts:
                out.append((conn, parts[0] if len(parts) == 1 else b"".join(parts)))
        for shared in self._shared.values():
            shared.clear()
        own.clear()  # only connections in ``own`` can have had a cut above zero
        return out

    def forget(self, conn: ConnId) -> None:
        """``conn`` is closed: drop it and anything still queued for it."""
        self.unsubscribe(conn)
        self._own.pop(conn, None)

    def _settle(self, conn: ConnId, group: Group) -> None:
        """Copy the shared broadcasts ``conn`` is owed so far into its own queue."""
        shared = self._shared[group]
        start = self._cut.get(conn, 0)
        own = self._own.setdefault(conn, [])
        if start < len(shared):
            own.extend(shared[start:])
        self._cut[conn] = len(shared)
