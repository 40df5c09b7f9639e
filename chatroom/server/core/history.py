"""The chat a room keeps: its last ``keep`` messages and actions, and what they cover. No I/O.

One bounded deque (``keep``, the ``--keep`` flag) serves both what a newcomer is replayed
(its tail: ``--history`` of them) and what ``/history`` can reach. Kept per room
(:class:`~chatroom.server.core.state.RoomState` holds one), so rooms, when they come,
each keep their own.

Whether a ``/history since SEQ`` answer is whole is known here, from two marks:

- *known*: every message after this seq is here (0: every message of the epoch), until
  the deque fills — then only what follows the seq before its first message is known to
  be whole (what it dropped may have been the message just before it);
- a *hole*: messages after ``lo`` up to ``hi`` may be missing although the ones around it
  are here — the seqs a server killed (``kill -9``) gave out after its state file's last
  flush (its restart goes on above its seq lease: docs/BOTS.md), or those a shared room's
  node missed while the stream was trimmed past them. An answer stops at the hole (``more``)
  and the next one starts with a ``history_gap`` notice for it (:meth:`ChatHistory.gap`).

It *is* the bounded deque (a subclass with slots): adding a line costs what the deque's
own ``append`` costs, as before it kept more than the replay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from itertools import islice

from chatroom import protocol as p

Chat = p.Message | p.Action
Hole = tuple[int, int]  # messages after the first seq up to the second may be missing


class ChatHistory(deque):  # type: ignore[type-arg]
    __slots__ = ("_hole", "_kept_seq", "_known")

    def __init__(self, keep: int) -> None:
        super().__init__(maxlen=max(keep, 0))  # append(): a message or action was said
        self._known = 0  # every message after this seq is here (until the deque filled)
        self._hole: Hole | None = None
        self._kept_seq = 0  # the last seq of the history a state file has (--state)

    @property
    def events(self) -> tuple[Chat, ...]:
        return tuple(self)

    @property
    def hole(self) -> Hole | None:
        return self._hole

    @property
    def last_seq(self) -> int:
        return self[-1].seq if self else 0

    def last(self, count: int) -> list[Chat]:
        """The newest ``count`` messages, oldest first."""
        return list(islice(self, max(0, len(self) - count), None)) if count > 0 else []

    def after(self, seq: int, limit: int) -> tuple[list[Chat], bool]:
        """The first ``limit`` messages after ``seq``, oldest first, and whether more follow
        (or a hole does: the answer stops before it, and asking again tells of it)."""
        newer: list[Chat] = []
        for event in reversed(self):
            if event.seq <= seq:
                break
            newer.append(event)
        newer.reverse()
        hole = self._hole
        if hole is not None and seq < hole[0]:
            before = [event for event in newer if event.seq <= hole[0]]
            if before:
                return before[:limit], True
        return newer[:limit], len(newer) > limit

    def gap(self, seq: int, room_seq: int) -> int | None:
        """If messages after ``seq`` may be gone (no longer kept, or never read here): the
        seq after which everything is kept (up to a hole further on, which the answer stops
        at); None when nothing right after ``seq`` is missing."""
        known = self._known
        if len(self) >= (self.maxlen or 0):  # full: what it dropped is gone
            known = max(known, self[0].seq - 1 if self else room_seq)
        if seq < known:
            return known
        hole = self._hole
        if hole is None or seq >= hole[1]:
            return None
        # In it, or before it with no message kept between.
        before = seq < hole[0] and any(seq < event.seq <= hole[0] for event in self)
        return None if before else hole[1]

    def restore(self, events: Iterable[Chat], *, known: int, hole: Hole | None = None) -> None:
        """What a state file kept (oldest first): the file has these. ``known``: every
        message after it is among them; ``hole``: after a crash, the seqs it may have lost."""
        self.extend(events)
        self._known = known
        self._hole = hole if hole is not None and hole[0] < hole[1] else None
        self._kept_seq = self.last_seq

    def resync(self, events: list[Chat], kept_from: int, applied: int, same: bool) -> None:
        """A shared room's view after a (re)sync: the stream's ``events``, every message
        after ``kept_from`` (fewer if ``keep`` of them were read). In the same epoch
        (``same``) this node keeps what it applied (up to seq ``applied``) before them; if
        the stream was trimmed past that, the seqs between are a hole."""
        if not same or not applied:
            self.clear()
            self.extend(events)
            self._known, self._hole = kept_from, None
            return
        first = events[0].seq if events else applied + 1
        mine = [event for event in self if event.seq < first]
        known, hole = self._known, self._hole
        if applied < kept_from:  # the node missed what was trimmed
            if hole is not None:  # one hole is told: what came before the older one goes
                mine = [event for event in mine if event.seq > hole[1]]
                known = max(known, hole[1])
            hole = (applied, kept_from)
        self.clear()
        self.extend(mine)
        self.extend(events)
        self._known, self._hole = known, hole

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
