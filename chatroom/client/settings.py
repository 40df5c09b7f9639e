"""Everything the user chose for this run of the client, in one frozen object. No Textual.

The command line (chatroom/client/cli.py) builds one :class:`ClientSettings`; the app, the
chat screen, the link and the session each read what they need from it, so no setting is
passed by hand through the layers. Tests build their own (a short backoff, UTC).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path

from chatroom.client.connection import Backoff, shown_address

DEFAULT_SCROLLBACK = 5000  # log lines kept (--scrollback)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    host: str
    port: int
    name: str | None = None  # --name, or the login name: claimed on every connection
    tls: ssl.SSLContext | None = None  # tls:// or --tls (with --cafile's CAs)
    password: str | None = None  # --password-file's text: sent once per connection, asked
    # --account-password-file's text: the name is claimed with /login NAME PASSWORD (it is
    # registered) rather than /nick NAME, on every connection.
    account_password: str | None = None
    scrollback: int = DEFAULT_SCROLLBACK  # log lines kept, and chat remembered for replays
    tz: tzinfo | None = None  # the log's clock; None: the local time zone
    reconnect: Backoff = field(default_factory=Backoff)  # waits between automatic attempts
    seconds: bool = False  # --seconds: times as HH:MM:SS
    log_dir: Path | None = None  # --log DIR: each conversation written to a plain file
    notify: str = "auto"  # --notify: how a mention reaches the desktop (notifier.py)
    now: Callable[[], float] = time.time  # the wall clock (tests: a fixed one)

    @property
    def address(self) -> str:
        """The server as the client shows it (``tls://`` in front for TLS)."""
        return shown_address(self.host, self.port, self.tls is not None)

    def __repr__(self) -> str:  # the password is never shown in a log or a traceback
        password = None if self.password is None else "***"
        account = None if self.account_password is None else "***"
        return (
            f"ClientSettings(address={self.address!r}, name={self.name!r}, "
            f"password={password}, account_password={account}, scrollback={self.scrollback})"
        )
