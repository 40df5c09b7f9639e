"""The WebSocket door: ``--ws-port`` (and ``--wss-port``) serve the same room to browsers
and bots, at ``/``.

Each accepted socket goes through the server's own
:class:`~chatroom.server.adapter.listener.Listener` (the same accept loop, out-of-descriptors
handling, TLS handshake timeout and per-address count of TLS handshakes as the TCP ports),
then through websockets' sans-I/O protocol and asyncio connection for the HTTP upgrade and
the framing. Once upgraded, it is a
:class:`~chatroom.server.adapter.connection.ClientConnection` like a TCP connection, over a
:class:`~chatroom.server.adapter.ws_transport.WebSocketTransport`: the room gets the same
inputs from it and sends it the same output, so every limit, ban and admission rule is the
TCP one.

What only a WebSocket can get wrong is answered with a close and its reason, never a crash:
a binary message (1003), text that is not UTF-8 (1007), a message over ``ws_max_message``
bytes or in more than 64 fragments (1009; websockets' parser counts the bytes, before it
holds them). Before the upgrade: a path other than ``/`` is 404, an ``Origin`` not in
``--ws-origin`` 403 (by websockets), too many or too long headers 431 (websockets' limits,
lowered here), a malformed ``X-Forwarded-For`` from a trusted proxy 400; an upgrade still
unanswered after ``ws_handshake_timeout`` is dropped, and while it is pending it counts
against ``--max-per-ip``. permessage-deflate is not offered: a compressed message could
inflate to far more than its frame, and lines are short.
"""

from __future__ import annotations

import asyncio
import http
import logging
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any, Protocol

import websockets.http11
from websockets.frames import CloseCode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from chatroom.server.adapter.connection import ClientConnection
from chatroom.server.adapter.doorway import HandshakeGate
from chatroom.server.adapter.forwarded import HEADER, ForwardedError, client_host
from chatroom.server.adapter.listener import TLS_NAME, WS_NAMES, Listener
from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.adapter.ws_transport import DoorConnection, TextFrames, WebSocketTransport
from chatroom.server.config import ServerConfig
from chatroom.server.core.proxy_protocol import TrustedPeers

log = logging.getLogger("chatroom.server")
# websockets says "connection open/closed" at info for every connection: the room's own
# join and leave lines say it already. Its warnings and errors still show.
library_log = logging.getLogger("chatroom.server.websocket")
library_log.setLevel(logging.WARNING)


class _Handlers:
    """What websockets' :class:`ServerConnection` asks of its server, for the connections
    the door's listener accepts: start its handler, and say whether upgrades are still
    admitted. websockets 17 asks for ``handler`` and ``handler_tasks``, 14 to 16 for
    ``start_connection_handler``; both are here (tests run against each)."""

    def __init__(self, run: Callable[[DoorConnection], Coroutine[Any, Any, None]]) -> None:
        self.run = run
        self.handler_tasks: set[asyncio.Task[None]] = set()
        self.serving = True

    def is_serving(self) -> bool:
        return self.serving

    def handler(self, connection: DoorConnection) -> Coroutine[Any, Any, None]:
        return self.run(connection)  # websockets 17 makes the task and adds it

    def start_connection_handler(self, connection: DoorConnection) -> None:
        task = asyncio.get_running_loop().create_task(self.run(connection))
        self.handler_tasks.add(task)


class DoorHost(Protocol):
    """What the door takes from the server (app.py's ChatServer)."""

    config: ServerConfig
    loop: asyncio.AbstractEventLoop
    room: HandshakeGate  # the room's admission: upgrades under way count per address
    log_once: OncePerInterval
    tls: ssl.SSLContext | None
    tally: Any  # .refused(cause): the metrics' count of the adapter's refusals

    def _new_connection(self, named: tuple[str, int] | None = None) -> ClientConnection: ...


