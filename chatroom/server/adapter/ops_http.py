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
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from chatroom.server.config import ServerConfig

Status = Callable[[], bool]


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
