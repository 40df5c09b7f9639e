"""Between ``accept()`` and the room: a trusted balancer's PROXY header, the TLS handshake.

Most connections pass straight through (a plaintext connection from anyone but a trusted
balancer becomes the room's at once). The others wait here first, and what waits here is
bounded and counted:

- a connection from ``--proxy-protocol-from`` has its PROXY header read on the raw socket
  (:func:`~chatroom.server.adapter.proxy_reader.read_proxy_header`: bounded in size and in
  time by ``proxy_header_timeout``); the client it names is the connection's address from
  then on, for the handshake's count as for the room. A header that is malformed, late or
  missing is refused with one log line (once per interval). From anyone else nothing is a
  header: what they send is their input, whatever it begins with;
- on the TLS port the handshake (:class:`~chatroom.server.adapter.tls_stream.TlsStream`)
  runs before the room sees the connection, bounded by ``tls_handshake_timeout``; a
  handshake under way counts against ``--max-per-ip`` for the address it is from (the
  room's :class:`HandshakeGate` decides, together with the room's own connections from it);
- every connection waiting here (a header being read, a handshake under way) counts
  against ``--max-clients`` together with the room's connections, exempt addresses too: a
  newcomer that would pass it is reset at once (no TLS has been spoken yet, so there is
  nothing to say it in), and logged once per interval. So half-open handshakes cannot
  pile up unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Protocol

from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.adapter.proxy_reader import read_proxy_header
from chatroom.server.adapter.tls_stream import TlsStream
from chatroom.server.config import ServerConfig
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.proxy_protocol import ProxyHeaderError, TrustedPeers


class HandshakeGate(Protocol):
    """Who may start a TLS handshake (the room's admission decides: a handshake counts
    against ``--max-per-ip`` while it lasts); ``len()``: the room's connections."""

    def handshake_starts(self, host: str) -> str | None: ...
    def handshake_ends(self, key: str) -> None: ...
    def __len__(self) -> int: ...


# protocol_factory(named, first): the room's connection for the client ``named`` (None: the
# socket's peer), with ``first``, bytes of its input already read.
ConnectionFactory = Callable[[tuple[str, int] | None, bytes], asyncio.BufferedProtocol]


