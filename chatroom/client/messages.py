"""The Textual messages the link's worker posts to the chat screen."""

from __future__ import annotations

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
