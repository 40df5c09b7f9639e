"""What the server counts for its operators, and how Prometheus reads it.

Counting costs the fan-out path nothing measurable: the hot path only adds to plain
integers the server already has at hand (the outbox's deliveries, the room's seq-ordered
messages), and everything else is counted from the room's reports, which exist anyway.
Prometheus' objects are made only when a scrape asks (:class:`ServerCollector`), on the
event loop, from those integers and from the live connections.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

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


class Measured(Protocol):
    """What the collector reads of the server (ChatServer is one)."""

    room: Any  # len(room), room.messages
    outbox: Any  # outbox.deliveries
    tally: Tally
    loop_lag: LoopLag | None
    cluster: Any  # None, or .up, .append_seconds and .appends

    def queued_bytes(self) -> int: ...


class ServerCollector(Collector):
    """The metrics of one server process (docs/OPERATIONS.md lists them)."""

    def __init__(self, server: Measured) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        room = server.room
        yield _gauge("chatroom_users", "connections in the room on this server", len(room))
        yield _gauge("chatroom_rooms", "rooms on this server", 1)
        yield _counter(
            "chatroom_messages", "chat lines and actions the room carried", room.messages
        )
        yield _counter(
            "chatroom_deliveries",
            "events and replies queued for one connection each",
            server.outbox.deliveries,
        )
        yield _counter(
            "chatroom_sent_bytes", "bytes handed to connections", server.outbox.taken_bytes
        )
        yield _labelled(
            "chatroom_disconnects", "connections that left, by reason", "reason",
            server.tally.disconnects,
        )  # fmt: skip
        yield _labelled(
            "chatroom_refusals", "connections turned away, by cause", "cause",
            server.tally.refusals,
        )  # fmt: skip
        yield _gauge(
            "chatroom_send_queue_bytes",
            "bytes waiting in the connections' send queues",
            server.queued_bytes(),
        )
        lag = server.loop_lag
        if lag is not None:
            yield _gauge(
                "chatroom_loop_lag_seconds",
                "the longest the event loop ran late since the last scrape",
                lag.take_worst(),
            )
        link = server.cluster
        if link is not None:
            yield _gauge("chatroom_redis_up", "1 while the shared room is reachable", link.up)
            yield _counter(
                "chatroom_redis_append_seconds",
                "time spent in append calls to Redis",
                link.append_seconds,
            )
            yield _counter("chatroom_redis_appends", "append calls to Redis", link.appends)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, values: Counter[str]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
