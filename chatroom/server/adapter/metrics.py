"""What the server counts for its operators (docs/OPERATIONS.md).

Counting costs the fan-out path nothing measurable: the outbox counts what it hands out
once per format at each flush, the room its messages, and everything else is counted
from the room's reports, which exist anyway. Prometheus reads these only when a scrape
asks (:mod:`~chatroom.server.adapter.ops_http`, imported only with ``--metrics-port``:
prometheus-client costs ~12 MiB of memory to load).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from chatroom.server.core.actions import Left, RoomAction, TurnedAway


class Tally:
    """The room's reports, counted: disconnects by reason, refusals by cause."""

    def __init__(self) -> None:
        self.disconnects: Counter[str] = Counter()
        self.refusals: Counter[str] = Counter()

    def report(self, report: RoomAction) -> None:
        match report:
            case Left():
                self.disconnects[str(report.reason)] += 1
            case TurnedAway():
                self.refusals[report.cause.name.lower()] += 1  # "full", "per_address"...

    def refused(self, cause: str) -> None:
        """A refusal the adapter made itself (a PROXY header, a TLS handshake)."""
        self.refusals[cause] += 1


class LoopLag:
    """How late the event loop runs a callback that asked to run every ``interval``
    seconds: the last lateness and the largest since the last scrape."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self.last = 0.0
        self.worst = 0.0
        self._due = time.monotonic() + interval
        self._handle: asyncio.TimerHandle | None = loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        self.last = max(0.0, now - self._due)
        self.worst = max(self.worst, self.last)
        self._due = now + self._interval
        self._handle = self._loop.call_later(self._interval, self._tick)

    def take_worst(self) -> float:
        worst, self.worst = self.worst, self.last
        return worst

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
