"""The Textual application: app-wide bindings and theme; the chat screen does the rest."""

from __future__ import annotations

import os
from collections import deque

from textual import events
from textual._ansi_sequences import ANSI_SEQUENCES_KEYS
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from chatroom.client import notifier
from chatroom.client.connection import ServerConnection
from chatroom.client.screens.chat import ChatScreen
from chatroom.client.settings import ClientSettings
from chatroom.client.widgets.conversations import ConversationView


def read_alt_digits_as_alt() -> None:
    """Alt+1 … Alt+9 from a real terminal: it sends ESC 1 … ESC 9, which Textual's table
    reads as macOS's Option characters (``¡ ™ £ ¢ ∞ § ¶ • ª``), so the bindings never saw
    them (Pilot sends ``alt+1`` itself, which is why only tmux showed it). Without those
    entries the parser reads them as it reads ESC l: ``alt+1`` … ``alt+9``. A ``¡`` typed
    as such (one character, no ESC) is untouched. (textual is pinned: a private table.)"""
    for digit in "123456789":
        ANSI_SEQUENCES_KEYS.pop(f"\x1b{digit}", None)


class ChatApp(App[None]):
    CSS_PATH = "client.tcss"
    TITLE = "chatroom"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", priority=True)]
    ENABLE_COMMAND_PALETTE = False

    def __init__(
        self,
        settings: ClientSettings,
        *,
        connection: ServerConnection | None = None,
        autoconnect: bool = True,
    ) -> None:
        """``connection``: one the command line opened already (used first);
        ``autoconnect`` False: never connect (the screen is fed events by hand, in tests)."""
        super().__init__()
        read_alt_digits_as_alt()
        self.failure: str | None = None  # why the server could not be reached at all
        self.chat = ChatScreen(settings, connection=connection, autoconnect=autoconnect)
        self.notify_method = notifier.choose(notifier.Method(settings.notify), os.environ)
        self.in_tmux = bool(os.environ.get("TMUX"))
        self.desktop_notifications: deque[str] = deque(maxlen=20)  # what was written, last

    def notify_desktop(self, title: str, text: str) -> None:
        """A mention: a desktop notification where the terminal supports one, else the bell."""
        sequence = notifier.sequence(self.notify_method, title, text, tmux=self.in_tmux)
        if not sequence:
            return
        self.desktop_notifications.append(sequence)
        if not self.is_headless and self._driver is not None:
            self._driver.write(sequence)
            self._driver.flush()

    def on_app_blur(self, event: events.AppBlur) -> None:
        # The terminal lost the focus (where it reports it): the read marker goes here.
        # (It may come before the screen is composed: a browser's page loses the focus.)
        for view in self.chat.query(ConversationView):
            view.mark_read()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self.chat.key_pressed()  # whatever screen has it: the person is at the keyboard
        await super().on_event(event)

    def get_default_screen(self) -> Screen:
        return self.chat

    def fail(self, reason: str) -> None:
        """Give up before the first connection: the command line prints ``reason``."""
        self.failure = reason
        self.exit(return_code=1)

    async def action_quit(self) -> None:
        """Ctrl+Q: tell the room we are leaving, then exit with status 0."""
        await self.chat.leave_room()
        self.exit()
