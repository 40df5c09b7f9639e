"""Ctrl+F: search the log shown. Typing finds the newest line with the text (from where the
view is); Enter, Up or Ctrl+F again go to older matches, Down to newer ones; Esc closes."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class SearchBar(Input):
    DEFAULT_CSS = """
    SearchBar {
        display: none;
        border: tall $warning 50%;
        &:focus { border: tall $warning; }
        &.-shown { display: block; }
    }
    """
    BINDINGS = [
        Binding("enter,up,ctrl+f", "step(True)", "Older match", key_display="Enter/↑"),
        Binding("down", "step(False)", "Newer match", key_display="↓"),
        Binding("escape", "close", "Close search", key_display="Esc"),
    ]

    class Step(Message):
        """Search for the bar's text: ``older`` (or newer) than the match shown; ``again``
        False when the text changed (search from the view again)."""

        def __init__(self, query: str, older: bool, again: bool) -> None:
            super().__init__()
            self.query, self.older, self.again = query, older, again

    class Closed(Message):
        """The search bar closed."""

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="search the log · Enter/↑ older · ↓ newer · Esc", **kwargs)

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_step(self, older: bool) -> None:
        self.post_message(self.Step(self.value, older, again=True))

    def action_close(self) -> None:
        self.remove_class("-shown")
        self.post_message(self.Closed())

    def _watch_value(self, value: str) -> None:
        super()._watch_value(value)
        if self.has_class("-shown"):
            self.post_message(self.Step(value, older=True, again=False))
