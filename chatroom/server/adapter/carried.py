"""What an upgrade carries of one connection to the new process.

:class:`Carried` is a connection's state apart from its socket: its id (the room knows its
member by it), its half-received input (the line decoder with its partial line, the telnet
filter's state, whether it ends lines in "\\r"), the line popped and waiting for flood
control, its token bucket (monotonic times: CLOCK_MONOTONIC is the whole system's, so they
mean the same in the new process), and the output not yet taken by the kernel (known to
the byte by its :class:`~chatroom.server.adapter.sendq.SendQueue`).
"""

from __future__ import annotations

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