def open_door(server: DoorHost) -> WebSocketDoor | None:
    """The server's WebSocket door, listening (None without --ws-port and --wss-port)."""
    config = server.config
    if config.ws_port is None and config.wss_port is None:
        return None
    door = WebSocketDoor(
        config,
        server.loop,
        server._new_connection,
        server.room,
        server.log_once,
        server.tls,
        server.tally.refused,
    )
    door.start()
    return door


class WebSocketDoor:
    """The WebSocket listeners of one server and the connections they bring to its room:
    each is made by ``new_connection`` (the server's, for the client it names), and counts
    its upgrade against ``gate`` (the room's admission, as a TLS handshake does); what the
    door refuses is counted by ``refused`` (the metrics), by cause."""

    def __init__(
        self,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        new_connection: Callable[[tuple[str, int]], ClientConnection],
        gate: HandshakeGate,
        log_once: OncePerInterval,
        tls: ssl.SSLContext | None,
        refused: Callable[[str], None],
    ) -> None:
        self.config = config
        self.new_connection = new_connection
        self.gate = gate
        # --proxy-protocol-from: whose X-Forwarded-For is believed. (No PROXY header is read
        # on these ports: an HTTP proxy names the client in the request.)
        self.trusted = TrustedPeers(config.proxy_protocol_from)
        self.log_once = log_once
        self.tls = tls
        self.refused = refused
        self._read_buffer = memoryview(bytearray(config.read_chunk))  # for TLS, shared
        self._frames = TextFrames()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._max_size = max(config.ws_max_message, config.max_line + 2)
        self._origins = [*config.ws_origin, None] if config.ws_origin else None
        self._library = _Handlers(self._run)
        # The listener's config: its port and tls_port are ours, no PROXY header, and not
        # the sockets systemd passed (those are the TCP ports'), but the door's own that an
        # upgrade handed over (named "ws" and "wss": adapter/takeover.py).
        door_config = replace(
            config,
            port=config.ws_port,
            tls_port=config.wss_port,
            proxy_protocol_from=(),
            inherited=tuple(
                (fd, TLS_NAME if name == "wss" else "")
                for fd, name in config.inherited
                if name in WS_NAMES
            ),
        )
        batch = config.accept_batch
        self.listener = Listener(
            loop,
            door_config,
            self._connection,
            log_once,
            batch,
            tls,
            gate,
            refused,
            flags=("--ws-port", "--wss-port"),
        )
        self.port: int | None = None
        self.tls_port: int | None = None

    def start(self) -> None:
        """Bind and listen (raises OSError)."""
        # websockets reads these when it parses a request: bound what an upgrade may hold.
        websockets.http11.MAX_NUM_HEADERS = self.config.ws_max_headers
        websockets.http11.MAX_LINE_LENGTH = self.config.ws_max_header_line
        self.listener.start()
        if self.listener.sockets:
            self.port = self.listener.sockets[0].getsockname()[1]
        if self.listener.tls_sockets:
            self.tls_port = self.listener.tls_sockets[0].getsockname()[1]

    def banner(self, config_host: str) -> str:
        """The start-up line's addition: where browsers and bots join."""
        shown = "localhost" if config_host in ("0.0.0.0", "::", "") else config_host
        urls = [f"ws://{shown}:{self.port}/"] if self.port is not None else []
        if self.tls_port is not None:
            urls.append(f"wss://{shown}:{self.tls_port}/")
        return f"; WebSocket: {' '.join(urls)}"

    def close(self) -> None:
        """Stop listening; upgrades not answered yet are refused (503); the connections in
        the room are the room's to close (on shutdown, with everyone's). Idempotent."""
        self.listener.close()
        self._library.serving = False

    # --- one connection -----------------------------------------------------------------

    def _connection(self, named: tuple[str, int] | None = None, first: bytes = b"") -> Any:
        """The protocol for an accepted socket (the listener's factory; no PROXY header is
        read here, so ``first`` is empty, and ``named`` is the peer)."""
        config = self.config
        protocol = ServerProtocol(
            origins=self._origins,
            extensions=None,  # no permessage-deflate
            subprotocols=None,
            max_size=self._max_size,
            logger=library_log,
        )
        connection = DoorConnection(
            protocol,
            self._library,
            ping_interval=config.ws_ping_interval,
            ping_timeout=config.ws_ping_timeout,
            close_timeout=config.close_linger,
            write_limit=max(1, config.max_sendq // 2),
        )
        connection.gate = self._gate
        connection.release = self.gate.handshake_ends
        connection.read_buffer = self._read_buffer
        return connection

    def _gate(self, connection: DoorConnection) -> str | None:
        """Whether the upgrade from this peer may start: it counts against --max-per-ip
        while it lasts ("" for an exempt address or a trusted proxy; None: refused)."""
        peer = connection.transport.get_extra_info("peername")
        if not peer:
            return None
        if peer[0] in self.trusted:
            return ""  # a trusted proxy carries many clients; they are counted once named
        key = self.gate.handshake_starts(peer[0])
        if key is None:
            self.refused("per_address_upgrades")
            self.log_once.log(
                "refused (WebSocket handshakes)",
                logging.WARNING,
                "refused %s: too many connections from its address (WebSocket upgrades count)",
                f"{peer[0]}:{peer[1]}",
            )
        return key

    def _check_request(self, connection: DoorConnection, request: Request) -> Response | None:
        """The upgrade request before websockets answers it: None to go on."""
        if request.path.split("?", 1)[0] != "/":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "the room is at /\n")
        host, port = connection.transport.get_extra_info("peername")[:2]
        try:
            client = client_host(request.headers.get_all(HEADER), host, self.trusted)
        except ForwardedError as exc:
            self.refused("forwarded_header")
            self.log_once.log(
                "refused (X-Forwarded-For)", logging.WARNING, "refused %s:%s: %s", host, port, exc
            )
            return connection.respond(http.HTTPStatus.BAD_REQUEST, f"{exc}\n")
        connection.client = (client, port)
        return None

    async def _run(self, ws: DoorConnection) -> None:
        """websockets' handler for one accepted socket: the upgrade, then the room."""
        try:
            try:
                async with asyncio.timeout(self.config.ws_handshake_timeout):
                    await ws.handshake(self._check_request, None, server_header=None)
            finally:
                ws.handshake_over()
            if ws.protocol.state is not State.OPEN:
                ws.transport.abort()
                return
            ws.start_keepalive()
            await self._serve(ws)
        except Exception as exc:  # a timeout, or a failure to answer: the socket goes
            log.debug("websocket %s: %r", ws.remote_address, exc)
            ws.transport.abort()
        finally:
            self._library.handler_tasks.discard(asyncio.current_task())

    async def _serve(self, ws: DoorConnection) -> None:
        """The upgraded connection: a ClientConnection over it, fed as frames arrive
        (:class:`DoorConnection`). However it ends, the connection's ``connection_lost`` is
        called once, when the socket is gone and the room is done with it."""
        assert ws.client is not None
        transport = WebSocketTransport(ws, ws.client, self._frames, self._tasks)
        conn = self.new_connection(ws.client)
        transport.attach(conn)
        await ws.wait_closed()
        if transport.eof:
            await transport.ended.wait()  # its last lines, then the room closes it
        conn.connection_lost(None if transport.closing else self._failure(ws))

    @staticmethod
    def _failure(ws: DoorConnection) -> Exception | None:
        """How a connection the room did not close ended (None: the peer said goodbye)."""
        protocol = ws.protocol
        if ws.failure is not None:
            return ConnectionError(ws.failure)
        if protocol.close_rcvd is not None and protocol.close_rcvd_then_sent:
            return None
        sent = protocol.close_sent
        if sent is not None and sent.code not in (CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY):
            return ConnectionError(f"closed {sent.code}: {sent.reason}")  # too big, keepalive
        return ConnectionError("connection lost")
