"""Asked before an action that cannot be taken back (F4's Ban): a question, then the action
or Cancel. Cancel has the focus: Enter alone never bans anyone."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmDialog(ModalScreen[bool]):
    """Dismissed with True to go ahead, False to cancel."""

    AUTO_FOCUS = "#confirm-cancel"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, question: str, action: str) -> None:
        super().__init__()
        self._title, self._question, self._action = title, question, action

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog") as dialog:
            dialog.border_title = Content(self._title)
            yield Label(Content(self._question), id="confirm-question")
            with Horizontal(id="confirm-buttons"):
                yield Button(Content(self._action), variant="error", id="confirm-yes")
                yield Button("Cancel", id="confirm-cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_cancel(self) -> None:
        self.dismiss(False)
