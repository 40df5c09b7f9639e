"""What an upgrade carries of one connection to the new process, and the send queue's tail.

:class:`Carried` is a connection's state apart from its socket: its id (the room knows its
member by it), its half-received input (the line decoder with its partial line, the telnet
filter's state, whether it ends lines in "\\r"), the line popped and waiting for flood
control, its token bucket (monotonic times: CLOCK_MONOTONIC is the whole system's, so they
mean the same in the new process), and the output not yet taken by the kernel.

That output is known without reading asyncio's private buffer: what the transport still
holds is always the last ``get_write_buffer_size()`` bytes of what was handed to it, and
:class:`SendTail` keeps just enough of the last writes to cut them from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from chatroom.server.core.codec import LineDecoder, LineTooLong
from chatroom.server.core.ratelimit import TokenBucket


@dataclass(slots=True)
class Carried:
    conn_id: int
    peer: str
    named: tuple[str, int] | None
    decoder: LineDecoder
    next_line: str | LineTooLong | None
    bucket: TokenBucket | None
    paced: bool
    eof: bool
    crlf: bool
    unsent: bytes  # output the old process had not handed to the kernel yet
    closing: bool  # the room was done with it: write what it is owed, then close


class SendTail:
    """The writes handed to a transport that may still be (in part) in its buffer."""

    __slots__ = ("_chunks", "_bytes")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._bytes = 0

    def wrote(self, data: bytes, buffered: int) -> None:
        """``data`` was handed to the transport, which now holds ``buffered`` bytes."""
        chunks = self._chunks
        if not buffered:
            if chunks:
                chunks.clear()
                self._bytes = 0
            return
        chunks.append(data)
        self._bytes += len(data)
        while self._bytes - len(chunks[0]) >= buffered:
            self._bytes -= len(chunks.popleft())

    def unsent(self, buffered: int) -> bytes:
        """The ``buffered`` bytes the transport has not sent yet (a suffix of the writes)."""
        if buffered <= 0 or not self._chunks:
            return b""
        return b"".join(self._chunks)[-buffered:]
