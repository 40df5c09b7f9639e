"""The room's password, as the client keeps it for the session. No Textual.

It comes from ``--password-file``, from the dialog, or from a ``/pass`` the user typed, and
is kept for the whole session: a reconnect (a restarted server) sends it again without
asking. A wrong one is forgotten, so the dialog asks. It is sent at most once per
connection, and never logged or shown: only the ``/pass`` line carries it.
"""

from __future__ import annotations

from chatroom.client.own_requests import Send
from chatroom.protocol import commands as c


class Password:
    def __init__(self, secret: str | None = None) -> None:
        self._secret = secret
        self._sent = False  # on this connection

    def __repr__(self) -> str:  # never shown in a log or a traceback
        return "Password(***)"

    def new_connection(self) -> None:
        self._sent = False

    def give(self, send: Send) -> bool:
        """The room asks: send the one kept (once per connection); False if there is
        none to send (ask the user)."""
        if self._secret is None or self._sent:
            return False
        self._sent = send(c.format_line(c.Pass(self._secret)))
        return True

    def entered(self, secret: str, send: Send) -> None:
        """The user gave one (the dialog, or ``/pass`` typed and sent)."""
        self._secret = secret or None
        self._sent = send(c.format_line(c.Pass(secret))) if secret else False

    def typed(self, secret: str) -> None:
        """A ``/pass SECRET`` the user typed went out: keep it."""
        self._secret = secret or None
        self._sent = True

    def wrong(self) -> None:
        self._secret = None
