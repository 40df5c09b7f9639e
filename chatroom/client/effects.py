"""What the session asks the chat screen to do: small frozen values. No Textual.

The session (chatroom/client/session.py) decides; it returns a list of these, in order,
and the screen carries each one out (``ChatScreen.apply``) and decides nothing. Tests read
them as values.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatroom.client.link import LinkState
from chatroom.client.log_buffer import Conversation, RoomRef
from chatroom.client.own_requests import NameAnswer
from chatroom.client.render import LogLine
from chatroom.client.roster import Roster


@dataclass(frozen=True, slots=True)
class ShowLine:
    """Add ``line`` to the log of a conversation: a room's (a ``RoomRef``), the private one
    with the user named ``conversation``, or (None) the room shown last."""

    line: LogLine
    conversation: Conversation = None


@dataclass(frozen=True, slots=True)
class ShowUsers:
    """Show these users ((id, name), sorted) in the list, with their marks."""

    users: tuple[tuple[str, str], ...]
    own_id: str | None
    operators: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()
    registered: frozenset[str] = frozenset()  # ids whose names are registered
    away: frozenset[str] = frozenset()

    @classmethod
    def of(cls, roster: Roster) -> ShowUsers:
        """The users as ``roster`` has them now, with every mark."""
        return cls(
            tuple(roster.users()),
            roster.own_id,
            frozenset(roster.operators()),
            frozenset(roster.ignored()),
            frozenset(roster.registered()),
            frozenset(roster.away()),
        )


@dataclass(frozen=True, slots=True)
class ShowName:
    """Our own name, in the header."""

    name: str | None


@dataclass(frozen=True, slots=True)
class ShowTopic:
    """The room's topic, in the header (None or "": none)."""

    text: str | None


@dataclass(frozen=True, slots=True)
class ShowLink:
    """The link's state in the header, with its reason and next step."""

    state: LinkState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    """Someone wants our attention (a mention, a private message): the bell and a toast."""

    title: str
    text: str


@dataclass(frozen=True, slots=True)
class Warn:
    """A toast in the error colour, without the bell (the server is closing the link)."""

    text: str


@dataclass(frozen=True, slots=True)
class AskPassword:
    """Ask for the room's password (unless the dialog is open); ``reason``: the last try's."""

    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OpenRenameDialog:
    """Ask the user for another name (unless the dialog is open)."""

    reason: str | None = None
    suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class AnswerRenameDialog:
    """The server answered the name the rename dialog asked for."""

    answer: NameAnswer


@dataclass(frozen=True, slots=True)
class StartCountdown:
    """The idle countdown began (or began again): show ``Session.idle.left()`` as it runs."""


@dataclass(frozen=True, slots=True)
class StopCountdown:
    """No idle countdown any more: hide it."""


@dataclass(frozen=True, slots=True)
class StartPrivateMessage:
    """Start a ``/msg NAME `` line in the input, for the user to finish."""

    name: str


@dataclass(frozen=True, slots=True)
class GiveBack:
    """Put ``text`` back in the input line (unless the user typed something since): a line
    the server refused as too long, so it is not lost."""

    text: str


@dataclass(frozen=True, slots=True)
class ClearLog:
    """``/clear``: empty the conversation shown."""


@dataclass(frozen=True, slots=True)
class OpenConversation:
    """Show a conversation (made if needed): the private one with ``name``, or a room's."""

    name: str | RoomRef


@dataclass(frozen=True, slots=True)
class NameRoom:
    """The welcome named the room the client is in: the unnamed room's log becomes its."""

    room: RoomRef


@dataclass(frozen=True, slots=True)
class CloseRoom:
    """The client is no longer in ``room`` (parted, kicked out of it): close its log."""

    room: RoomRef


@dataclass(frozen=True, slots=True)
class ShowRoom:
    """The room the header and the user list follow now (``#dev``; "" for a server
    without rooms)."""

    title: str


@dataclass(frozen=True, slots=True)
class CloseConversation:
    """Close the private conversation shown (the room's stays)."""


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The server could not be reached at all: exit, the command line prints ``reason``."""

    reason: str


Effect = (
    ShowLine
    | ShowUsers
    | ShowName
    | ShowTopic
    | ShowLink
    | Alert
    | Warn
    | AskPassword
    | OpenRenameDialog
    | AnswerRenameDialog
    | StartCountdown
    | StopCountdown
    | StartPrivateMessage
    | GiveBack
    | ClearLog
    | OpenConversation
    | NameRoom
    | CloseRoom
    | ShowRoom
    | CloseConversation
    | GiveUp
)
