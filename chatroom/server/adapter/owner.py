"""What a connection tells its owner (the server, adapter/app.py), and the little it asks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from chatroom.protocol import LeaveReason
from chatroom.server.core.inputs import Connected, LineReceived, Paced, TimerFired

if TYPE_CHECKING:
    from chatroom.server.adapter.connection import ClientConnection


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
