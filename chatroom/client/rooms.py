"""The rooms this client is in, each with what the client knows of it. No Textual.

A server holds many rooms (docs/PROTOCOL.md, "Rooms"); a JSON client may be in several at
once. :class:`Rooms` keeps one :class:`JoinedRoom` per room the client is in, in the order
they were joined: its :class:`~chatroom.client.roster.Roster` (who is in it), its
:class:`~chatroom.client.timeline.Timeline` (its own ``seq``: dividers, missed events,
resume after a reconnect) and its topic. Which room the user list and the header follow
is :attr:`Rooms.shown` (the room shown last: a private conversation shown keeps it).

A connection starts in the server's default room (the welcome's ``room``); ``/join`` adds
a room, whose greeting (``room``) makes it a joined room here; our own ``leave`` with the
reason ``part`` (or ``kicked``) in it ends it. Rooms are kept across a reconnect, so the
client can join them again and resume each from its last ``seq``.

A server that predates rooms sends no ``room`` on its welcome: then there is one room,
:data:`UNNAMED`, and nothing is sent as a request naming a room (:attr:`Rooms.named`).
"""

from __future__ import annotations

from collections.abc import Iterator

from chatroom.client.log_buffer import RoomRef
from chatroom.client.roster import Roster
from chatroom.client.timeline import REMEMBERED, Timeline
from chatroom.protocol import (
    Action,
    Event,
    Join,
    Leave,
    Message,
    Notice,
    NoticeCode,
    Rename,
    RoomEntered,
    Topic,
    UnknownEvent,
    Welcome,
    Who,
)
from chatroom.protocol.room_names import room_key, shown_room

UNNAMED = ""  # the one room of a server without rooms (and the room before a welcome)
MAX_ROOMS = 64  # rooms kept at once (the server's own cap is 20 a connection)

# The events that happen in a room (a notice only when it says which).
_ROOM_EVENTS = (Welcome, RoomEntered, Message, Action, Join, Leave, Rename, Who, Topic)
_ROOM_NOTICES = (NoticeCode.HISTORY, NoticeCode.HISTORY_GAP, NoticeCode.RESET)


class JoinedRoom:
    __slots__ = ("key", "roster", "timeline", "topic", "quiet_who")

    def __init__(self, key: str, remember: int, epoch: str | None) -> None:
        self.key = key
        self.roster = Roster()
        self.timeline = Timeline(remember, epoch=epoch)
        self.topic: str | None = None
        self.quiet_who = 0  # /who sent by the client in this room, unanswered

    @property
    def title(self) -> str:
        return shown_room(self.key) if self.key else "room"


class Rooms:
    def __init__(self, remember: int = REMEMBERED) -> None:
        self._remember = remember
        self._joined: dict[str, JoinedRoom] = {UNNAMED: JoinedRoom(UNNAMED, remember, None)}
        self.home = UNNAMED  # the server's default room (the welcome's)
        self.shown = UNNAMED  # the room the user list and header follow
        self.named = False  # the server has rooms: lines go as requests naming theirs
        self.epoch: str | None = None  # the last welcome's (a room's seq counts in it)
        self.wanted: str | None = None  # a /join the user typed: shown once greeted

    def __iter__(self) -> Iterator[JoinedRoom]:
        return iter(list(self._joined.values()))

    def __len__(self) -> int:
        return len(self._joined)

    def __contains__(self, key: object) -> bool:
        return key in self._joined

    def get(self, key: str) -> JoinedRoom | None:
        return self._joined.get(key)

    @property
    def shown_room(self) -> JoinedRoom:
        return self._joined.get(self.shown) or next(iter(self._joined.values()))

    def key_of(self, event: Event | UnknownEvent) -> str | None:
        """The room ``event`` happened in (None: it is not a room's: a private message,
        an error, a notice that names no room)."""
        if isinstance(event, Notice):
            if event.room is None and event.code not in _ROOM_NOTICES:
                return None
        elif not isinstance(event, _ROOM_EVENTS):
            return None
        room = getattr(event, "room", None)
        return room if room is not None and self.named else self.home

    def conversation(self, room: JoinedRoom) -> RoomRef | None:
        """Where the room's lines go in the log (None: the one room of a server without
        rooms)."""
        return RoomRef(room.key) if self.named else None

    def welcome(self, event: Welcome) -> JoinedRoom:
        """A new connection: it is in the default room (only), which the welcome names."""
        self.named = event.room is not None
        self.epoch = event.epoch
        home = event.room if event.room is not None else UNNAMED
        if self.named and UNNAMED in self._joined:
            del self._joined[UNNAMED]  # the room before the first welcome: it has a name now
        if self.shown not in self._joined or self.shown == self.home:
            self.shown = home
        self.home = home
        return self.enter(home)

    def enter(self, key: str) -> JoinedRoom:
        """The client is in the room ``key`` (greeted), with what it knew of it kept."""
        room = self._joined.get(key)
        if room is None:
            room = self._joined[key] = JoinedRoom(key, self._remember, self.epoch)
        if self.shown not in self._joined:
            self.shown = key
        return room

    def can_enter(self, key: str) -> bool:
        return key in self._joined or len(self._joined) < MAX_ROOMS

    def leave(self, key: str) -> None:
        """The client left the room ``key`` (parted, or kicked out of it)."""
        self._joined.pop(key, None)
        if self.wanted == key:
            self.wanted = None
        if self.shown == key and self._joined:
            self.shown = next(iter(self._joined))

    def to_rejoin(self) -> list[str]:
        """After a welcome: the rooms the client was in besides the default one."""
        return [key for key in self._joined if key not in (self.home, UNNAMED)]


def parse_room(text: str) -> str | None:
    """The room a typed ``/join ROOM`` or ``/part ROOM`` names (its key), or None."""
    return room_key(text.strip()) if text.strip() and " " not in text.strip() else None
