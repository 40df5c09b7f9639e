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

:class:`DoorConnection` is websockets' server connection with three additions: it counts
its handshake against ``--max-per-ip`` (a gate the door gives it), it stops reading while
its own output is backed up (so pongs for a flood of pings from a client that does not
read cannot pile up), and it passes the flow-control calls on to the transport's protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

TOO_MANY = "too many connections from your address; try again later\n"


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
    """websockets' connection for one socket of the door (see the module's docstring)."""

    # Set by the door's factory before the transport is made.
    gate: Callable[[DoorConnection], str | None]
    release: Callable[[str], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate_key: str | None = None  # the handshake's place under --max-per-ip
        self.adapter: WebSocketTransport | None = None  # once the room has it
        self.client: tuple[str, int] | None = None  # the forwarded client, if trusted
        self._paused_for = set()  # why reading is paused: "queue" (websockets), "writes"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.recv_messages.pause = lambda: self._pause_reading("queue")
        self.recv_messages.resume = lambda: self._resume_reading("queue")
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

    def _pause_reading(self, reason: str) -> None:
        if not self._paused_for:
            with contextlib.suppress(RuntimeError):  # closed under us
                self.transport.pause_reading()
        self._paused_for.add(reason)

    def _resume_reading(self, reason: str) -> None:
        self._paused_for.discard(reason)
        if not self._paused_for:
            with contextlib.suppress(RuntimeError):
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._pause_reading("writes")
        if self.adapter is not None:
            self.adapter.protocol.pause_writing()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._resume_reading("writes")
        if self.adapter is not None:
            self.adapter.protocol.resume_writing()


class WebSocketTransport:
    """The transport interface :class:`ClientConnection` uses, over one WebSocket."""

    __slots__ = ("ws", "peername", "frames", "protocol", "reading", "closing", "ended", "_tasks")

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
        self.reading = asyncio.Event()  # clear: the RecvQ is full, take no message
        self.reading.set()
        self.closing = False  # close() or abort() was called
        self.ended = asyncio.Event()  # set by close() and abort(): the owner is done
        self._tasks = tasks

    def attach(self, protocol: Any) -> None:
        """Make ``protocol`` (a ClientConnection) this transport's, as asyncio would."""
        self.protocol = protocol
        self.ws.adapter = self
        protocol.connection_made(self)
        if self.ws.paused:  # already backed up (a burst of pongs)
            protocol.pause_writing()

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
        self.reading.clear()

    def resume_reading(self) -> None:
        self.reading.set()

    def close(self) -> None:
        """A WebSocket close (1000) after what was written. Idempotent."""
        if self.closing:
            return
        self.closing = True
        self.reading.set()
        self.ended.set()
        if self.ws.protocol.state is State.OPEN:
            task = asyncio.ensure_future(self.ws.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def abort(self) -> None:
        self.closing = True
        self.reading.set()
        self.ended.set()
        self.ws.transport.abort()
