"""The request ids a room remembers: a program's retry is acked, not said twice. No I/O.

In JSON mode a line ``{"id": ID, "text": LINE}`` is a request (rules/programs.py). A chat
line or ``/me`` sent as one is remembered by its sender's name (its key, as names are
compared) and id, with the seq it got, for ``ttl`` seconds and ``size`` of them at most
(the oldest forgotten first): the same id from the same name again — a program that did
not see its ack before its connection dropped — is acked with that seq and not said again.
With ``--redis`` the append script keeps them in Redis too (bounded as here), so a retry
on another node is caught there; with ``--state`` the file gets the ones remembered since
its last flush with each flush (:meth:`Requests.fresh`), in the same transaction as the
history: an id is in the file whenever its line is, even after a ``kill -9``.

A request whose line is not sequenced yet (a shared room's ledger has it) is *pending*,
by its event, until the room applies the event (ack it), the ledger refuses it (an error
with its id) or says it is a repeat (ack the original seq). A retry meanwhile moves the
pending ack to the connection that retried. Pending requests are bounded as the table is.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any

from chatroom import protocol as p
from chatroom.server.core.actions import ConnId

RequestId = str | int
Key = tuple[str, RequestId]  # (the sender's name key, the request id)
EventKey = tuple[str, float, str]  # a chat event's sender id, ts and text: its seq aside


def event_key(event: p.Message | p.Action) -> EventKey:
    return (event.id, event.ts, event.text)


class Requests:
    def __init__(self, ttl: float, size: int, *, saved: bool = False) -> None:
        self.ttl = ttl
        self.size = max(1, size)
        self._seen: OrderedDict[Key, tuple[int, float]] = OrderedDict()  # -> (seq, when)
        # Remembered since the state file's last flush (bounded: a table's worth), if there
        # is a state file (``saved``).
        self._fresh: deque[list[Any]] | None = deque(maxlen=self.size) if saved else None
        # Requests whose line waits for its seq: by event, and the same by key.
        self.pending: dict[EventKey, tuple[ConnId, Key]] = {}
        self._pending_keys: dict[Key, EventKey] = {}

    def __len__(self) -> int:
        return len(self._seen)

    # --- remembered ids

    def seen(self, key: Key, now: float) -> int | None:
        """The seq ``key``'s line got, if it is remembered."""
        self._expire(now)
        found = self._seen.get(key)
        return found[0] if found is not None else None

    def remember(self, key: Key, seq: int, now: float) -> None:
        self._seen[key] = (seq, now)
        if self._fresh is not None:
            self._fresh.append([key[0], key[1], seq, now])
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            key, (_seq, when) = next(iter(seen.items()))
            if when + self.ttl > now:
                return
            del seen[key]

    # --- requests waiting for their seq

    def expect(self, event: p.Message | p.Action, conn: ConnId, key: Key) -> None:
        """``event`` is ``key``'s line, from ``conn``: ack it once it has its seq."""
        ekey = event_key(event)
        self.pending[ekey] = (conn, key)
        self._pending_keys[key] = ekey
        while len(self.pending) > self.size:
            old = next(iter(self.pending))
            self._pending_keys.pop(self.pending.pop(old)[1], None)

    def waiting(self, key: Key, conn: ConnId) -> bool:
        """Whether ``key``'s line waits for its seq; its ack then goes to ``conn``."""
        ekey = self._pending_keys.get(key)
        if ekey is None:
            return False
        self.pending[ekey] = (conn, key)
        return True

    def settle(self, event: p.Message | p.Action) -> tuple[ConnId, Key] | None:
        """``event`` got its seq, or was refused: the request it answers, if any."""
        found = self.pending.pop(event_key(event), None)
        if found is not None:
            self._pending_keys.pop(found[1], None)
        return found

    # --- across a clean restart (--state)

    def kept(self, now: float) -> list[list[Any]]:
        """What the state file keeps: ``[name key, id, seq, when]`` of each remembered."""
        self._expire(now)
        return [[key[0], key[1], seq, when] for key, (seq, when) in self._seen.items()]

    def fresh(self) -> list[list[Any]]:
        """``[name key, id, seq, when]`` of each remembered since the last call."""
        if not self._fresh:
            return []
        entries = list(self._fresh)
        self._fresh.clear()
        return entries

    def restore(self, entries: list[list[Any]]) -> None:
        for name_key, rid, seq, when in entries:
            self.remember((name_key, rid), seq, when)
        if self._fresh is not None:
            self._fresh.clear()  # the file has them
