"""The conversations the log shows: the room and one buffer per private conversation.
No Textual.

A :class:`LogBuffer` keeps one conversation's lines, at most ``limit`` of them (the
``--scrollback``): a new line past the limit pushes the oldest out, so memory is bounded by
the scrollback whatever the room sends. Lines are numbered from the buffer's start (the
number of the first kept line is :attr:`LogBuffer.first`), so a position — the read marker,
a search hit, a mention — stays meaningful while old lines go.

The buffer also keeps, beside each line, the screen rows the log widget made of it at some
width (``rows``, aligned from the left: ``rows[i]`` belongs to ``lines[i]`` for every ``i``
below ``len(rows)``). The widget wraps only the lines that have no rows yet; a buffer that is
not on screen keeps adding lines without wrapping any.

:class:`Buffers` holds the rooms' buffers (one per room joined, :class:`RoomRef`) and the
private ones (at most :data:`MAX_PRIVATE` of them: the least recently active goes when one
more is needed), which one is shown, and what the rooms panel says about the others
(unread lines, a mention). Rooms come first in the panel, in the order they were joined,
then the private conversations. A line for "the room" without a name (``None``: the
client's own lines, a server without rooms) goes to the room shown last.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chatroom.client.render import LogLine
from chatroom.protocol import name_key
from chatroom.protocol.room_names import shown_room


@dataclass(frozen=True, slots=True)
class RoomRef:
    """A room's conversation, by the room's key (``dev``; shown ``#dev``)."""

    key: str

    @property
    def title(self) -> str:
        return shown_room(self.key)


# Where a line goes: a room's conversation, a private one (the peer's name), or None: the
# room shown last (the client's own lines; the one room of a server without rooms).
Conversation = RoomRef | str | None

ROOM = ""  # the unnamed room's buffer key (before a welcome names it; a server without rooms)
MAX_PRIVATE = 20  # private buffers kept at once


class LogBuffer:
    def __init__(self, key: str | RoomRef, title: str, limit: int) -> None:
        self.key = key  # ROOM, a RoomRef, or a private peer's name_key
        self.title = title  # the room (#dev), or the peer's name as last seen
        self.limit = limit
        self.lines: deque[LogLine] = deque()
        self.rows: deque[Any] = deque()  # the widget's wrapped rows of each line
        self.rows_width = 0  # the width ``rows`` were made for
        self.first = 0  # the number of lines[0]
        self.marker: int | None = None  # the read marker: before the line with this number
        self.unread = 0  # lines added while another buffer was shown
        self.mentioned = False  # one of them mentions us (or it is a private message)
        self.activity = 0  # when the buffer last got a line (Buffers' counter)

    @property
    def is_room(self) -> bool:
        return not isinstance(self.key, str) or self.key == ROOM

    @property
    def conversation(self) -> Conversation:
        """What lines for this buffer name: its room, its peer, or None (the unnamed room)."""
        if isinstance(self.key, RoomRef):
            return self.key
        return None if self.key == ROOM else self.title

    @property
    def end(self) -> int:
        """The number the next line will get."""
        return self.first + len(self.lines)

    def add(self, line: LogLine) -> None:
        self.lines.append(line)
        while len(self.lines) > self.limit:
            self.lines.popleft()
            if self.rows:
                self.rows.popleft()
            self.first += 1

    def clear(self) -> None:
        """``/clear``: no line kept (numbers go on from where they were)."""
        self.first = self.end
        self.lines.clear()
        self.rows.clear()
        self.marker = None

    def line(self, number: int) -> LogLine | None:
        index = number - self.first
        return self.lines[index] if 0 <= index < len(self.lines) else None

    def mark_read(self) -> None:
        """The reader leaves this buffer (or the terminal): the marker goes at the end."""
        self.marker = self.end

    @property
    def marker_shown(self) -> int | None:
        """Where the read-marker row is drawn: before a kept line, with lines above it."""
        marker = self.marker
        if marker is None or not self.first < marker < self.end:
            return None
        return marker

    def search(self, text: str, start: int, *, older: bool) -> int | None:
        """The number of the nearest line containing ``text`` (case-insensitive) from
        ``start`` on (``start`` included), going to older lines or to newer ones."""
        needle = name_key(text)
        if not needle:
            return None
        numbers = range(start, self.first - 1, -1) if older else range(start, self.end)
        for number in numbers:
            line = self.line(number)
            if line is not None and needle in name_key(line.text.plain):
                return number
        return None

    def next_mention(self, after: int) -> int | None:
        """The number of the first line after ``after`` that mentions us, else the first
        one from the top (None: no line kept mentions us)."""
        found = [n for n, line in enumerate(self.lines, self.first) if line.mentions_me]
        later = [n for n in found if n > after]
        return (later or found or [None])[0]


class Buffers:
    def __init__(self, room_title: str, limit: int) -> None:
        self.limit = limit
        self._buffers: dict[str | RoomRef, LogBuffer] = {ROOM: LogBuffer(ROOM, room_title, limit)}
        self.active = self._buffers[ROOM]
        self._last_room = self.active  # where lines for None go
        self._clock = 0

    def _ordered(self) -> list[LogBuffer]:
        """The rooms in the order joined, then the private conversations."""
        buffers = list(self._buffers.values())
        return [b for b in buffers if b.is_room] + [b for b in buffers if not b.is_room]

    def __iter__(self) -> Iterator[LogBuffer]:
        return iter(self._ordered())

    def __len__(self) -> int:
        return len(self._buffers)

    @property
    def room(self) -> LogBuffer:
        """The room shown last (what lines for None go to)."""
        return self._last_room

    def get(self, conversation: Conversation) -> LogBuffer:
        """The buffer for a conversation (None: the room shown last; a :class:`RoomRef`:
        that room's; else the peer's name), made if needed."""
        if conversation is None:
            return self.room
        if isinstance(conversation, RoomRef):
            buffer = self._buffers.get(conversation)
            if buffer is None:
                buffer = self._buffers[conversation] = LogBuffer(
                    conversation, conversation.title, self.limit
                )
            return buffer
        key = name_key(conversation)
        buffer = self._buffers.get(key)
        if buffer is None:
            self._make_room_for_one()
            buffer = self._buffers[key] = LogBuffer(key, conversation, self.limit)
        buffer.title = conversation
        return buffer

    def name_room(self, room: RoomRef) -> None:
        """The server named the unnamed room (its welcome): its buffer becomes ``room``'s,
        in the same place, lines kept (unless ``room`` has a buffer already)."""
        unnamed = self._buffers.get(ROOM)
        if unnamed is None or room in self._buffers:
            return
        unnamed.key, unnamed.title = room, room.title
        self._buffers = {(room if k == ROOM else k): b for k, b in self._buffers.items()}

    def _make_room_for_one(self) -> None:
        private = [b for b in self._buffers.values() if not b.is_room and b is not self.active]
        if len(self._buffers) - self._rooms() >= MAX_PRIVATE and private:
            oldest = min(private, key=lambda b: b.activity)
            del self._buffers[oldest.key]

    def _rooms(self) -> int:
        return sum(1 for b in self._buffers.values() if b.is_room)

    def add(self, conversation: Conversation, line: LogLine) -> LogBuffer:
        """Add ``line`` to its conversation's buffer; return the buffer."""
        buffer = self.get(conversation)
        buffer.add(line)
        self._clock += 1
        buffer.activity = self._clock
        if buffer is not self.active:
            buffer.unread += 1
            buffer.mentioned |= line.mentions_me or not buffer.is_room
        return buffer

    def show(self, buffer: LogBuffer) -> bool:
        """Make ``buffer`` the one shown; False if it already was."""
        if buffer is self.active:
            return False
        self.active.mark_read()
        self.active = buffer
        if buffer.is_room:
            self._last_room = buffer
        buffer.unread = 0
        buffer.mentioned = False
        return True

    def by_position(self, position: int) -> LogBuffer | None:
        """The buffer at ``position`` (0: the first room), as the panel lists them."""
        buffers = self._ordered()
        return buffers[position] if 0 <= position < len(buffers) else None

    def beside(self, step: int) -> LogBuffer:
        """The buffer ``step`` places from the active one (wrapping around)."""
        buffers = self._ordered()
        return buffers[(buffers.index(self.active) + step) % len(buffers)]

    def find(self, conversation: Conversation) -> LogBuffer | None:
        """The buffer of a conversation, if there is one (None: the room shown last)."""
        if conversation is None:
            return self.room
        key = conversation if isinstance(conversation, RoomRef) else name_key(conversation)
        return self._buffers.get(key)

    def close(self, buffer: LogBuffer) -> bool:
        """Close a buffer; False if it cannot be: the last room's stays."""
        if buffer.key not in self._buffers or (buffer.is_room and self._rooms() == 1):
            return False
        del self._buffers[buffer.key]
        if buffer is self._last_room:
            self._last_room = next(b for b in self._buffers.values() if b.is_room)
        if buffer is self.active:
            self.active = self._last_room
            self._last_room.unread = 0
            self._last_room.mentioned = False
        return True

    def invalidate_rows(self) -> None:
        """The width changed: every buffer's rows are to be made again."""
        for buffer in self._buffers.values():
            buffer.rows.clear()
