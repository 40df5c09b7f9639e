"""Asked when the server says the room needs a password: the secret, typed masked."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class PasswordDialog(ModalScreen[str | None]):
    """Dismissed with the password typed, or None if the user gave up (Escape).

    ``reason`` is the server's word on the last try (``wrong password (2 tries left)``),
    shown above the input. The secret is never shown, logged or kept here.
    """

    AUTO_FOCUS = "#secret"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, address: str, reason: str | None = None) -> None:
        super().__init__()
        self._address = address
        self._reason = reason

    def compose(self) -> ComposeResult:
        with Vertical(id="password-dialog") as dialog:
            dialog.border_title = "This room needs a password"
            yield Label(Content(f"The room at {self._address} asks for its password."))
            yield Label(Content(self._reason or ""), id="password-problem")
            yield Input(password=True, placeholder="password", id="secret")
            with Horizontal(id="password-buttons"):
                yield Button("Enter", variant="primary", id="enter")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted, "#secret")
    @on(Button.Pressed, "#enter")
    def enter(self) -> None:
        secret = self.query_one("#secret", Input).value.strip()
        if secret:
            self.dismiss(secret)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
