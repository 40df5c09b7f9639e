"""How the room puts its events in one order: the strategy a room is made with. No I/O.

Every broadcast event — message, action, join, leave, rename — is first *appended*, then
*applied* (:mod:`chatroom.server.core.rules.sequencing`). Where one server holds the whole
room, :class:`LocalSequencer` gives it the next seq and it is applied at once. In a room
shared by several servers, :class:`LedgerSequencer` has it appended to the shared ledger
(an :class:`~chatroom.server.core.actions.Append` action, seq 0): every node applies it
when the ledger hands it back, in the ledger's order, so all of them agree on one order.

What follows from waiting for the ledger is kept here, as the sequencer's own state: a
newcomer's lines wait for its join to come back (``held_lines`` at most), a member's lines
wait for its rename, and a member whose join the ledger could not take (unavailable) joins
when it is back.
"""

from __future__ import annotations

import zlib
from typing import Protocol

from chatroom import protocol as p
from chatroom.server.core.actions import Append, ConnId, RoomAction
from chatroom.server.core.codec import LineTooLong

Line = str | LineTooLong


class Sequencer(Protocol):
    def next_seq(self, last: int) -> int:
        """The seq for an event about to be appended, after ``last``, the room's last."""

    def sequence(self, event: p.BroadcastEvent, conn: ConnId | None) -> list[RoomAction] | None:
        """Append ``event`` (from ``conn``'s line, if any): None if it is sequenced now and
        must be applied at once, else the actions that carry it to where it is sequenced."""

    def short(self) -> bool:
        """Whether no more lines or newcomers can be taken now (a state file's seq lease
        is used up; see :class:`LocalSequencer`)."""

    def waits(self, conn: ConnId) -> bool:
        """Whether ``conn``'s lines wait (for its join or its rename to be sequenced)."""

    def rename_pending(self, conn: ConnId) -> bool:
        """Whether ``conn`` has a rename that is not sequenced yet."""

    def applied(self, event: p.BroadcastEvent, conn: ConnId) -> list[Line]:
        """``event`` of this node's member ``conn`` was applied: the lines that waited for
        it, now to be handled in order."""

    def forget(self, conn: ConnId) -> None:
        """``conn`` left."""

    def everyone_left(self) -> None:
        """Everyone left (the server stops)."""


class LocalSequencer:
    """One server holds the whole room: an event takes the next seq and is applied at once.

    With a state file (``--state``) it numbers within a *lease*, the hi/lo pattern: the
    file holds a seq no event has passed (``lease``), so a server killed at any moment
    restarts above every seq it gave and goes on in the same epoch. A longer lease is
    asked for (:meth:`lease_due`, a ``block`` more) once half of one is used, and taken
    when the file has it (:meth:`grant`). A line or a newcomer is refused while the lease
    is :meth:`short`: what is left then still covers every connection's leave, quiet join
    and rename from a password check (three events each, for as many connections as
    ``--max-clients`` allows) — events no one can refuse.
    """

    RESERVE = 16  # seqs left over besides the connections' three each

    def __init__(
        self, lease: int | None = None, block: int = 1_000_000, clients: int = 0, given: int = 0
    ) -> None:
        self.lease = lease  # the highest seq the state file allows (None: no file, no bound)
        # The highest seq of any room (each numbers its own) when last told (:meth:`refresh`),
        # and the lines taken since: each adds at most one event to a room.
        self.top = given
        self.lines = 0
        self.block = max(1, block)
        # What is kept for the events no one can refuse: three for each connection there
        # can be (--max-clients), and RESERVE. Lines are taken up to ``limit``.
        self.kept_back = 3 * max(0, clients) + self.RESERVE
        self.limit = lease - self.kept_back if lease is not None else 0
        self._asked = 0  # the longest lease asked for (granted or not)

    def next_seq(self, last: int) -> int:
        return last + 1

    def short(self) -> bool:
        """Whether the lease is too short for another line or newcomer: a line adds at most
        one event to each room, and what is kept back covers the rest in any room."""
        return self.lease is not None and self.top + self.lines >= self.limit

    def take_line(self) -> bool:
        """A line is to be handled: False if the lease is too short for it."""
        if self.top + self.lines >= self.limit:
            return False
        self.lines += 1
        return True

    def refresh(self, top: int) -> None:
        """The highest seq of any room now (the room tells it at each state flush)."""
        self.top, self.lines = top, 0

    def lease_due(self) -> int | None:
        """A longer lease for the state file, if half of the last is used and none longer
        than it is asked for already."""
        if self.lease is None or self._asked > self.lease:
            return None
        top = self.top + self.lines
        if self.limit - top >= self.block // 2:
            return None
        self._asked = top + self.kept_back + self.block
        return self._asked

    def grant(self, lease: int) -> None:
        """The state file has ``lease``: seqs up to it may be given."""
        if self.lease is not None:
            self.lease = max(self.lease, lease)
            self.limit = self.lease - self.kept_back
            self._asked = max(self._asked, self.lease)

    def sequence(self, event: p.BroadcastEvent, conn: ConnId | None) -> list[RoomAction] | None:
        return None

    def waits(self, conn: ConnId) -> bool:
        return False

    def rename_pending(self, conn: ConnId) -> bool:
        return False

    def applied(self, event: p.BroadcastEvent, conn: ConnId) -> list[Line]:
        return []

    def forget(self, conn: ConnId) -> None:
        pass

    def everyone_left(self) -> None:
        pass


