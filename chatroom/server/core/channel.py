"""One named room: who is in it, its subscribers, its seq and its history. No I/O.

The server holds many rooms (docs/PROTOCOL.md, "Rooms"); each is a :class:`Channel`, plain
data that :class:`~chatroom.server.core.state.RoomState` keeps by key and changes through
the methods below. A room costs what its dicts cost while nobody speaks in it: no timer,
no task. Names, ignores and the connections are the server's, not a room's
(:mod:`chatroom.server.core.state`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId
from chatroom.server.core.history import ChatHistory
from chatroom.server.core.member import Member


class Channel:
    __slots__ = ("_subscribers", "_users", "_who_cache", "history", "key", "listed", "seq")

    def __init__(self, key: str, keep: int, *, listed: bool = False) -> None:
        self.key = key
        self.listed = listed  # kept while empty (--rooms, and the default room)
        self.seq = 0  # the seq of the last broadcast event applied in it
        self.history = ChatHistory(keep)  # its last ``keep`` messages (history.py)
        self._users: dict[str, None] = {}  # the ids of everyone in it, in join order
        self._subscribers: dict[p.OutputFormat, dict[ConnId, Member]] = {
            fmt: {} for fmt in p.OutputFormat
        }
        # The last full who reply per format, and the stamp it was made at (rules/basics.py).
        self._who_cache: dict[p.OutputFormat, tuple[tuple[int, ...], Any]] = {}

    # --- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """Everyone in it, on this node or another."""
        return len(self._users)

    def user_ids(self) -> list[str]:
        return list(self._users)

    def has(self, user_id: str) -> bool:
        return user_id in self._users

    def formats_in_use(self) -> list[p.OutputFormat]:
        return [fmt for fmt, subscribers in self._subscribers.items() if subscribers]

    def is_subscribed(self, conn: ConnId, fmt: p.OutputFormat) -> bool:
        return conn in self._subscribers[fmt]

    def subscribers(self) -> int:
        """This node's members receiving its broadcasts."""
        return sum(len(subscribers) for subscribers in self._subscribers.values())

    def cached_who(self, fmt: p.OutputFormat, stamp: tuple[int, ...]) -> Any | None:
        cached = self._who_cache.get(fmt)
        return cached[1] if cached is not None and cached[0] == stamp else None

    @property
    def empty(self) -> bool:
        """Nobody is in it and nobody of this node receives it: it may go (unless listed)."""
        return not self._users and not any(self._subscribers.values())

    # --- changes (RoomState calls these) -------------------------------------------------------

    def keep_who(self, fmt: p.OutputFormat, stamp: tuple[int, ...], reply: Any) -> None:
        self._who_cache[fmt] = (stamp, reply)

    def enter(self, user_id: str, seq: int) -> None:
        self.seq = seq
        self._users[user_id] = None

    def leave(self, user_id: str, seq: int) -> None:
        self.seq = seq
        self._users.pop(user_id, None)

    def said(self, event: p.Message | p.Action) -> None:
        self.seq = event.seq
        self.history.append(event)

    def sequenced(self, seq: int) -> None:
        """An event that changes nothing here but its seq (a rename) was applied."""
        self.seq = seq

    def subscribe(self, member: Member) -> None:
        self._subscribers[member.format][member.conn] = member

    def unsubscribe(self, conn: ConnId) -> None:
        for subscribers in self._subscribers.values():
            subscribers.pop(conn, None)

    def replace_users(
        self,
        user_ids: list[str],
        seq: int,
        history: list[p.Message | p.Action] | None = None,
        kept_from: int = 0,
        same: bool = False,
    ) -> None:
        """A ledger's view of who is in it (a shared room's sync), and of its ``history``
        (every message after ``kept_from``; ``same``: in the epoch it had: history.py)."""
        if history is not None:
            self.history.resync(history, kept_from, self.seq, same)
        self._users = dict.fromkeys(user_ids)
        self.seq = seq


class Rooms:
    """Every room of the server by key; the default room and the listed ones always exist,
    the others while someone is in them. Changed only by
    :class:`~chatroom.server.core.state.RoomState` (its ``rooms``)."""

    __slots__ = ("_channels", "_gone", "_keep", "default", "get")

    def __init__(self, default: str, keep: int, listed: Iterable[str] = ()) -> None:
        self.default = default
        self._keep = keep
        self._channels = {key: Channel(key, keep, listed=True) for key in (default, *listed)}
        # get(key) -> the room or None: the dict's own method, on every line's path
        self.get: Callable[[str], Channel | None] = self._channels.get
        # Rooms gone since the last changed_histories() whose lines a state file may hold
        # (only a reported history's: without --state none is, so it stays empty). At most
        # the rooms there were at that call: each must have been there, with its history.
        self._gone: dict[str, None] = {}

    @property
    def main(self) -> Channel:
        """The default room (it always exists)."""
        return self._channels[self.default]

    def all(self) -> list[Channel]:
        return list(self._channels.values())

    def __len__(self) -> int:
        return len(self._channels)

    def formats_in_use(self, key: str) -> list[p.OutputFormat]:
        channel = self._channels.get(key)
        return channel.formats_in_use() if channel is not None else []

    def changed_histories(self) -> list[tuple[str, tuple[p.Message | p.Action, ...]]]:
        """The rooms whose history has lines a state file does not have yet, with their
        history; from now on it is taken to have them (the caller hands them over). First
        the rooms gone since the last call, each with an empty history (its lines go; a
        room made again under its name since then follows with its new history)."""
        gone: list[tuple[str, tuple[p.Message | p.Action, ...]]] = [(k, ()) for k in self._gone]
        self._gone = {}
        changed = [
            (c.key, c.history.events) for c in self._channels.values() if c.history.changed()
        ]
        return gone + changed

    def open(self, key: str) -> Channel:
        """The room ``key``, made if it does not exist yet."""
        channel = self._channels.get(key)
        if channel is None:
            channel = self._channels[key] = Channel(key, self._keep)
        return channel

    def synced(
        self,
        rooms: Iterable[tuple[str, int, Iterable[p.Message | p.Action], int]],
        users: dict[str, set[str]],
        same: bool = False,
    ) -> None:
        """A ledger's view: ``(room, seq, recent chat, kept_from)`` of each room in use (the
        chat is every message after ``kept_from``), and the rooms of each user by id; ``same``:
        in the epoch the rooms had. A room it does not list has nobody in it."""
        synced = set()
        for key, seq, history, kept_from in rooms:
            synced.add(key)
            channel = self.open(key)
            ids = [uid for uid, keys in users.items() if key in keys]
            channel.replace_users(ids, seq, list(history), kept_from, same)
        for channel in self.all():
            if channel.key not in synced:
                channel.replace_users([], channel.seq)
                self.drop_if_empty(channel.key)
        for uid, keys in users.items():  # in a room the ledger did not list (a race)
            for key in keys - synced:
                channel = self.open(key)
                channel.enter(uid, channel.seq)

    def drop_if_empty(self, key: str) -> None:
        """A room nobody is in goes, with its history, unless it is listed."""
        channel = self._channels.get(key)
        if channel is not None and not channel.listed and channel.empty:
            del self._channels[key]
            if channel.history.reported:
                self._gone[key] = None
