"""The chat a room keeps: its last ``keep`` messages and actions, and what they cover. No I/O.

One bounded deque (``keep``, the ``--keep`` flag) serves both what a newcomer is replayed
(its tail: ``--history`` of them) and what ``/history`` can reach. Kept per room
(:class:`~chatroom.server.core.state.RoomState` holds one), so rooms, when they come,
each keep their own.

Whether a ``/history since SEQ`` answer is whole is known here: the history is *complete*
while it holds every message of its epoch (a new room, until the deque is full; a restored
or re-synced one when the file or the stream held fewer than ``keep``, from their first).
Otherwise what is kept starts after the seq before its first message, and an older SEQ is
told that messages are missing (:meth:`ChatHistory.gap`).

It *is* the bounded deque (a subclass with slots): adding a line costs what the deque's
own ``append`` costs, as before it kept more than the replay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from chatroom import protocol as p

Chat = p.Message | p.Action


class ChatHistory(deque):  # type: ignore[type-arg]
    __slots__ = ("_complete", "_kept_seq")

    def __init__(self, keep: int) -> None:
        super().__init__(maxlen=max(keep, 0))  # append(): a message or action was said
        self._complete = True  # every message of the epoch is here, unless the deque filled
        self._kept_seq = 0  # the last seq of the history a state file has (--state)

    @property
    def events(self) -> tuple[Chat, ...]:
        return tuple(self)

    @property
    def last_seq(self) -> int:
        return self[-1].seq if self else 0

    def last(self, count: int) -> list[Chat]:
        """The newest ``count`` messages, oldest first."""
        return list(islice(self, max(0, len(self) - count), None)) if count > 0 else []

    def after(self, seq: int, limit: int) -> tuple[list[Chat], bool]:
        """The first ``limit`` messages after ``seq``, oldest first, and whether more follow."""
        newer: list[Chat] = []
        for event in reversed(self):
            if event.seq <= seq:
                break
            newer.append(event)
        newer.reverse()
        return newer[:limit], len(newer) > limit

    def gap(self, seq: int, room_seq: int) -> int | None:
        """If messages after ``seq`` may be gone (no longer kept, or never read here): the
        seq after which everything is kept; None when nothing after ``seq`` is missing."""
        if self._complete and len(self) < (self.maxlen or 0):
            return None
        known = self[0].seq - 1 if self else room_seq
        return known if seq < known else None

    def restore(self, events: Iterable[Chat], *, complete: bool) -> None:
        """What a state file kept (oldest first): the file has these."""
        self.extend(events)
        self._complete = complete
        self._kept_seq = self.last_seq

    def replace(self, events: Iterable[Chat], *, complete: bool) -> None:
        """A shared room's view after a (re)sync: its ``events`` instead of ours."""
        self.clear()
        self.extend(events)
        self._complete = complete

    @property
    def reported(self) -> bool:
        """Whether a state file may hold lines of it (restored, or handed over once)."""
        return self._kept_seq > 0

    def changed(self) -> bool:
        """Whether it has lines a state file does not have yet; from now on it is taken to
        have them (the caller hands the history over)."""
        last = self.last_seq
        if last == self._kept_seq:
            return False
        self._kept_seq = last
        return True
