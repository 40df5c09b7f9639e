"""One client connection: an asyncio Protocol that moves bytes between a socket and the room.

It owns the per-connection mechanics — the line decoder, flood-control pacing, the idle
timer, the bounded output queue — and hands every decision to its owner (the server, in
:mod:`chatroom.server.adapter.app`) through the narrow :class:`ConnectionOwner` interface. It never
awaits: a stalled peer costs the room nothing but the bytes queued for it, which are capped
by ``max_sendq``.

However a connection ends — the peer closes or resets it, the room sends it away, it is
dropped as slow, the server stops — the transport's ``connection_lost`` follows, and that
is the one place that tells the owner it has :meth:`~ConnectionOwner.ended`.

A trusted load balancer's PROXY header is read before the connection is made
(:mod:`chatroom.server.adapter.doorway`): the connection is then given the client it named
(``named``) and the bytes read past the header (``first``), its first input.

Input is bounded at every moment (a RecvQ, as IRC servers have): what waits for flood
control or for the connection's own output to drain is held as raw bytes in the decoder, at
most ``recvq`` of them plus one read; past that the connection stops reading, and TCP flow
control keeps the rest in the sender's buffers. Each read lands in one buffer shared by
every connection (the loop runs one callback at a time), so an idle connection holds no read
buffer of its own.

Lines are handed to the room while flood control allows, while the connection's own output
is under half of ``max_sendq`` (a client that floods itself with replies or echoes is slowed
to the pace it reads them, not dropped: a reader is dropped as slow only past the whole
``max_sendq``), and up to ``input_per_flush`` bytes between two flushes, so no one connection
fills a flush with a megabyte of echoes. Its output goes through a
:class:`~chatroom.server.adapter.sendq.SendQueue`; an upgrade carries it, its input and its
flood control to the new process (:meth:`ClientConnection.carry`, carried.py).
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
from chatroom.server.adapter.carried import Carried
from chatroom.server.adapter.idle_timer import IdleTimer
from chatroom.server.adapter.sendq import SendQueue
from chatroom.server.config import ServerConfig
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.codec import LineDecoder, LineTooLong
from chatroom.server.core.inputs import Connected, LineReceived, Paced, TimerFired
from chatroom.server.core.ratelimit import TokenBucket

log = logging.getLogger("chatroom.server")
HOLDING = object()  # a connection's _carried while an upgrade's freeze holds its input


class ConnectionOwner(Protocol):
    """What a connection tells the server, and the little it asks."""

    def event(
        self, conn: ClientConnection, event: Connected | LineReceived | TimerFired | Paced
    ) -> float | None:
        """Hand the room ``event`` of this connection (it is made, a line arrived and flood
        control let it through, its timer fired, flood control started pacing it). For
        Connected and TimerFired: in how many seconds the connection should hand it the
        next TimerFired (None: never)."""

    def input_finished(self, conn: ClientConnection) -> None:
        """The peer half-closed and every line it sent has been handled."""

    def ended(self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None) -> None:
        """The connection is closed, whatever the cause; nothing more will come from it."""

    def owed(self, conn: ClientConnection) -> int:
        """Bytes queued for this connection alone and not yet handed to its transport."""

    def after_flush(self, conn: ClientConnection) -> None:
        """Call :meth:`ClientConnection.resume_input` once the queued output is written."""

    def answer_in_crlf(self, conn: ClientConnection) -> None:
        """The client ends its lines in "\\r\\n" (or speaks telnet): answer it so."""


class ClientConnection(asyncio.BufferedProtocol):
    """One client's connection (the module's docstring: its input, bounded as a RecvQ)."""

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
        "_paced",
        "_resume_handle",
        "_idle",
        "_linger_handle",
        "_eof",
        "closing",
        "_reading_paused",
        "_held_back",
        "_out",
        "_named",
        "_first",
        "_crlf",
        "_carried",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        conn_id: int,
        config: ServerConfig,
        loop: asyncio.AbstractEventLoop,
        read_buffer: memoryview,
        named: tuple[str, int] | None = None,
        first: bytes = b"",
        carried: Carried | None = None,
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
        self._paced = False  # flood control is pacing it (the room was told): until full
        self._resume_handle: asyncio.TimerHandle | None = None
        self._idle = IdleTimer()
        self._linger_handle: asyncio.TimerHandle | None = None
        self._eof = False  # the peer will send nothing more
        self.closing = False  # no more output is accepted; the transport is being closed
        self._reading_paused = False
        self._held_back = False  # lines wait for our output to drain or for the next flush
        self._out = SendQueue(config.max_sendq)  # output not yet taken by the kernel
        self._named = named  # the client a PROXY header named (None: the socket's peer)
        self._first = first  # its input read before the connection was made
        self._crlf = False  # answered in "\r\n" (the owner was told)
        self._carried: Carried | object | None = carried  # an upgrade brought it (or HOLDING)
        if carried is not None:
            self.peer, self._decoder = carried.peer, carried.decoder
            self._next_line, self._bucket = carried.next_line, carried.bucket
            self._paced, self._eof, self._crlf = carried.paced, carried.eof, carried.crlf
            self._held_back = True  # its input waits for hold(False): every transport made

    # --- asyncio.BufferedProtocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not asserted to be an asyncio.Transport: uvloop's transports are another class.
        self.transport = transport  # type: ignore[assignment]
        self._out.attach(transport)  # type: ignore[arg-type]
        if isinstance(self._carried, Carried):  # what the old process owed goes first
            transport.set_write_buffer_limits(high=max(1, self.config.max_sendq // 2))
            if self._carried.unsent:
                self.write(self._carried.unsent)
            if self._carried.closing:
                self.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Keep the kernel's share of a stalled reader's backlog small, so --max-sendq
            # (counted in our buffers) is what decides when a reader is too slow.
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.config.kernel_send_buffer)
        peer = self._named or transport.get_extra_info("peername")
        if not peer:
            # Reset before we accepted it (an RST storm, a port scan): nobody is there, and
            # without an address it cannot be told apart from the next one.
            log.debug("connection %d reset before it was accepted", self.conn_id)
            transport.abort()
            return
        host, port = peer[0], peer[1]
        if self.config.rate > 0:
            self._bucket = TokenBucket(self.config.rate, self.config.burst, time.monotonic())
        self.peer = peer_id(host, port)
        # Paused (and told when it drains) at half the send queue: a client's own replies
        # wait there, leaving the other half for what everyone else says.
        transport.set_write_buffer_limits(high=max(1, self.config.max_sendq // 2))
        self._idle.arm(self, self.owner.event(self, Connected(self.conn_id, host, port)))
        if self._first and not self.closing:
            first, self._first = self._first, b""
            self._decoder.push(first)
            self._handle_lines()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self._decoder.push(self._read_buffer[:nbytes])
        self._handle_lines()

    def eof_received(self) -> bool:
        self._eof = True
        self._decoder.close()
        self._handle_lines()
        return True  # keep our side open: what we owe the peer is still to be written

    def pause_writing(self) -> None:
        self._out.paused = True

    def resume_writing(self) -> None:
        self._out.drained(send=not self.closing)
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
        if self._held_back and self._carried is None:
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
            if self._out.paused:  # resume_writing() calls resume_input()
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
                now = time.monotonic()
                if self._paced and self._bucket.available(now) >= self._bucket.burst:
                    self._paced = False  # the episode is over: its bucket filled again
                wait = self._bucket.delay(now)
                if wait > 0:
                    self._next_line = line
                    self._resume_handle = self.loop.call_later(wait, self._resume)
                    if not self._paced:  # once an episode: the room decides what it says
                        self._paced = True
                        owner.event(self, Paced(self.conn_id, wait))
                    break
            self._next_line = None
            budget -= len(line) + 1 if isinstance(line, str) else config.max_line
            owner.event(self, LineReceived(self.conn_id, line))
        if decoder.crlf:  # before the flush that answers these lines
            self._speaks_crlf()
        if exhausted and self._eof and not self.closing:
            owner.input_finished(self)
        self._read_while_room()

    def _speaks_crlf(self) -> None:
        """The client ends its lines in "\\r" or speaks telnet: answer it in "\\r\\n", and
        answer its telnet negotiation (its refusals, a few bytes at most)."""
        if not self._crlf:
            self._crlf = True
            framed = self.transport is not None and self.transport.get_extra_info("framed")
            if not framed:  # a WebSocket's messages have no line ends to answer in
                self.owner.answer_in_crlf(self)
        replies = self._decoder.take_replies()
        if replies:
            self.write(replies)

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
        return self._out.behind() + self.owner.owed(self)

    # --- timers ---

    def idle_busy(self) -> bool:
        """Whether lines wait for a token or for our output to drain (activity, not idle)."""
        return self._next_line is not None or self._held_back

    def idle_check(self) -> float | None:
        """The room judges whether we are idle: in how long to ask again (None: never)."""
        return None if self.closing else self.owner.event(self, TimerFired(self.conn_id))

    def _cancel_timers(self) -> None:
        self._idle.cancel()
        for handle in (self._resume_handle, self._linger_handle):
            if handle is not None:
                handle.cancel()
        self._resume_handle = self._linger_handle = None

    # --- output ---

    def write(self, data: bytes) -> bool:
        """Write, unless the peer is already more than ``max_sendq`` bytes behind: then
        False (sendq.py: the backlog *before* this write counts)."""
        if self.closing or self.transport is None:
            return True
        return self._out.write(data)

    # --- an upgrade's handover (upgrade.py, takeover.py) ---

    def hold(self, holding: bool = True, idle_delay: float | None = None) -> None:
        """Read and hand on nothing (an upgrade's freeze), or, ``holding`` False, go on: in
        the old process after a failed handover, in the new one once every transport is
        made (``idle_delay``: its idle timer, from the room's deadline)."""
        if self.transport is None or self.closing:
            return
        if holding:  # (a pacing timer or a flush's resume_input now hands on nothing)
            self._carried, self._held_back = HOLDING, True
            self.transport.pause_reading()
            return
        self._carried = None
        self._idle.arm(self, idle_delay)
        if not (self._eof or self._reading_paused):
            self.transport.resume_reading()
        self.resume_input()

    def carry(self) -> Carried:
        """Its state for the new process, the output still unsent included."""
        return Carried(
            self.conn_id, self.peer, self._named, self._decoder, self._next_line, self._bucket,
            self._paced, self._eof, self._crlf, self._out.unsent(), self.closing,
        )  # fmt: skip

    def close(self) -> None:
        """Close once the transport has written what it holds. Idempotent."""
        if self.transport is None or self.closing:
            return
        self._out.flush_held()
        self.closing = True
        self._cancel_timers()
        self.transport.close()
        # A peer that stops reading must not hold the socket open forever.
        self._linger_handle = self.loop.call_later(self.config.close_linger, self.transport.abort)

    def abort(self) -> None:
        """Drop the connection without flushing (it stopped reading). Idempotent."""
        self.closing = True
        self._cancel_timers()
        self._out.drop()
        if self.transport is not None:
            sock = self.transport.get_extra_info("socket")
            if sock is not None:
                # Reset rather than FIN: the kernel frees the unsent backlog at once instead
                # of holding it in FIN-WAIT for a peer that is not reading.
                # (A socket already closed under us has fd -1: ValueError.)
                with contextlib.suppress(OSError, ValueError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
