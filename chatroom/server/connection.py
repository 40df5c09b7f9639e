"""One client connection: an asyncio Protocol that moves bytes between a socket and the room.

It owns the per-connection mechanics — the line decoder, flood-control pacing, the idle
timer, the bounded output queue — and hands every decision to its owner (the server, in
:mod:`chatroom.server.app`) through the narrow :class:`ConnectionOwner` interface. It never
awaits: a stalled peer costs the room nothing but the bytes queued for it, which are capped
by ``max_sendq``.

However a connection ends — the peer closes or resets it, the room sends it away, it is
dropped as slow, the server stops — the transport's ``connection_lost`` follows, and that
is the one place that tells the owner it has :meth:`~ConnectionOwner.ended`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections import deque
from typing import Protocol

from chatroom.protocol import LeaveReason
from chatroom.server.addresses import peer_id
from chatroom.server.codec import LineDecoder, LineTooLong
from chatroom.server.config import ServerConfig
from chatroom.server.ratelimit import TokenBucket

log = logging.getLogger("chatroom.server")


class ConnectionOwner(Protocol):
    """What a connection asks of the server. Each returning ``float | None`` answers when
    the connection should next call :meth:`idle_check` (a ``time.time()``; None: never)."""

    def attach(self, conn: ClientConnection, host: str, port: int) -> float | None:
        """The connection is made: let the room admit it (or turn it away)."""

    def line_from(self, conn: ClientConnection, line: str | LineTooLong) -> None:
        """A line arrived and flood control let it through."""

    def input_finished(self, conn: ClientConnection) -> None:
        """The peer half-closed and every line it sent has been handled."""

    def idle_check(self, conn: ClientConnection) -> float | None:
        """The idle timer fired."""

    def ended(self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None) -> None:
        """The connection is closed, whatever the cause; nothing more will come from it."""


class ClientConnection(asyncio.Protocol):
    # Slots and a line queue made only when lines wait: an idle connection costs less memory.
    __slots__ = (
        "owner",
        "config",
        "loop",
        "conn_id",
        "peer",
        "transport",
        "_decoder",
        "_lines",
        "_bucket",
        "_resume_handle",
        "_idle_handle",
        "_linger_handle",
        "_eof",
        "closing",
        "_write_paused",
        "_held",
        "_held_bytes",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        conn_id: int,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.owner = owner
        self.config = config
        self.loop = loop
        self.conn_id = conn_id
        self.peer = "?"
        self.transport: asyncio.Transport | None = None
        self._decoder = LineDecoder(config.max_line)
        self._lines: deque[str | LineTooLong] | None = None  # received, waiting for a token
        self._bucket: TokenBucket | None = None
        self._resume_handle: asyncio.TimerHandle | None = None
        self._idle_handle: asyncio.TimerHandle | None = None
        self._linger_handle: asyncio.TimerHandle | None = None
        self._eof = False  # the peer will send nothing more
        self.closing = False  # no more output is accepted; the transport is being closed
        self._write_paused = False  # the transport's buffer is over its high-water mark
        self._held: list[bytes] = []  # output held back while paused
        self._held_bytes = 0

    # --- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not asserted to be an asyncio.Transport: uvloop's transports are another class.
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Keep the kernel's share of a stalled reader's backlog small, so --max-sendq
            # (counted in our buffers) is what decides when a reader is too slow.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.kernel_send_buffer)
        peer = transport.get_extra_info("peername") or ("?", 0)
        host, port = peer[0], peer[1]
        if self.config.rate > 0:
            self._bucket = TokenBucket(self.config.rate, self.config.burst, time.monotonic())
        self.peer = peer_id(host, port)
        self._arm_idle_timer(self.owner.attach(self, host, port))

    def data_received(self, data: bytes) -> None:
        self._queue_lines(self._decoder.feed(data))
        self._handle_lines()

    def eof_received(self) -> bool:
        self._eof = True
        self._queue_lines(self._decoder.feed_eof())
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

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        self.closing = True
        self.owner.ended(self, LeaveReason.ERROR if exc else LeaveReason.EOF, exc)

    # --- input ---

    def _queue_lines(self, lines: list[str | LineTooLong]) -> None:
        if self._lines is None:
            self._lines = deque(lines)
        else:
            self._lines.extend(lines)

    def _handle_lines(self) -> None:
        """Hand queued lines to the room as fast as flood control allows."""
        if self._resume_handle is not None:
            return  # paused; the timer will call us
        while self._lines and not self.closing:
            if self._bucket is not None:
                wait = self._bucket.delay(time.monotonic())
                if wait > 0:
                    self._pause_for(wait)
                    return
            self.owner.line_from(self, self._lines.popleft())
        if not self._lines:
            self._lines = None
            if self._eof and not self.closing:
                self.owner.input_finished(self)

    def _pause_for(self, seconds: float) -> None:
        assert self.transport is not None
        if not self._eof:
            self.transport.pause_reading()
        self._resume_handle = self.loop.call_later(seconds, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        if self.transport is not None and not self._eof and not self.closing:
            self.transport.resume_reading()
        self._handle_lines()

    # --- timers ---

    def _arm_idle_timer(self, deadline: float | None) -> None:
        """One timer per connection, re-armed from the room's next deadline when it fires."""
        if deadline is not None and not self.closing:
            delay = max(0.0, deadline - time.time())
            self._idle_handle = self.loop.call_later(delay, self._idle_timer_fired)

    def _idle_timer_fired(self) -> None:
        self._idle_handle = None
        self._arm_idle_timer(self.owner.idle_check(self))

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
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
