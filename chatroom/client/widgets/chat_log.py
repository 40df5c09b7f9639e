"""The message log: a bounded RichLog that stays where the reader scrolled to."""

from __future__ import annotations

from textual.widgets import RichLog

from chatroom.client.render import LogLine

DEFAULT_SCROLLBACK = 5000


class ChatLog(RichLog):
    def __init__(self, max_lines: int = DEFAULT_SCROLLBACK, **kwargs) -> None:
        # markup off: remote text must never be read as markup. min_width=1 so lines wrap
        # to the pane instead of widening it.
        super().__init__(max_lines=max_lines, min_width=1, wrap=True, markup=False, **kwargs)
        self.can_focus = True

    def add(self, line: LogLine) -> None:
        # Follow new lines only if the reader is at the bottom already.
        self.write(line.text, scroll_end=self.is_vertical_scroll_end)

    def plain_lines(self) -> list[str]:
        """What the log shows, as plain text (for tests and debugging)."""
        return [strip.text for strip in self.lines]
