"""What the client asked the server for, so that each answer goes where it belongs.

No Textual here. The server's answers carry no request id: a ``who`` reply, a ``rename``
of ourselves or a name error look the same whoever asked. :class:`OwnRequests` remembers
the requests that were not simply typed by the user, and routes their answers:

- On every new connection the client sends ``/who``; its reply fills the user list and
  stays out of the log (a ``/who`` the user typed is answered in the log).
- If the name given with ``--name`` is not the one the server gave us, the client claims
  it with ``/nick`` (with ``--account-password-file``, with ``/login NAME PASSWORD``: the
  name is registered). Refused (a wrong password too), the error is logged and the user is
  asked for another name, starting from the refused one. Every rename of ourselves becomes
  the name to claim on the next connection, so a reconnect keeps the name the user last
  had.
- After the server says we are an operator (the fact ``operator``), the client sends
  ``/who`` again (quietly, as on connecting): our own entry's ``op`` is how the user list
  learns it.
- A key pressed while the server's idle warning counts down sends ``/ping``: the server
  counts it as activity and answers a ``pong`` notice to us alone, which stays out of the
  log (a ``/ping`` the user typed is answered in the log).
- The rename dialog asks for a name and waits: a rename to that name or a name error
  answers it (the error is shown in the dialog, not in the log). Once the dialog is gone,
  answers go to the log like any other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chatroom.protocol import Error, ErrorCode, name_key
from chatroom.protocol import commands as c

# The errors a /nick can get back (and a /login: a wrong password too).
NAME_ERRORS = frozenset(
    {ErrorCode.NAME_TAKEN, ErrorCode.NAME_INVALID, ErrorCode.BAD_USAGE, ErrorCode.REGISTERED}
)

# Queues one line for the server; False when there is no connection to send it on.
Send = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class NameGranted:
    """The rename dialog's answer: the server renamed us to ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class NameRefused:
    """The rename dialog's answer: the server kept our name, for ``reason``."""

    reason: str


NameAnswer = NameGranted | NameRefused


@dataclass(frozen=True, slots=True)
class ClaimRefused:
    """The ``--name`` claim was refused: ask the user for a name, starting from ``name``."""

    reason: str
    name: str


class OwnRequests:
    def __init__(self, wanted_name: str | None = None, password: str | None = None) -> None:
        self.wanted_name = wanted_name  # claimed on every connection; follows our renames
        self._password = password  # the registered name's: claimed with /login
        self._who_sent = False  # the /who sent on connecting is unanswered
        self._claimed: str | None = None  # the name claimed on connecting, unanswered
        self._dialog_asked: str | None = None  # the name the rename dialog waits for
        self._pings = 0  # /ping sent by the client itself, unanswered

    @property
    def awaiting_who(self) -> bool:
        """Whether the ``/who`` sent on connecting is still unanswered."""
        return self._who_sent

    def welcomed(self, name: str, send: Send) -> None:
        """A new connection, on which the server calls us ``name``: send our requests."""
        self._who_sent = send(c.format_line(c.Who()))
        self._pings = 0  # a new connection: the old one's answers will never come
        wanted = self.wanted_name
        if wanted and name_key(wanted) != name_key(name):
            claim = c.Nick(wanted) if self._password is None else c.Login(wanted, self._password)
            self._claimed = wanted if send(c.format_line(claim)) else None

    def ask_who(self, send: Send) -> None:
        """Ask for ``who`` again, quietly (after becoming an operator: the mark is in it)."""
        if send(c.format_line(c.Who())):
            self._who_sent = True

    def who_reply_is_ours(self) -> bool:
        """For each ``who`` reply: True if it answers the ``/who`` sent on connecting (it
        fills the user list quietly), False if the user asked (it goes to the log too)."""
        ours, self._who_sent = self._who_sent, False
        return ours

    def ping(self, send: Send) -> bool:
        """Stay in the room: send ``/ping``, whose answer will not be logged."""
        if not send(c.format_line(c.Ping())):
            return False
        self._pings += 1
        return True

    def pong_is_ours(self) -> bool:
        """For each ``pong`` notice: True if it answers a ``/ping`` the client sent itself."""
        if not self._pings:
            return False
        self._pings -= 1
        return True

    def ask_for_name(self, name: str, send: Send) -> bool:
        """The rename dialog asks for ``name``; False if it could not be sent.

        A new request replaces the one before it: the dialog waits for one name at a time.
        """
        if not send(c.format_line(c.Nick(name))):
            return False
        self._dialog_asked = name
        return True

    def forget_name_request(self) -> None:
        """The rename dialog closed: whatever the server answers now goes to the log."""
        self._dialog_asked = None

    def renamed(self, new_name: str) -> NameGranted | None:
        """The server renamed us: the dialog's answer, if that is the name it asked for."""
        self.wanted_name = new_name
        self._claimed = None
        asked = self._dialog_asked
        if asked is None or name_key(asked) != name_key(new_name):
            return None
        self._dialog_asked = None
        return NameGranted(new_name)

    def error(self, event: Error) -> NameRefused | ClaimRefused | None:
        """Where an error goes: the dialog (:class:`NameRefused`, not logged); the log and
        the rename dialog (:class:`ClaimRefused`); or the log only (None)."""
        login_refused = event.code is ErrorCode.BAD_PASSWORD and self._password is not None
        if event.code not in NAME_ERRORS and not login_refused:
            return None
        if self._dialog_asked is not None:
            self._dialog_asked = None
            return NameRefused(event.message)
        if self._claimed is not None:
            claimed, self._claimed = self._claimed, None
            return ClaimRefused(event.message, claimed)
        return None
