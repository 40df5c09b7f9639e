"""A connection's idle timer (:class:`IdleTimer`), apart from the connection it times."""

from __future__ import annotations

import asyncio
from typing import Protocol

from chatroom.server.config import ServerConfig


class ClientConnection(Protocol):
    """What the timer needs of the connection it times (adapter/connection.py's)."""

    loop: asyncio.AbstractEventLoop
    config: ServerConfig
    closing: bool

    def idle_busy(self) -> bool: ...
    def idle_check(self) -> float | None: ...


class IdleTimer:
    """A connection's one idle timer, re-armed from the room's next deadline when it fires.

    Before the room judges the connection idle, what it already sent is taken in. After a
    stall (the process paused, a long GC, a loaded host) every timer is due at once, and an
    event loop may run due timers before it reads the sockets (uvloop does): the check
    waits one more turn of the loop (``idle_defer``), so the lines waiting in the socket are
    read and handled first. Lines held back by flood control or by the connection's own
    output are activity too: then it looks again ``idle_retry`` later, after the room has
    seen them (each handled line moves the deadline).
    """

    __slots__ = ("_handle",)  # the connection rides in the timer's callback: no cycle

    def __init__(self) -> None:
        self._handle: asyncio.TimerHandle | None = None

    def arm(self, conn: ClientConnection, delay: float | None) -> None:
        if delay is not None and not conn.closing:
            self._handle = conn.loop.call_later(delay, self._fired, conn)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fired(self, conn: ClientConnection) -> None:
        # Not call_later(0): libuv runs a zero-delay timer added by a timer in the same pass.
        self._handle = conn.loop.call_later(conn.config.idle_defer, self._check, conn)

    def _check(self, conn: ClientConnection) -> None:
        self._handle = None
        if conn.idle_busy():
            self._handle = conn.loop.call_later(conn.config.idle_retry, self._fired, conn)
            return
        self.arm(conn, conn.idle_check())
