"""Who is on the server, in which rooms and under which name: the one object that changes
it. No I/O.

Everything the server knows of who is here lives here — this node's connections
(members), everyone on the server (users, on this node or, in a shared room, on others),
the names they hold (unique server-wide), the rooms (:class:`~chatroom.server.core.channel.
Channel`: who is in each, its subscribers by output format, its seq and history), the
connections from each address and who ignores whom — and only the methods below change
it, so every rule about it (a name is held by one user, a member is a user of this node
once its join is applied, a subscriber is a member, a room nobody is in goes unless
listed) is kept in one place. The room (:mod:`chatroom.server.core.room`) decides *when*
to change it; this module says *how*. Who may come in is decided with
:mod:`chatroom.server.core.admission`, which keeps the connection throttle and the churn.
"""

from __future__ import annotations

from collections.abc import Iterable

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId
from chatroom.server.core.channel import Channel, Rooms
from chatroom.server.core.ignores import Ignores
from chatroom.server.core.member import Member, User

__all__ = ["Channel", "Member", "RoomState", "User"]


class RoomState:
    def __init__(
        self,
        node: str,
        keep: int,
        epoch: str | None = None,
        default: str = p.DEFAULT_ROOM,
        listed: Iterable[str] = (),
    ) -> None:
        self.node = node  # this node's name; every user of a single-node room is on it
        self.epoch = epoch  # which history the seqs count in (see protocol.Welcome)
        self.default = default  # the room every connection starts in
        self._members: dict[ConnId, Member] = {}  # this node's connections
        self._local: dict[str, Member] = {}  # the same, by user id
        self._users: dict[str, User] = {}  # everyone on the server, by id, in join order
        # name_skeleton(name) -> user id: one holder for all the names that look alike
        self._by_key: dict[str, str] = {}
        self._per_address: dict[str, int] = {}
        self.rooms = Rooms(default, keep, listed)  # read it; only the methods below change it
        self._version = 0  # changes whenever who is here, or a name, changes
        self.ignores = Ignores()  # who ignores whom: read it; it changes through its methods
        self.messages = 0  # chat lines and actions applied since start (for the metrics)

    # --- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        """Connections on this node."""
        return len(self._members)

    @property
    def seq(self) -> int:
        """The default room's last seq (0 before the first event)."""
        return self.rooms.main.seq

    def member(self, conn: ConnId) -> Member | None:
        return self._members.get(conn)

    def members(self) -> list[Member]:
        return list(self._members.values())

    def local(self, user_id: str) -> Member | None:
        """This node's member with ``user_id``, if it has one."""
        return self._local.get(user_id)

    def user(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def users(self, room: str | None = None) -> list[User]:
        """Everyone on the server, or in ``room``, in join order."""
        if room is None:
            return list(self._users.values())
        channel = self.rooms.get(room)
        users = self._users
        return [users[uid] for uid in channel.user_ids() if uid in users] if channel else []

    def holder_of(self, name: str) -> str | None:
        """The id of the user holding ``name`` or a name that looks like it (compared by
        :func:`~chatroom.protocol.name_skeleton`: without case, form or look-alikes)."""
        return self._by_key.get(p.name_skeleton(name))

    def connections_from(self, address: str) -> int:
        return self._per_address.get(address, 0)

    def is_subscribed(self, conn: ConnId, room: str | None = None) -> bool:
        """Whether ``conn`` receives the broadcasts of ``room`` (None: of any room)."""
        member = self._members.get(conn)
        if member is None:
            return False
        return bool(member.rooms) if room is None else room in member.rooms

    @property
    def version(self) -> int:
        """A number that changes whenever the list of users or their names change."""
        return self._version

    # --- a member's marks others see ------------------------------------

    def made_operator(self, member: Member) -> None:
        member.operator = True
        member.oper_failures = 0
        self._version += 1  # who shows the mark

    def mark_bot(self, user_id: str, bot: bool = True) -> None:  # /bot (or another node's)
        for marked in filter(None, (self._local.get(user_id), self._users.get(user_id))):
            marked.bot = bot  # its member, and its user: known once the member left
        self._version += 1  # who shows the mark

    def set_away(self, member: Member, text: str | None) -> None:
        member.away = text
        self._version += 1  # who shows it

    # --- this node's connections -----------------------------------------------------------

    def add_member(self, member: Member) -> None:
        if member.conn in self._members:
            raise ValueError(f"connection {member.conn} is already in the room")
        member.current = self.default
        self._members[member.conn] = member
        self._local[member.id] = member
        self._per_address[member.address] = self._per_address.get(member.address, 0) + 1

    def remove_member(self, conn: ConnId) -> Member | None:
        """Take ``conn`` off this node (and off the broadcasts); its user stays in its rooms
        until its leaves are applied."""
        member = self._members.pop(conn, None)
        if member is None:
            return None
        self.ignores.member_gone(member)
        del self._local[member.id]
        for room in member.rooms:
            channel = self.rooms.get(room)
            if channel is not None:
                channel.unsubscribe(conn)
        remaining = self._per_address[member.address] - 1
        if remaining:
            self._per_address[member.address] = remaining
        else:
            del self._per_address[member.address]
        return member

    def reidentify(self, member: Member, user_id: str) -> None:
        """``member``, not yet in the room under its id, takes ``user_id`` instead (and the
        name with it, while its name was its id)."""
        if user_id in self._local:
            raise ValueError(f"user id {user_id} is already this node's")
        del self._local[member.id]
        if member.name == member.id:
            member.name = user_id
        member.id = user_id
        self._local[user_id] = member

    def subscribe(self, member: Member, room: str | None = None) -> None:
        """``member`` receives ``room``'s broadcasts (None: its current room's) and its
        plain lines go there."""
        room = room or member.current
        self.rooms.open(room).subscribe(member)
        if room not in member.rooms:
            member.rooms.append(room)
        member.current = room

    def unsubscribe(self, member: Member, room: str) -> None:
        """``member`` no longer receives ``room``'s broadcasts; its lines go to the room it
        joined last of those it is still in."""
        channel = self.rooms.get(room)
        if channel is not None:
            channel.unsubscribe(member.conn)
        if room in member.rooms:
            member.rooms.remove(room)
        if member.current == room:
            member.current = member.rooms[-1] if member.rooms else self.default
        self.rooms.drop_if_empty(room)

    def make_current(self, member: Member, room: str) -> None:  # its lines go to room
        if room in member.rooms:
            member.current = room

    def set_format(self, member: Member, fmt: p.OutputFormat, *, subscribe: bool = True) -> None:
        """``member``'s output is now in ``fmt`` (and, with ``subscribe``, so are the
        broadcasts of its rooms)."""
        found = (self.rooms.get(room) for room in member.rooms)
        channels = [channel for channel in found if channel is not None]
        for channel in channels:
            channel.unsubscribe(member.conn)
        member.format = fmt
        if subscribe:
            for channel in channels:
                channel.subscribe(member)

    # --- the rooms' events, in the order they are sequenced ----------------------------------

    def joined(self, event: p.Join, node: str) -> Member | None:
        """``event``'s user is in its room; returns it if it is this node's member."""
        room = event.room or self.default
        self._version += 1
        user = self._users.get(event.id)
        if user is None:
            user = self._users[event.id] = User(event.id, event.name, node, event.ts)
            self._by_key[p.name_skeleton(event.name)] = event.id
        user.rooms.add(room)
        self.rooms.open(room).enter(event.id, event.seq)
        member = self._local.get(event.id) if node == self.node else None
        if member is not None:
            member.name = event.name
        return member

    def renamed(self, event: p.Rename, node: str) -> Member | None:
        """``event``'s user now holds its new name (the first of its rooms' renames changes
        it; the others only count in their rooms); returns it if it is this node's member
        and this rename changed its name."""
        channel = self.rooms.get(event.room or self.default)
        if channel is not None:
            channel.sequenced(event.seq)
        self._version += 1
        user = self._users.get(event.id)
        if user is None or user.name == event.new:
            return None
        self._release_name(user)
        user.name, user.last_seen = event.new, event.ts
        self._by_key[p.name_skeleton(event.new)] = user.id
        member = self._local.get(event.id) if node == self.node else None
        if member is not None:
            member.name = event.new
        return member

    def left(self, event: p.Leave) -> None:
        """``event``'s user is out of its room; out of the server too once it is in no
        room (but a ``part``: it is on its way to another)."""
        room = event.room or self.default
        self._version += 1
        channel = self.rooms.get(room)
        if channel is not None:
            channel.leave(event.id, event.seq)
        user = self._users.get(event.id)
        if user is not None:
            user.rooms.discard(room)
            if not user.rooms and event.reason is not p.LeaveReason.PART:
                self._forget_user(user)
        self.rooms.drop_if_empty(room)

    def said(self, event: p.Message | p.Action) -> Channel | None:
        """A message or action in its room: the room (None: gone, nobody hears it)."""
        channel = self.rooms.get(event.room or self.default)
        if channel is None:
            return None
        channel.said(event)
        self.messages += 1
        user = self._users.get(event.id)
        if user is not None:
            user.last_seen = event.ts
        return channel

    def restore_history(
        self,
        history: Iterable[p.Message | p.Action],
        seq: int = 0,
        *,
        known: int = 0,
        hole: tuple[int, int] | None = None,
        room: str | None = None,
    ) -> None:
        """The recent chat a state file kept (--state) for ``room`` (None: the default
        room): replayed to newcomers, and the seq goes on from its last (or ``seq``, where a
        clean stop or a crash left it). ``known``, ``hole``: what it covers (history.py)."""
        channel = self.rooms.open(room or self.default)
        channel.history.restore(history, known=known, hole=hole)
        channel.sequenced(max(channel.seq, seq, channel.history.last_seq))

    def everyone_leaves(self) -> list[ConnId]:
        """The server is stopping: this node's members leave at once. Returns their conns."""
        conns = list(self._members)
        self._version += 1
        for conn in conns:
            member = self.remove_member(conn)
            user = self._users.get(member.id) if member is not None else None
            if user is not None:
                for room in list(user.rooms):
                    channel = self.rooms.get(room)
                    if channel is not None:
                        channel.leave(user.id, channel.seq)
                self._forget_user(user)
        return conns

    def reset(
        self,
        users: Iterable[tuple[str, str, str, Iterable[str]]],
        rooms: Iterable[tuple[str, int, Iterable[p.Message | p.Action], int]],
        now: float,
        epoch: str | None = None,
    ) -> None:
        """Take a ledger's view: ``(id, name, node, rooms)`` of everyone, each room in use
        (Rooms.synced), the epoch. This node's members are kept; the caller reconciles."""
        self._version += 1
        same = epoch is not None and epoch == self.epoch  # this node's history goes on
        self.epoch = epoch
        self._users = {
            uid: User(uid, name, node, now, set(in_rooms)) for uid, name, node, in_rooms in users
        }
        self._by_key = {p.name_skeleton(user.name): uid for uid, user in self._users.items()}
        self.rooms.synced(rooms, {uid: user.rooms for uid, user in self._users.items()}, same)

    def adopt_name(self, member: Member, name: str) -> None:
        """``member`` is called ``name`` from now on: the ledger says so (it renamed while we
        were cut off), or the guest name it was given is held on another node."""
        self._version += 1
        member.name = name

    def _forget_user(self, user: User) -> None:
        """``user`` left the server: its name is free and its ignorers forget it (its id
        is never used again)."""
        self._users.pop(user.id, None)
        self._release_name(user)
        self.ignores.user_gone(user.id, self._members.get)

    def _release_name(self, user: User) -> None:
        """``user`` no longer holds its name — unless someone else has claimed it since."""
        key = p.name_skeleton(user.name)
        if self._by_key.get(key) == user.id:
            del self._by_key[key]