class LedgerSequencer:
    """A room shared through a ledger (Redis): the ledger decides the seq and the order."""

    def __init__(self, node: str, held_lines: int) -> None:
        self.held_lines = held_lines
        # Added to a user id that another node's user holds already: unique to this node.
        self.tag = f"n{zlib.crc32(node.encode()):08x}"
        # Members whose join or rename the ledger has not sequenced yet, with their lines.
        self._waiting: dict[ConnId, list[Line]] = {}
        self._renaming: set[ConnId] = set()  # members whose rename is with the ledger
        # Members whose join the ledger could not take (unavailable): they join on resync.
        self._unjoined: set[ConnId] = set()

    def next_seq(self, last: int) -> int:
        return 0  # the ledger decides

    def short(self) -> bool:
        return False

    def sequence(self, event: p.BroadcastEvent, conn: ConnId | None) -> list[RoomAction] | None:
        if conn is not None and isinstance(event, p.Join):
            self._waiting[conn] = []  # its lines wait for the join to come back
        elif conn is not None and isinstance(event, p.Rename):
            # Its next lines wait for the rename to come back, as a newcomer's wait for its
            # join: a line sent right after /nick then carries the new name, as on one
            # server, not the old one the ledger would sequence after the rename.
            self._renaming.add(conn)
            self._waiting.setdefault(conn, [])
        return [Append(event, conn)]

    def waits(self, conn: ConnId) -> bool:
        return conn in self._waiting

    def rename_pending(self, conn: ConnId) -> bool:
        return conn in self._renaming

    def applied(self, event: p.BroadcastEvent, conn: ConnId) -> list[Line]:
        if isinstance(event, p.Join):
            self._unjoined.discard(conn)
            return self._waiting.pop(conn, [])
        if isinstance(event, p.Rename):
            self._renaming.discard(conn)
            return self._waiting.pop(conn, [])
        return []

    def forget(self, conn: ConnId) -> None:
        self._waiting.pop(conn, None)
        self._renaming.discard(conn)
        self._unjoined.discard(conn)

    def everyone_left(self) -> None:
        self._waiting.clear()
        self._renaming.clear()
        self._unjoined.clear()

    # --- what the shared room's rules ask of it (rules/shared.py) ---------------------------

    def unjoined(self, conn: ConnId) -> bool:
        """Whether ``conn``'s join could not be taken (the ledger is unavailable)."""
        return conn in self._unjoined

    def hold(self, conn: ConnId, line: Line) -> bool:
        """Keep ``line`` until ``conn``'s join or rename comes back; False if it cannot
        wait (the ledger is unavailable, or ``held_lines`` wait already)."""
        waiting = self._waiting.get(conn)
        if waiting is None or conn in self._unjoined or len(waiting) >= self.held_lines:
            return False
        waiting.append(line)
        return True

    def hold_format(self, conn: ConnId, line: Line, is_format: object) -> None:
        """Keep ``line``, a choice of format, in place of any other waiting
        (``is_format(line)`` tells them): only the last choice matters."""
        waiting = self._waiting.setdefault(conn, [])
        waiting[:] = [w for w in waiting if not is_format(w)]
        waiting.append(line)

    def join_failed(self, conn: ConnId) -> None:
        """The ledger could not take ``conn``'s join: it joins on resync."""
        self._unjoined.add(conn)

    def rename_refused(self, conn: ConnId) -> list[Line]:
        """The ledger refused ``conn``'s rename: the lines that waited for it."""
        self._renaming.discard(conn)
        return self._waiting.pop(conn, [])
