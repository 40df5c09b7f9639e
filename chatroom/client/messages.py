"""The Textual messages the link's worker posts to the chat screen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message

from chatroom.client.link import LinkState, LinkStatus
from chatroom.protocol import Event, UnknownEvent

__all__ = ["LinkChanged", "LinkState", "ServerEventReceived", "ServerEventsReceived"]


@dataclass
class ServerEventReceived(Message):
    """One event from the server; the chat screen hands them all to its session."""

    event: Event | UnknownEvent


@dataclass
class ServerEventsReceived(Message):
    """The events read from the server in one go (what the socket had buffered), in
    order: one message for a burst, not one per line."""

    events: list[Event | UnknownEvent]


@dataclass
class LinkChanged(Message):
    """The connection changed state (a :class:`LinkStatus`); ``detail`` says why."""

    state: LinkState
    detail: str = ""
    retry_in: float | None = None  # seconds until the next automatic attempt
    first_attempt: bool = False  # a failure here means the server was never reached

    @classmethod
    def of(cls, status: LinkStatus) -> LinkChanged:
        return cls(status.state, status.detail, status.retry_in, status.first_attempt)

    @property
    def status(self) -> LinkStatus:
        return LinkStatus(self.state, self.detail, self.retry_in, self.first_attempt)


def batched(
    post: Callable[[Message], object],
) -> tuple[Callable[[LinkStatus], None], Callable[[Event | UnknownEvent], None]]:
    """The link's two callbacks, posting its events in batches: the link reads every line
    the socket has buffered before it waits again, and they are posted together once it
    does (``call_soon``), as one :class:`ServerEventsReceived` (bounded by the read
    buffer). A change of the link posts the events before it first, so order is kept."""
    loop = asyncio.get_running_loop()
    pending: list[Event | UnknownEvent] = []

    def post_events() -> None:
        if pending:
            post(ServerEventsReceived(pending.copy()))
            pending.clear()

    def event(received: Event | UnknownEvent) -> None:
        pending.append(received)
        if len(pending) == 1:
            loop.call_soon(post_events)

    def status(changed: LinkStatus) -> None:
        post_events()
        post(LinkChanged.of(changed))

    return status, event
