"""The operators' HTTP port (``--metrics-port``): ``/metrics``, ``/healthz``, ``/readyz``.

Three read-only answers to GET, on the server's own event loop (a scrape reads the room as
it is, between two events): ``/metrics`` in Prometheus' text format, made by
prometheus-client from the server's :class:`~chatroom.server.adapter.metrics.ServerCollector`;
``/healthz`` 200 while the server accepts connections; ``/readyz`` 200 once it listens and,
with ``--redis``, is in sync with the shared room (503 otherwise). Anything else is 404, a
method other than GET or HEAD 405. A request is at most ``ops_request_max`` bytes and must
arrive within ``ops_request_timeout``; at most ``ops_connections`` are served at once (more
are closed at once): the port costs the room nothing whoever knocks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from chatroom.server.adapter.metrics import LoopLag, Tally
from chatroom.server.adapter.startup import StartError
from chatroom.server.config import ServerConfig

Status = Callable[[], bool]


async def open_ops(server: Measured) -> tuple[LoopLag, OpsEndpoint]:
    """Start sampling the loop's lag and open ``server``'s metrics port (StartError if the
    port cannot be opened)."""
    config = server.config
    lag = LoopLag(asyncio.get_running_loop(), config.loop_lag_interval)
    server.loop_lag = lag
    ops = OpsEndpoint(config, ServerCollector(server), server.accepting, server.ready)
    try:
        await ops.start()
    except OSError as exc:
        lag.stop()
        raise StartError(f"--metrics-port {config.metrics_port}: {exc.strerror or exc}") from None
    return lag, ops


class OpsEndpoint:
    def __init__(
        self, config: ServerConfig, collector: Collector, healthy: Status, ready: Status
    ) -> None:
        self.config = config
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(collector)
        self.healthy = healthy
        self.ready = ready
        self.port: int | None = None
        self._server: asyncio.AbstractServer | None = None
        self._serving = 0

    async def start(self) -> None:
        """Listen on ``--metrics-host``:``--metrics-port`` (raises OSError)."""
        config = self.config
        self._server = await asyncio.start_server(
            self._serve, config.metrics_host, config.metrics_port, limit=config.ops_request_max
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        config = self.config
        if self._serving >= config.ops_connections:
            writer.close()
            return
        self._serving += 1
        try:
            async with asyncio.timeout(config.ops_request_timeout):
                head = await reader.readuntil(b"\r\n\r\n")
                status, content_type, body = self._answer(head)
                writer.write(
                    f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                )
                if not head.startswith(b"HEAD "):
                    writer.write(body)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a scanner or a slow client: nothing to answer
        finally:
            self._serving -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == b"/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
        if path == b"/healthz":
            return _status(self.healthy(), "accepting", "not accepting")
        if path == b"/readyz":
            return _status(self.ready(), "ready", "not ready")
        return "404 Not Found", "text/plain", b"/metrics, /healthz or /readyz\n"


def _status(ok: bool, yes: str, no: str) -> tuple[str, str, bytes]:
    if ok:
        return "200 OK", "text/plain", f"{yes}\n".encode()
    return "503 Service Unavailable", "text/plain", f"{no}\n".encode()


class Measured(Protocol):
    """What the collector reads of the server (ChatServer is one)."""

    config: ServerConfig
    room: Any  # len(room), room.messages
    outbox: Any  # outbox.deliveries
    tally: Tally
    loop_lag: LoopLag | None
    cluster: Any  # None, or .up, .append_seconds and .appends

    def queued_bytes(self) -> int: ...
    def accepting(self) -> bool: ...
    def ready(self) -> bool: ...


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
            "payloads handed to one connection each (a line to a room of N is N)",
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
