"""A WebSocket seen as a transport, so that the room's own connection class drives it.

:class:`~chatroom.server.adapter.connection.ClientConnection` owns everything a connection
does for the room — the line decoder and its RecvQ, flood control, the idle timer, the
bounded send queue, the one close path. It talks to an asyncio transport through a few
calls (``write``, ``close``, ``abort``, ``pause_reading``, ``get_write_buffer_size``...)
and is told of flow control and the end through its protocol methods. :class:`WebSocketTransport`
presents those calls over one websockets connection, so a WebSocket client is, to that
class and to the room, a connection like any other:

- each text message received is one line: its bytes, with a line end if it has none, are
  handed over as a read (``buffer_updated``), so the same decoder, limits and pacing apply;
- each line written becomes one text frame (:class:`TextFrames`), written to the socket
  with the rest of the flush in one ``write``;
- ``pause_reading`` stops taking messages (the RecvQ is full), ``close`` is a WebSocket
  close (1000), ``abort`` drops the TCP connection;
- the real transport's buffer is what ``max_sendq`` is measured against, and its
  ``pause_writing``/``resume_writing`` reach the connection (:class:`DoorConnection`).

:class:`DoorConnection` is websockets' server connection, with these changes: it counts
its upgrade against ``--max-per-ip`` (a gate the door gives it); it hands each complete
text message on as its frames are parsed, refusing binary, non-UTF-8 and over-fragmented
messages with a close; it stops reading while its own output is backed up (so pongs for a
flood of pings from a client that does not read cannot pile up); it passes the
flow-control calls on to the transport's protocol; and it runs under the server's own TLS
layer (a buffered protocol's reads, no half-close).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import State

TOO_MANY = "too many connections from your address; try again later\n"
BINARY_REFUSED = "binary messages are not accepted: send each line as a text message"
_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class TextFrames:
    """Each line of a payload as one unmasked text frame (line end dropped).

    The room writes a broadcast as one bytes object to everyone who got only broadcasts:
    the frames of the last payload are kept, so a fan-out frames each broadcast once."""

    __slots__ = ("_payload", "_frames")

    def __init__(self) -> None:
        self._payload: bytes | None = None
        self._frames = b""

    def __call__(self, payload: bytes) -> bytes:
        if payload is self._payload:
            return self._frames
        lines = payload.split(b"\n")
        if not lines[-1]:
            lines.pop()
        frames = b"".join(Frame(Opcode.TEXT, line).serialize(mask=False) for line in lines)
        self._payload, self._frames = payload, frames
        return frames


class DoorConnection(ServerConnection):
    """websockets' connection for one socket of the door (see the module's docstring).

    Messages are taken as websockets' parser yields their frames, in ``data_received``:
    each complete text message goes to the transport's protocol at once, the way a TCP
    read does, rather than one message per turn of the loop through a queue and a task
    (which at fan-out rates costs more than the room). The real transport stops reading
    while any of these holds: the room's RecvQ is full (``recvq``), its output is backed up
    (``writes``), or the room has not taken the connection yet (``early``)."""

    # Set by the door's factory before the transport is made.
    gate: Callable[[DoorConnection], str | None]
    release: Callable[[str], None]
    read_buffer: memoryview  # where a TLS layer's reads land (get_buffer), shared
    max_fragments: int = 64  # frames one message may come in

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate_key: str | None = None  # the handshake's place under --max-per-ip
        self.adapter: WebSocketTransport | None = None  # once the room has it
        self.client: tuple[str, int] | None = None  # the forwarded client, if trusted
        self.failure: str | None = None  # why we closed it, if the peer misbehaved
        self._paused_for: set[str] = set()
        self._parts: list[bytes] = []  # the frames of a message not complete yet
        self._binary = False
        self._early: list[str] = []  # messages before the room took the connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not hasattr(transport, "can_write_eof"):
            transport = _NoHalfClose(transport)  # the server's own TLS layer (tls_stream.py)
        super().connection_made(transport)
        key = self.gate(self)
        if key is None:  # answered before the request is read, as a TLS handshake is refused
            refusal = self.protocol.reject(HTTPStatus.SERVICE_UNAVAILABLE, TOO_MANY)
            transport.write(refusal.serialize())
            transport.close()
            return
        self.gate_key = key

    def handshake_over(self) -> None:
        """The upgrade is answered (or failed): it no longer counts against --max-per-ip."""
        key, self.gate_key = self.gate_key, None
        if key is not None:
            self.release(key)

    def connection_lost(self, exc: Exception | None) -> None:
        self.handshake_over()
        super().connection_lost(exc)

    # --- input ---------------------------------------------------------------------------

    # Under TLS the server's TlsStream hands its inner protocol the plaintext as a buffered
    # protocol's reads.
    def get_buffer(self, sizehint: int) -> memoryview:
        return self.read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(self.read_buffer[:nbytes]))

    def process_event(self, event: Any) -> None:
        if self.request is None:  # the upgrade request
            super().process_event(event)
            return
        if event.opcode not in _DATA:  # pings, pongs, close
            super().process_event(event)
            if event.opcode is Opcode.CLOSE:
                self._peer_closed()
            return
        if self.failure is not None or (self.adapter is not None and self.adapter.closing):
            return  # we are closing it: what still arrives is not read
        # (The peer's own close may already be parsed, in the same read: what it sent before
        # that is still read.)
        if event.opcode is not Opcode.CONT:
            self._parts.clear()
            self._binary = event.opcode is Opcode.BINARY
        self._parts.append(event.data)
        if len(self._parts) > self.max_fragments:
            self.refuse(CloseCode.MESSAGE_TOO_BIG, f"more than {self.max_fragments} fragments")
            return
        if not event.fin:
            return
        data = b"".join(self._parts) if len(self._parts) > 1 else bytes(self._parts[0])
        self._parts.clear()
        if self._binary:
            self.refuse(CloseCode.UNSUPPORTED_DATA, BINARY_REFUSED)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            self.refuse(CloseCode.INVALID_DATA, f"not UTF-8: {exc.reason} at position {exc.start}")
            return
        if self.adapter is not None:
            self.adapter.deliver(text)
            return
        self._early.append(text)
        self.pause_reading_for("early")

    def refuse(self, code: CloseCode, reason: str) -> None:
        """The peer sent what a line cannot be: close with ``code`` and ``reason``."""
        self.failure = f"closed {int(code)}: {reason}"
        self.protocol.send_close(code, reason)
        self.send_data()

    def take_early(self) -> list[str]:
        """The messages that came before the room took the connection (reading resumes)."""
        early, self._early = self._early, []
        self.resume_reading_for("early")
        return early

    def _peer_closed(self) -> None:
        if self.adapter is not None and not self.adapter.closing and self.failure is None:
            # The peer said goodbye: as a TCP peer's end of input, the lines it sent are
            # still handled (flood control allowing), then it leaves.
            self.adapter.eof = True
            self.adapter.protocol.eof_received()

    # --- flow control --------------------------------------------------------------------

    def pause_reading_for(self, reason: str) -> None:
        if not self._paused_for:
            with contextlib.suppress(RuntimeError):  # closed under us
                self.transport.pause_reading()
        self._paused_for.add(reason)

    def resume_reading_for(self, reason: str) -> None:
        if reason not in self._paused_for:
            return
        self._paused_for.discard(reason)
        if not self._paused_for:
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        self.pause_reading_for("writes")
        if self.adapter is not None:
            self.adapter.protocol.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        self.resume_reading_for("writes")
        if self.adapter is not None:
            self.adapter.protocol.resume_writing()


class WebSocketTransport:
    """The transport interface :class:`ClientConnection` uses, over one WebSocket."""

    __slots__ = ("ws", "peername", "frames", "protocol", "closing", "eof", "ended", "_tasks")

    def __init__(
        self,
        ws: DoorConnection,
        peername: tuple[str, int],
        frames: TextFrames,
        tasks: set[asyncio.Task[Any]],
    ) -> None:
        self.ws = ws
        self.peername = peername  # the client: the peer, or whom a trusted proxy names
        self.frames = frames
        self.protocol: Any = None  # the ClientConnection
        self.closing = False  # close() or abort() was called
        self.eof = False  # the peer closed: its last lines are being handled
        self.ended = asyncio.Event()  # set by close() and abort(): the owner is done
        self._tasks = tasks

    def attach(self, protocol: Any) -> None:
        """Make ``protocol`` (a ClientConnection) this transport's, as asyncio would."""
        self.protocol = protocol
        protocol.connection_made(self)
        if self.ws.paused:  # already backed up (a burst of pongs)
            protocol.pause_writing()
        self.ws.adapter = self
        for text in self.ws.take_early():
            self.deliver(text)
        if self.ws.protocol.close_rcvd is not None and self.ws.failure is None:
            self.eof = True  # it said goodbye already: its lines, then it leaves
            protocol.eof_received()

    def deliver(self, message: str) -> None:
        """One text message: one line, handed to the protocol as read bytes."""
        data = message.encode()
        if not data.endswith(b"\n"):
            data += b"\n"
        protocol = self.protocol
        buffer = protocol.get_buffer(-1)
        size = len(buffer)
        for start in range(0, len(data), size):
            if protocol.closing:
                return
            chunk = data[start : start + size]
            buffer[: len(chunk)] = chunk
            protocol.buffer_updated(len(chunk))

    # --- asyncio.Transport, as much of it as ClientConnection uses -------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.peername
        return self.ws.transport.get_extra_info(name, default)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.ws.transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self.ws.transport.get_write_buffer_size()

    def write(self, data: bytes) -> None:
        if self.closing or self.ws.protocol.state is not State.OPEN:
            return  # the peer closed: nobody reads this any more
        self.ws.transport.write(self.frames(data))

    def pause_reading(self) -> None:
        self.ws.pause_reading_for("recvq")

    def resume_reading(self) -> None:
        self.ws.resume_reading_for("recvq")

    def close(self) -> None:
        """A WebSocket close (1000) after what was written. Idempotent."""
        if self.closing:
            return
        self.closing = True
        self.ended.set()
        if self.ws.protocol.state is State.OPEN:
            task = asyncio.ensure_future(self.ws.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def abort(self) -> None:
        self.closing = True
        self.ended.set()
        self.ws.transport.abort()


class _NoHalfClose:
    """A transport without ``can_write_eof`` (the server's TLS layer), as websockets wants
    it: one that cannot half-close, so it closes."""

    __slots__ = ("_transport",)

    def __init__(self, transport: Any) -> None:
        self._transport = transport

    def can_write_eof(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
