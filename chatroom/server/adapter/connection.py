"""One client connection: an asyncio Protocol that moves bytes between a socket and the room.

It owns the per-connection mechanics — the line decoder, flood-control pacing, the idle
timer, the bounded output queue — and hands every decision to its owner (the server, in
:mod:`chatroom.server.adapter.app`) through the narrow :class:`ConnectionOwner` interface. It never
awaits: a stalled peer costs the room nothing but the bytes queued for it, which are capped
by ``max_sendq``.

However a connection ends — the peer closes or resets it, the room sends it away, it is
dropped as slow, the server stops — the transport's ``connection_lost`` follows, and that
is the one place that tells the owner it has :meth:`~ConnectionOwner.ended`.

A connection from a trusted load balancer (``proxy_protocol_from``) begins with a PROXY
protocol header naming the client: it is attached to the room only once the header is read
(at most :data:`~chatroom.server.core.proxy_protocol.MAX_HEADER` bytes, within
``proxy_header_timeout``), under the client's address. A header from anyone else, or a
malformed one, is refused and the connection closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from typing import Protocol

from chatroom.protocol import LeaveReason
from chatroom.server.config import ServerConfig
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.codec import LineDecoder, LineTooLong
from chatroom.server.core.inputs import Connected, LineReceived, TimerFired
from chatroom.server.core.proxy_protocol import (
    MAX_HEADER,
    ProxyHeaderError,
    TrustedPeers,
    looks_like_header,
    parse,
)
from chatroom.server.core.ratelimit import TokenBucket

log = logging.getLogger("chatroom.server")


class ConnectionOwner(Protocol):
    """What a connection tells the server, and the little it asks."""

    def event(
        self, conn: ClientConnection, event: Connected | LineReceived | TimerFired
    ) -> float | None:
        """Hand the room ``event`` of this connection (it is made, a line arrived and flood
        control let it through, its timer fired). For Connected and TimerFired: in how
        many seconds the connection should hand it the next TimerFired (None: never)."""

    def input_finished(self, conn: ClientConnection) -> None:
        """The peer half-closed and every line it sent has been handled."""

    def ended(self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None) -> None:
        """The connection is closed, whatever the cause; nothing more will come from it."""

    def owed(self, conn: ClientConnection) -> int:
        """Bytes queued for this connection alone and not yet handed to its transport."""

    def after_flush(self, conn: ClientConnection) -> None:
        """Call :meth:`ClientConnection.resume_input` once the queued output is written."""

    def proxy_refused(self, conn: ClientConnection, reason: str) -> None:
        """A PROXY header was refused (``reason``); the connection is closing."""


class ClientConnection(asyncio.BufferedProtocol):
    """Input is bounded at every moment (a RecvQ, as IRC servers have): what waits for flood
    control or for the connection's own output to drain is held as raw bytes in the decoder,
    at most ``recvq`` of them plus one read; past that the connection stops reading, and
    TCP flow control keeps the rest in the sender's buffers. Each read lands in one buffer
    shared by every connection (the loop runs one callback at a time), so an idle
    connection holds no read buffer of its own.

    Lines are handed to the room while flood control allows, while the connection's own
    output is under half of ``max_sendq`` (a client that floods itself with replies or
    echoes is slowed to the pace it reads them, not dropped: a reader is dropped as slow
    only past the whole ``max_sendq``), and up to ``input_per_flush`` bytes between two
    flushes, so no one connection fills a flush with a megabyte of echoes.
    """

    # Slots, and no per-connection buffers while idle: an idle connection costs little.
    __slots__ = (
        "owner",
        "config",
        "loop",
        "conn_id",
        "peer",
        "transport",
        "_read_buffer",
        "_decoder",
        "_next_line",
        "_bucket",
        "_resume_handle",
        "_idle_handle",
        "_linger_handle",
        "_eof",
        "closing",
        "_reading_paused",
        "_held_back",
        "_write_paused",
        "_held",
        "_held_bytes",
        "_proxy_from",
        "_proxy_header",
        "_first_read",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        conn_id: int,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        read_buffer: memoryview,
        proxy_from: TrustedPeers | None = None,
    ) -> None:
        self.owner = owner
        self.config = config
        self.loop = loop
        self.conn_id = conn_id
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        self._read_buffer = read_buffer
        self._decoder = LineDecoder(config.max_line)
        self._next_line: str | LineTooLong | None = None  # popped, waiting for a token
        self._bucket: TokenBucket | None = None
        self._resume_handle: asyncio.TimerHandle | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._eof = False  # the peer will send nothing more
        self.closing = False  # no more output is accepted; the transport is being closed
        self._reading_paused = False
        self._held_back = False  # lines wait for our output to drain or for the next flush
        self._write_paused = False  # the transport's buffer is over its high-water mark
        self._held: list[bytes] = []  # output held back while paused
        self._held_bytes = 0
        self._proxy_from = proxy_from  # None or empty: the PROXY protocol is off
        self._proxy_header: bytearray | None = None  # a PROXY header being read
        self._first_read = True  # nothing read yet (an untrusted PROXY header is refused)

    # --- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not asserted to be an asyncio.Transport: uvloop's transports are another class.
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Keep the kernel's share of a stalled reader's backlog small, so --max-sendq
            # (counted in our buffers) is what decides when a reader is too slow.
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.kernel_send_buffer)
        peer = transport.get_extra_info("peername")
        if not peer:
            # Reset before we accepted it (an RST storm, a port scan): nobody is there, and
            # without an address it cannot be told apart from the next one.
            log.debug("connection %d reset before it was accepted", self.conn_id)
            transport.abort()
            return
        host, port = peer[0], peer[1]
        self.peer = peer_id(host, port)
        if self._proxy_from and host in self._proxy_from:
            # Not in the room until the header says whom the balancer carries.
            self._proxy_header = bytearray()
            self._idle_handle = self.loop.call_later(
                self.config.proxy_header_timeout,
                self._refuse_proxy,
                f"no complete PROXY header within {self.config.proxy_header_timeout:g}s",
            )
            return
        self._attach(host, port)

    def _attach(self, host: str, port: int) -> None:
        """Into the room as ``host``:``port`` (the peer, or the client a PROXY header named)."""
        transport = self.transport
        if self.config.rate > 0:
            self._bucket = TokenBucket(self.config.rate, self.config.burst, time.monotonic())
        self.peer = peer_id(host, port)
        # Paused (and told when it drains) at half the send queue: a client's own replies
        # wait there, leaving the other half for what everyone else says.
        transport.set_write_buffer_limits(high=max(1, self.config.max_sendq // 2))
        self._arm_idle_timer(self.owner.event(self, Connected(self.conn_id, host, port)))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = self._read_buffer[:nbytes]
        if self._proxy_header is not None:
            self._read_proxy_header(data)
            return
        if self._first_read:
            self._first_read = False
            # Someone who is not a trusted balancer, posing as one (or one that is not
            # listed): it would name any address it liked.
            if self._proxy_from and looks_like_header(bytes(data[:12])):
                self._refuse_proxy("PROXY header from an address not in --proxy-protocol-from")
                return
        self._decoder.push(data)
        self._handle_lines()

    def _read_proxy_header(self, data: memoryview) -> None:
        buffer = self._proxy_header
        assert buffer is not None
        taken = min(len(data), MAX_HEADER + 1 - len(buffer))  # one byte over: refused
        buffer += data[:taken]
        try:
            header = parse(bytes(buffer))
        except ProxyHeaderError as exc:
            self._refuse_proxy(str(exc))
            return
        if header is None:
            return  # more to come, within the timeout
        self._proxy_header = None
        if self._idle_handle is not None:
            self._idle_handle.cancel()
            self._idle_handle = None
        rest = bytes(buffer[header.length :]) + bytes(data[taken:])  # the client's first bytes
        # LOCAL or UNKNOWN (a health check): the balancer itself is the client.
        host, port = header.source or self.transport.get_extra_info("peername")[:2]
        self._attach(host, port)
        if self.closing:
            return
        self._decoder.push(rest)
        self._handle_lines()

    def _refuse_proxy(self, reason: str) -> None:
        self._proxy_header = None
        self.owner.proxy_refused(self, reason)
        self.close()

    def eof_received(self) -> bool:
        if self._proxy_header is not None:  # the header never came: nothing to say
            self._refuse_proxy("connection closed before its PROXY header was complete")
            return True
        self._eof = True
        self._decoder.close()
        self._handle_lines()
        return True  # keep our side open: what we owe the peer is still to be written

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._held and not self.closing:
            data = b"".join(self._held)
            self._held.clear()
            self._held_bytes = 0
            self.transport.write(data)
        if self._held_back:
            self.resume_input()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.closing = True
        self._read_buffer = memoryview(b"")  # the shared buffer is not ours to keep
        self.owner.ended(self, LeaveReason.ERROR if exc else LeaveReason.EOF, exc)

    # --- input ---

    def charge(self, lines: int) -> None:
        """Count ``lines`` more against flood control (an expensive command)."""
        if self._bucket is not None:
            self._bucket.charge(lines, time.monotonic())

    def resume_input(self) -> None:
        """Output has drained or been flushed: hand on the lines that waited for it."""
        if self._held_back:
            self._held_back = False
            self._handle_lines()

    def _handle_lines(self) -> None:
        """Hand held lines to the room as far as flood control and our output allow."""
        if self._resume_handle is not None or self._held_back:
            # A timer, the next flush or the transport draining will hand the lines on;
            # meanwhile what arrives counts against the RecvQ.
            self._read_while_room()
            return
        decoder, config, owner = self._decoder, self.config, self.owner
        budget = config.input_per_flush
        exhausted = False
        while not self.closing:
            if self._write_paused:  # resume_writing() calls resume_input()
                self._held_back = True
                break
            if budget <= 0 or self._behind() > config.max_sendq // 2:
                self._held_back = True
                owner.after_flush(self)
                break
            line = self._next_line if self._next_line is not None else decoder.pop()
            if line is None:
                exhausted = True
                break
            if self._bucket is not None:
                wait = self._bucket.delay(time.monotonic())
                if wait > 0:
                    self._next_line = line
                    self._resume_handle = self.loop.call_later(wait, self._resume)
                    break
            self._next_line = None
            budget -= len(line) + 1 if isinstance(line, str) else config.max_line
            owner.event(self, LineReceived(self.conn_id, line))
        if exhausted and self._eof and not self.closing:
            owner.input_finished(self)
        self._read_while_room()

    def _read_while_room(self) -> None:
        """Read from the socket only while the held input is under ``recvq``."""
        if self.transport is None or self._eof or self.closing:
            return
        full = self._decoder.pending >= max(self.config.recvq, self.config.max_line + 2)
        if full and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        elif not full and self._reading_paused:
            self._reading_paused = False
            self.transport.resume_reading()

    def _resume(self) -> None:
        self._resume_handle = None
        self._handle_lines()

    def _behind(self) -> int:
        """Our output not yet taken by the kernel: queued, held, and in the transport."""
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + self._held_bytes + self.owner.owed(self)

    # --- timers ---

    def _arm_idle_timer(self, delay: float | None) -> None:
        """One timer per connection, re-armed from the room's next deadline when it fires."""
        if delay is not None and not self.closing:
            self._idle_handle = self.loop.call_later(delay, self._idle_timer_fired)

    def _idle_timer_fired(self) -> None:
        """Before the room judges this connection idle, take in what it already sent.

        After a stall (the process paused, a long GC, a loaded host) every timer is due at
        once, and an event loop may run due timers before it reads the sockets (uvloop
        does): the check waits one more turn of the loop, so the lines waiting in the
        socket are read and handled first. Lines held back by flood control are activity
        too: the check waits until they are handled."""
        # Not call_later(0): libuv runs a zero-delay timer added by a timer in the same pass.
        self._idle_handle = self.loop.call_later(self.config.idle_defer, self._idle_check_now)

    def _idle_check_now(self) -> None:
        self._idle_handle = None
        if self._next_line is not None or self._held_back:
            # Lines wait for a token or for our output to drain: not idle. Check again
            # after the room has seen them (each handled line moves the deadline).
            self._idle_handle = self.loop.call_later(self.config.idle_retry, self._idle_timer_fired)
            return
        self._arm_idle_timer(self.owner.event(self, TimerFired(self.conn_id)))

    def _cancel_timers(self) -> None:
        for handle in (self._idle_handle, self._resume_handle, self._linger_handle):
            if handle is not None:
                handle.cancel()
        self._idle_handle = self._resume_handle = self._linger_handle = None

    # --- output ---

    def write(self, data: bytes) -> bool:
        """Write, unless the peer is already more than ``max_sendq`` bytes behind: then False.

        It is the backlog *before* this write that counts, so one reply larger than the
        limit (``who`` in a big room) goes to a reader that keeps up, while a reader that
        stopped is still dropped as soon as it is that far behind.

        While the transport is backed up (paused) the data is held here and written in one
        piece when it drains: many small writes to a full transport cost far more, on uvloop
        especially, than one large one.
        """
        if self.closing or self.transport is None:
            return True
        behind = self.transport.get_write_buffer_size() + self._held_bytes
        if behind > self.config.max_sendq:
            return False
        if self._write_paused:
            self._held.append(data)
            self._held_bytes += len(data)
        else:
            self.transport.write(data)
        return True

    def close(self) -> None:
        """Close once the transport has written what it holds. Idempotent."""
        if self.transport is None or self.closing:
            return
        if self._held:
            self.transport.write(b"".join(self._held))
            self._held.clear()
        self.closing = True
        self._cancel_timers()
        self.transport.close()
        # A peer that stops reading must not hold the socket open forever.
        self._linger_handle = self.loop.call_later(self.config.close_linger, self.transport.abort)

    def abort(self) -> None:
        """Drop the connection without flushing (it stopped reading). Idempotent."""
        self.closing = True
        self._cancel_timers()
        self._held.clear()
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                # Reset rather than FIN: the kernel frees the unsent backlog at once instead
                # of holding it in FIN-WAIT for a peer that is not reading.
                # (A socket already closed under us has fd -1: ValueError.)
                with contextlib.suppress(OSError, ValueError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