class Doorway:
    """Connections accepted and not yet the room's; see the module's docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ServerConfig,
        protocol_factory: ConnectionFactory,
        log: OncePerInterval,
        gate: HandshakeGate | None = None,
        refused: Callable[[str], None] = lambda cause: None,
    ) -> None:
        self.loop = loop
        self.refused = refused  # counts a refusal by its cause (the metrics)
        self.config = config
        self.protocol_factory = protocol_factory
        self.log = log
        self.gate = gate
        self.trusted = TrustedPeers(config.proxy_protocol_from)
        self.waiting = 0  # headers being read and handshakes under way
        self._tasks: set[asyncio.Task[None]] = set()

    def adopt(self, conn: socket.socket, tls: ssl.SSLContext | None) -> None:
        """``conn`` was accepted (non-blocking); make it the room's, over ``tls`` if given."""
        if tls is None and not self.trusted:
            self._start(self._plain(conn))
            return
        try:
            host, port = conn.getpeername()[:2]
        except OSError:  # reset before we got here
            conn.close()
            return
        if self.trusted and host in self.trusted:
            if self._refused_when_full(conn, peer_id(host, port), "PROXY headers"):
                return
            self.waiting += 1
            self._start(self._proxied(conn, (host, port), tls))
        elif tls is None:
            self._start(self._plain(conn))
        else:
            self._handshake(conn, (host, port), tls, b"")

    def _start(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        task = self.loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _plain(
        self, conn: socket.socket, named: tuple[str, int] | None = None, first: bytes = b""
    ) -> None:
        factory = functools.partial(self.protocol_factory, named, first)
        try:
            await self.loop.connect_accepted_socket(factory, conn)
        except OSError:  # it went away before its transport was made
            conn.close()

    async def _proxied(
        self, conn: socket.socket, peer: tuple[str, int], tls: ssl.SSLContext | None
    ) -> None:
        """A trusted balancer's connection: its header first, then the client it names."""
        try:
            try:
                header, rest = await read_proxy_header(
                    self.loop, conn, self.config.proxy_header_timeout
                )
            finally:
                self.waiting -= 1
        except ProxyHeaderError as exc:
            # A flood of them (a scan, a misconfigured balancer) is one line per interval.
            where = peer_id(*peer)
            self.refused("proxy_header")
            self.log.log("refused (PROXY header)", logging.WARNING, "refused %s: %s", where, exc)
            conn.close()
            return
        except OSError:  # reset while the header was on its way
            conn.close()
            return
        # LOCAL or UNKNOWN (a health check): the balancer itself is the client.
        named = header.source or peer
        if tls is None:
            await self._plain(conn, named, rest)
        else:
            self._handshake(conn, named, tls, rest)

    # --- TLS -------------------------------------------------------------------------------------

    def _handshake(
        self, conn: socket.socket, client: tuple[str, int], tls: ssl.SSLContext, first: bytes
    ) -> None:
        """Start the TLS handshake of ``client`` (the peer, or whom a header named)."""
        where = peer_id(*client)
        if self._refused_when_full(conn, where, "TLS handshakes"):
            return
        key = self.gate.handshake_starts(client[0]) if self.gate is not None else ""
        if key is None:
            self.refused("per_address_handshakes")
            self.log.log(
                "refused (TLS handshakes)",
                logging.WARNING,
                "refused %s: too many connections from its address (TLS handshakes count)",
                where,
            )
            _reset(conn)
            return
        self.waiting += 1
        done = functools.partial(self._handshake_done, key, where)
        make_inner = functools.partial(self.protocol_factory, client, b"")
        stream = TlsStream(
            tls, self.loop, self.config.tls_handshake_timeout, make_inner, done, first
        )
        self._start(self._connect(conn, stream))

    async def _connect(self, conn: socket.socket, stream: TlsStream) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: stream, conn)
        except OSError as exc:  # it went away before its transport was made
            conn.close()
            stream.connection_lost(exc)

    def _handshake_done(self, key: str, where: str, exc: BaseException | None) -> None:
        """Once per handshake, however it ended; one that failed (a plaintext client, a
        scanner, a timeout) is one line at info level, once per interval for each reason:
        it cost the room nothing."""
        self.waiting -= 1
        if self.gate is not None:
            self.gate.handshake_ends(key)
        if exc is not None:
            reason = handshake_failure(exc)
            self.log.log(
                f"TLS handshakes failed ({reason})",
                logging.INFO,
                "TLS handshake with %s failed: %s",
                where,
                reason,
            )

    def _refused_when_full(self, conn: socket.socket, where: str, what: str) -> bool:
        """Whether ``conn`` was refused (and closed): the room's connections and those
        waiting here are at ``--max-clients``."""
        present = len(self.gate) if self.gate is not None else 0
        if present + self.waiting < self.config.max_clients:
            return False
        self.refused("full_pending")
        self.log.log(
            f"refused (server full, {what})",
            logging.WARNING,
            "refused %s: server full (%d in the room, %d waiting for a PROXY header or a "
            "TLS handshake)",
            where,
            present,
            self.waiting,
        )
        _reset(conn)
        return True


def _reset(conn: socket.socket) -> None:
    """Refuse ``conn`` before any TLS, with a reset: the kernel forgets it at once, and a
    client takes it as a connection lost (and may retry), not as a TLS failure."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def handshake_failure(exc: BaseException) -> str:
    """A short reason a TLS handshake failed, for the log."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        if exc.reason in ("WRONG_VERSION_NUMBER", "HTTP_REQUEST", "RECORD_LAYER_FAILURE"):
            return f"not TLS, a plaintext client? ({exc.reason})"
        return exc.reason
    if isinstance(exc, TimeoutError | ConnectionAbortedError):
        return "not finished in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
