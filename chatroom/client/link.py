"""The link to the server: connect, read events, and reconnect as the policy says. No
Textual.

:class:`Link` runs the loop the chat screen starts in a worker (:meth:`Link.run`): it
reports each change of the link's state as a :class:`LinkStatus` and passes every server
event on, in order, through the two functions it is given (the screen posts them to
itself as messages). When a connection ends, :class:`~chatroom.client.connection
.ReconnectPolicy` decides whether and when to try again; a run that never got through
(the server could not be reached when the client started, or when the user pressed
Ctrl+R) gives up at once, and the session says so. Lines go out through :meth:`Link.send`,
which says whether there was a connection to send them on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chatroom.client.connection import (
    ReconnectPolicy,
    ServerConnection,
    describe_failure,
    failure_cause,
)
from chatroom.client.settings import ClientSettings
from chatroom.protocol import Event, UnknownEvent
from chatroom.protocol import commands as c


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    """The link changed state; ``detail`` says why, for people."""

    state: LinkState
    detail: str = ""
    retry_in: float | None = None  # seconds until the next automatic attempt
    first_attempt: bool = False  # a failure here means the server was never reached


class Link:
    def __init__(self, settings: ClientSettings, opened: ServerConnection | None = None) -> None:
        self.settings = settings
        self.policy = ReconnectPolicy(settings.reconnect)
        self.connection: ServerConnection | None = None
        self.ever_connected = False
        self._opened = opened  # opened before the UI started (the command line): used first

    async def run(
        self,
        status: Callable[[LinkStatus], object],
        event: Callable[[Event | UnknownEvent], object],
    ) -> None:
        """Connect, pass every event on, and reconnect as the policy says; return when it
        says to wait for the user."""
        settings = self.settings
        first_attempt = not self.ever_connected
        self.policy.connected()  # a run (the start, or Ctrl+R) begins with the shortest wait
        while True:
            status(LinkStatus(LinkState.CONNECTING, settings.address))
            try:
                connection, self._opened = self._opened, None
                if connection is None:
                    connection = await ServerConnection.open(
                        settings.host, settings.port, tls=settings.tls
                    )
            except (OSError, TimeoutError) as exc:
                cause, detail = failure_cause(exc), describe_failure(exc)
            else:
                self.connection = connection
                self.ever_connected = True
                self.policy.connected()
                first_attempt = False
                status(LinkStatus(LinkState.CONNECTED))
                try:
                    async for received in connection.events():
                        event(received)
                finally:
                    self.connection = None
                    await connection.close()
                cause, detail = connection.cause, str(connection.cause)
            delay = None if first_attempt else self.policy.next_delay(cause)
            status(
                LinkStatus(
                    LinkState.DISCONNECTED, detail, retry_in=delay, first_attempt=first_attempt
                )
            )
            if delay is None:
                return
            await asyncio.sleep(delay)

    def send(self, line: str) -> bool:
        """Queue one line for the server; False when there is no connection to send it on."""
        if self.connection is None or not self.connection.is_open:
            return False
        self.connection.send(line)
        return True

    async def leave(self, reason: str | None = None) -> None:
        """Say goodbye to the room (``/quit``) and close the connection."""
        connection = self.connection
        if connection is not None and connection.is_open:
            connection.send(c.format_line(c.Quit(reason)))
            await connection.close(timeout=0.5)
