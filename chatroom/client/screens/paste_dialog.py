"""Asked once before a paste of many lines goes out (weechat's paste confirmation)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Label

PREVIEW_LINES = 3


class PasteDialog(ModalScreen[bool]):
    """Dismissed with True to send every pasted line, False to send none."""

    AUTO_FOCUS = "#send"
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, lines: tuple[str, ...]) -> None:
        super().__init__()
        self._lines = lines

    def compose(self) -> ComposeResult:
        with Vertical(id="paste-dialog") as dialog:
            dialog.border_title = f"Send {len(self._lines)} lines?"
            preview = list(self._lines[:PREVIEW_LINES])
            if len(self._lines) > PREVIEW_LINES:
                preview.append(f"… and {len(self._lines) - PREVIEW_LINES} more")
            yield Label(Content("\n".join(preview)), id="preview")
            with Horizontal(id="paste-buttons"):
                yield Button(f"Send {len(self._lines)}", variant="primary", id="send")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "send")

    def action_cancel(self) -> None:
        self.dismiss(False)
