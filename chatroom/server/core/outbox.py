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

A connection that ends its lines in "\\r\\n" (telnet, PuTTY, Windows nc: the adapter says so
with :meth:`Outbox.answer_in_crlf`) is answered in "\\r\\n". Payloads are made with "\\n"
alone (text lines hold no "\\r"; JSON holds no raw line break), and the "\\r\\n" copy is
made at :meth:`Outbox.take`: such subscribers are a group of their own in each format, and
a flush's broadcasts are widened once, for all of them, and only when one of them is owed
them. The others' path is what it was: a room with no such client never makes the copy.

Rooms (docs/PROTOCOL.md, "Rooms"): the shared lists are per room and format, a *group*. A
connection in one room — every nc user, and most connections — is a member of its
group, as above. A connection in several rooms at once (a JSON client with a rooms panel)
is *personal* in each of their groups: a broadcast is appended to its own queue, so the
one order of its rooms' events is kept without cuts into several lists. Only such
connections pay for that, one list append per broadcast each. A group goes when its last
subscriber does, and :meth:`Outbox.take` visits only the groups a broadcast went to since
the last one: a room used once, or never spoken in, costs a flush nothing.
"""

from __future__ import annotations

from collections.abc import Collection

from chatroom.protocol import DEFAULT_ROOM, OutputFormat
from chatroom.server.core.actions import (
    Broadcast,
    ConnId,
    Deliver,
    RoomAction,
    Subscribe,
    Unsubscribe,
)

Group = tuple[str, OutputFormat]  # a room and a format: who shares one list of payloads


class Outbox:
    def __init__(self) -> None:
        self._format_of: dict[ConnId, OutputFormat] = {}  # every subscriber's format
        self._rooms_of: dict[ConnId, dict[str, None]] = {}  # the rooms it receives
        self._group_of: dict[ConnId, Group] = {}  # subscribers of one room: their group
        # A group's members (insertion-ordered sets) answered in "\n", and in "\r\n"; a
        # group with either has both. Connections in several rooms: personal copies.
        self._members: dict[Group, dict[ConnId, None]] = {}
        self._wide_members: dict[Group, dict[ConnId, None]] = {}
        self._personal: dict[Group, dict[ConnId, None]] = {}
        self._crlf: dict[ConnId, None] = {}  # connections answered in "\r\n"
        self._shared: dict[Group, list[bytes]] = {}  # broadcasts since the last take()
        self._pending: dict[Group, None] = {}  # the groups whose shared list has any
        # Connections with output of their own. ``_cut[conn]`` is how much of their
        # group's shared list is already copied into ``_own[conn]`` (or was before they
        # subscribed), so only the rest is still theirs to receive.
        self._own: dict[ConnId, list[bytes]] = {}
        self._own_bytes: dict[ConnId, int] = {}  # what was sent to a connection alone
        self._cut: dict[ConnId, int] = {}
        # For the metrics: payloads handed to one connection each, and their bytes. Counted
        # at take(), once per group and once per connection with output of its own: a
        # broadcast costs nothing more.
        self.deliveries = 0
        self.taken_bytes = 0

    def __bool__(self) -> bool:
        return bool(self._own) or bool(self._pending)

    @property
    def groups(self) -> int:
        """Groups held now (a room and a format with a subscriber)."""
        return len(self._shared)

    def queue(self, action: RoomAction) -> bool:
        """Queue one of the room's output actions; False for any other action."""
        match action:
            case Broadcast():
                self.broadcast(action.fmt, action.payload, action.skip, action.room)
            case Deliver():
                for conn in action.recipients:
                    self.send(conn, action.payload)
            case Subscribe():
                self.subscribe(action.conn, action.fmt, action.room)
            case Unsubscribe():
                self.unsubscribe(action.conn, action.room)
            case _:
                return False
        return True

    def subscribe(self, conn: ConnId, fmt: OutputFormat, room: str = DEFAULT_ROOM) -> None:
        """From now on ``conn`` receives the broadcasts of ``room`` in ``fmt`` (a format
        other than its rooms' so far: those are dropped, it receives ``room`` alone)."""
        if self._format_of.get(conn, fmt) is not fmt:
            self.unsubscribe(conn)
        rooms = self._rooms_of.setdefault(conn, {})
        if room in rooms:
            return
        self._format_of[conn] = fmt
        rooms[room] = None
        self._shared.setdefault((room, fmt), [])
        self._members.setdefault((room, fmt), {})
        self._wide_members.setdefault((room, fmt), {})
        if len(rooms) == 1:
            self._join_group(conn, (room, fmt))
            return
        group = self._group_of.get(conn)
        if group is not None:  # it was in one room: personal in both from now on
            self._leave_group(conn, group)
            self._personal.setdefault(group, {})[conn] = None
        self._personal.setdefault((room, fmt), {})[conn] = None

    def unsubscribe(self, conn: ConnId, room: str | None = None) -> None:
        """``conn`` receives no more broadcasts of ``room`` (None: of any); what it is
        already owed stays queued."""
        rooms = self._rooms_of.get(conn)
        if rooms is None:
            return
        fmt = self._format_of[conn]
        for gone in list(rooms) if room is None else [room] if room in rooms else []:
            del rooms[gone]
            group = (gone, fmt)
            if self._group_of.get(conn) == group:
                self._leave_group(conn, group)
            else:
                self._personal[group].pop(conn, None)
            self._drop_if_empty(group)
        if len(rooms) == 1 and conn not in self._group_of:  # one room again: a member
            last = (next(iter(rooms)), fmt)
            self._personal[last].pop(conn, None)
            self._join_group(conn, last)
        if not rooms:
            del self._rooms_of[conn]
            del self._format_of[conn]

    def _join_group(self, conn: ConnId, group: Group) -> None:
        self._group_of[conn] = group
        (self._wide_members if conn in self._crlf else self._members)[group][conn] = None
        self._own.setdefault(conn, [])
        self._cut[conn] = len(self._shared[group])

    def _leave_group(self, conn: ConnId, group: Group) -> None:
        self._settle(conn, group)
        del self._cut[conn]
        del self._group_of[conn]
        if self._members[group].pop(conn, self) is self:
            del self._wide_members[group][conn]

    def _drop_if_empty(self, group: Group) -> None:
        """A group nobody subscribes to any more goes (what it still shares is owed to
        nobody: a member that left was settled first)."""
        if self._members[group] or self._wide_members[group] or self._personal.get(group):
            return
        for table in (self._shared, self._members, self._wide_members, self._personal):
            table.pop(group, None)
        self._pending.pop(group, None)

    def answer_in_crlf(self, conn: ConnId) -> None:
        """From now on ``conn``'s output ends its lines in "\r\n" (what is queued for it and
        not yet taken too). For good: a connection does not go back."""
        if conn in self._crlf:
            return
        self._crlf[conn] = None
        group = self._group_of.get(conn)
        if group is not None:  # the same shared list: its cut stays right
            del self._members[group][conn]
            self._wide_members[group][conn] = None

    def broadcast(
        self,
        fmt: OutputFormat,
        payload: bytes,
        skip: Collection[ConnId] = (),
        room: str = DEFAULT_ROOM,
    ) -> None:
        """``payload`` for every subscriber of ``room`` in ``fmt`` but those in ``skip``."""
        group = (room, fmt)
        personal = self._personal.get(group)
        if personal:
            own = self._own
            for conn in personal:
                if conn not in skip:
                    own.setdefault(conn, []).append(payload)
        members = self._members.get(group)
        if members is None:
            return
        wide = self._wide_members[group]
        if not members and not wide:
            return
        shared = self._shared[group]
        self._pending[group] = None
        if not skip:
            shared.append(payload)
            return
        skipped = [conn for conn in skip if conn in members or conn in wide]
        for conn in skipped:
            self._settle(conn, group)
        shared.append(payload)
        for conn in skipped:
            self._cut[conn] = len(shared)

    def send(self, conn: ConnId, payload: bytes) -> None:
        group = self._group_of.get(conn)
        if group is not None:
            self._settle(conn, group)
        self._own.setdefault(conn, []).append(payload)
        self._own_bytes[conn] = self._own_bytes.get(conn, 0) + len(payload)

    def owed(self, conn: ConnId) -> int:
        """Bytes queued for ``conn`` alone (replies, errors, private messages) until the next
        :meth:`take`; broadcasts, shared with everyone, are not counted."""
        return self._own_bytes.get(conn, 0)

    def take(self) -> list[tuple[ConnId, bytes]]:
        """Everything owed, one bytes object per connection, in the order produced."""
        out: list[tuple[ConnId, bytes]] = []
        own, cut, crlf = self._own, self._cut, self._crlf
        pending, self._pending = self._pending, {}
        for group in pending:
            shared = self._shared[group]
            if not shared:
                continue
            blob = shared[0] if len(shared) == 1 else b"".join(shared)
            before = len(out)
            for conn in self._members[group]:
                if conn not in own:
                    out.append((conn, blob))
            given = len(out) - before
            self.deliveries += len(shared) * given
            self.taken_bytes += len(blob) * given
            wide = self._wide_members[group]
            if wide:
                self._take_wide(wide, shared, blob, out)
        for conn, parts in own.items():
            group = self._group_of.get(conn)
            if group is not None:
                shared = self._shared[group]
                start = cut[conn]
                if start < len(shared):
                    parts = [*parts, *shared[start:]]
                cut[conn] = 0
            if parts:
                data = parts[0] if len(parts) == 1 else b"".join(parts)
                if crlf and conn in crlf:
                    data = data.replace(b"\n", b"\r\n")
                self.deliveries += len(parts)
                self.taken_bytes += len(data)
                out.append((conn, data))
        for group in pending:
            self._shared[group].clear()
        own.clear()  # only connections in ``own`` can have had a cut above zero
        self._own_bytes.clear()
        return out

    def _take_wide(
        self,
        wide: dict[ConnId, None],
        shared: list[bytes],
        blob: bytes,
        out: list[tuple[ConnId, bytes]],
    ) -> None:
        """The "\r\n" subscribers owed only broadcasts: one widened copy for them all."""
        own = self._own
        widened = None
        for conn in wide:
            if conn not in own:
                if widened is None:
                    widened = blob.replace(b"\n", b"\r\n")
                out.append((conn, widened))
                self.deliveries += len(shared)
                self.taken_bytes += len(widened)

    def forget(self, conn: ConnId) -> None:
        """``conn`` is closed: drop it and anything still queued for it."""
        self._crlf.pop(conn, None)
        self.unsubscribe(conn)
        self._own.pop(conn, None)
        self._own_bytes.pop(conn, None)

    def _settle(self, conn: ConnId, group: Group) -> None:
        """Copy the shared broadcasts ``conn`` is owed so far into its own queue."""
        shared = self._shared[group]
        start = self._cut.get(conn, 0)
        own = self._own.setdefault(conn, [])
        if start < len(shared):
            own.extend(shared[start:])
        self._cut[conn] = len(shared)
