"""What each connection is owed, assembled so a broadcast costs one append. No I/O.

Fan-out is the hot path of a chat server: one line to a room of N users is N deliveries.
Rather than appending every broadcast to every recipient's queue, the outbox keeps one
shared list of broadcast payloads per output format. At flush time those are joined once,
and every subscriber that got nothing else receives that same bytes object. Only a
connection that also got something of its own (a who reply, an error, a private message)
or joined, left or switched format mid-flush gets a personal copy — and its copy is cut
from the shared list at exactly the point where its own output was added, so every
connection sees every event in the one order the room produced them.

A broadcast may name connections to *skip* (those that ``/ignore`` its sender): each is
settled up to that point and its cut moved past the payload, so it gets a personal copy
without it. Only the skipped pay for that; a broadcast that skips nobody costs what it did.
"""

from __future__ import annotations

from collections.abc import Collection

from chatroom.protocol import OutputFormat
from chatroom.server.core.actions import (
    Broadcast,
    ConnId,
    Deliver,
    RoomAction,
    Subscribe,
    Unsubscribe,
)


class Outbox:
    def __init__(self) -> None:
        self._format_of: dict[ConnId, OutputFormat] = {}
        self._members: dict[OutputFormat, dict[ConnId, None]] = {}  # insertion-ordered sets
        self._shared: dict[OutputFormat, list[bytes]] = {}  # broadcasts since the last take()
        # Connections with output of their own. ``_cut[conn]`` is how much of their
        # format's shared list is already copied into ``_own[conn]`` (or was before they
        # subscribed), so only the rest is still theirs to receive.
        self._own: dict[ConnId, list[bytes]] = {}
        self._own_bytes: dict[ConnId, int] = {}  # what was sent to a connection alone
        self._cut: dict[ConnId, int] = {}
        # For the metrics: payloads handed to one connection each, and their bytes. Counted
        # at take(), once per format and once per connection with output of its own: a
        # broadcast costs nothing more.
        self.deliveries = 0
        self.taken_bytes = 0

    def __bool__(self) -> bool:
        return bool(self._own) or any(self._shared.values())

    def queue(self, action: RoomAction) -> bool:
        """Queue one of the room's output actions; False for any other action."""
        match action:
            case Broadcast():
                self.broadcast(action.fmt, action.payload, action.skip)
            case Deliver():
                for conn in action.recipients:
                    self.send(conn, action.payload)
            case Subscribe():
                self.subscribe(action.conn, action.fmt)
            case Unsubscribe():
                self.unsubscribe(action.conn)
            case _:
                return False
        return True

    def subscribe(self, conn: ConnId, fmt: OutputFormat) -> None:
        """From now on ``conn`` receives the broadcasts to ``fmt`` (and no other format)."""
        self.unsubscribe(conn)
        self._format_of[conn] = fmt
        self._members.setdefault(fmt, {})[conn] = None
        shared = self._shared.setdefault(fmt, [])
        self._own.setdefault(conn, [])
        self._cut[conn] = len(shared)

    def unsubscribe(self, conn: ConnId) -> None:
        """``conn`` receives no more broadcasts; what it is already owed stays queued."""
        fmt = self._format_of.pop(conn, None)
        if fmt is None:
            return
        self._settle(conn, fmt)
        del self._cut[conn]
        del self._members[fmt][conn]

    def broadcast(self, fmt: OutputFormat, payload: bytes, skip: Collection[ConnId] = ()) -> None:
        """``payload`` for every subscriber of ``fmt`` but those in ``skip``."""
        members = self._members.get(fmt)
        if not members:
            return
        shared = self._shared[fmt]
        if not skip:
            shared.append(payload)
            return
        skipped = [conn for conn in skip if conn in members]
        for conn in skipped:
            self._settle(conn, fmt)
        shared.append(payload)
        for conn in skipped:
            self._cut[conn] = len(shared)

    def send(self, conn: ConnId, payload: bytes) -> None:
        fmt = self._format_of.get(conn)
        if fmt is not None:
            self._settle(conn, fmt)
        self._own.setdefault(conn, []).append(payload)
        self._own_bytes[conn] = self._own_bytes.get(conn, 0) + len(payload)

    def owed(self, conn: ConnId) -> int:
        """Bytes queued for ``conn`` alone (replies, errors, private messages) until the next
        :meth:`take`; broadcasts, shared with everyone, are not counted."""
        return self._own_bytes.get(conn, 0)

    def take(self) -> list[tuple[ConnId, bytes]]:
        """Everything owed, one bytes object per connection, in the order produced."""
        out: list[tuple[ConnId, bytes]] = []
        own, cut = self._own, self._cut
        for fmt, shared in self._shared.items():
            if not shared:
                continue
            blob = shared[0] if len(shared) == 1 else b"".join(shared)
            before = len(out)
            for conn in self._members[fmt]:
                if conn not in own:
                    out.append((conn, blob))
            given = len(out) - before
            self.deliveries += len(shared) * given
            self.taken_bytes += len(blob) * given
        for conn, parts in own.items():
            fmt = self._format_of.get(conn)
            if fmt is not None:
                shared = self._shared[fmt]
                start = cut[conn]
                if start < len(shared):
                    parts = [*parts, *shared[start:]]
                cut[conn] = 0
            if parts:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                self.deliveries += len(parts)
                self.taken_bytes += len(data)
                out.append((conn, data))
        for shared in self._shared.values():
            shared.clear()
        own.clear()  # only connections in ``own`` can have had a cut above zero
        self._own_bytes.clear()
        return out

    def forget(self, conn: ConnId) -> None:
        """``conn`` is closed: drop it and anything still queued for it."""
        self.unsubscribe(conn)
        self._own.pop(conn, None)
        self._own_bytes.pop(conn, None)

    def _settle(self, conn: ConnId, fmt: OutputFormat) -> None:
        """Copy the shared broadcasts ``conn`` is owed so far into its own queue."""
        shared = self._shared[fmt]
        start = self._cut.get(conn, 0)
        own = self._own.setdefault(conn, [])
        if start < len(shared):
            own.extend(shared[start:])
        self._cut[conn] = len(shared)
