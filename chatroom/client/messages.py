"""The Textual messages the connection worker posts to the chat screen."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from textual.message import Message

from chatroom.protocol import Event, UnknownEvent


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass
class ServerEventReceived(Message):
    """One event from the server; the chat screen handles them all in one place."""

    event: Event | UnknownEvent


@dataclass
class LinkChanged(Message):
    """The connection changed state; ``detail`` says why, for people."""

    state: LinkState
    detail: str = ""
    retry_in: float | None = None  # seconds until the next automatic attempt
    first_attempt: bool = False  # a failure here means the server was never reached
