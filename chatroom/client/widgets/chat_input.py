"""The input line: Enter sends, Up/Down walk the history, Tab completes names."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widgets import Input

from chatroom.client.completion import TabCompleter
from chatroom.client.input_history import InputHistory
from chatroom.client.outgoing import (
    Paste,
    describe,
    history_form,
    plan_paste,
    private_message_draft,
)


class ChatInput(Input):
    BINDINGS = [
        Binding("up", "history_previous", "Previous line", show=False),
        Binding("down", "history_next", "Next line", show=False),
        Binding("tab", "complete", "Complete name", show=False),
        # irssi/weechat habit: the keys that move through the log work from the input line;
        # Home/End (and Ctrl+A/E, Ctrl+W/U/K) edit the line, as readline does.
        Binding("pageup", "screen.scroll_log('page_up')", "Scroll", key_display="PgUp/PgDn"),
        Binding("pagedown", "screen.scroll_log('page_down')", "Scroll", show=False),
        Binding("ctrl+home", "screen.scroll_log('home')", "Oldest", show=False),
        Binding("ctrl+end", "screen.scroll_log('end')", "Newest", show=False),
        # priority: else the letter a terminal sends with ESC would be typed in
        Binding("alt+b", "cursor_left_word", "Word left", show=False, priority=True),
        Binding("alt+f", "forward_word", "Word right", show=False, priority=True),
    ]

    class MultiLinePaste(Message):
        """A paste with line breaks: the screen sends its lines (or asks first)."""

        def __init__(self, paste: Paste, draft: str) -> None:
            super().__init__()
            self.paste = paste
            self.draft = draft  # the input line before the paste, to restore on cancel

    def __init__(self, names: Callable[[], Iterable[str]], **kwargs) -> None:
        # No select-all on focus: the key that brought the focus back is already typed,
        # and the next one would replace it.
        kwargs.setdefault("select_on_focus", False)
        super().__init__(**kwargs)
        self.history = InputHistory()
        self._completer = TabCompleter()
        self._names = names
        self._hint = ""

    async def action_submit(self) -> None:
        # Clear at once, not when the screen handles the message: keys typed right after
        # Enter already belong to the next line.
        line = self.value
        self.history.add(history_form(line))
        self.value = ""
        self.post_message(self.Submitted(self, line))

    def _on_paste(self, event: events.Paste) -> None:
        # Input keeps only the first line of a paste; every line is wanted here.
        paste = plan_paste(self.value, self.cursor_position, event.text)
        if not paste.lines:
            return  # one line: Input types it in at the cursor, as usual
        event.stop()
        event.prevent_default()
        draft = self.value
        self.value = paste.keep
        self.post_message(self.MultiLinePaste(paste, draft))

    def action_forward_word(self) -> None:
        """Alt+F as readline has it: to the end of this word (or the next one)."""
        value, position = self.value, self.cursor_position
        while position < len(value) and not value[position].isalnum():
            position += 1
        while position < len(value) and value[position].isalnum():
            position += 1
        self.cursor_position = position

    def set_line(self, value: str | None) -> None:
        if value is not None:
            self.value = value
            self.cursor_position = len(value)

    def action_history_previous(self) -> None:
        self.set_line(self.history.previous(self.value))

    def action_history_next(self) -> None:
        self.set_line(self.history.next())

    def action_complete(self) -> None:
        completion = self._completer.complete(self.value, self.cursor_position, self._names())
        if completion is None:
            # Tab never leaves the input (a Tab that found no name would otherwise send
            # the next keys elsewhere); Shift+Tab reaches the user list.
            self.app.bell()
            return
        self._hint = completion.hint()
        self.value = completion.value
        self.cursor_position = completion.cursor
        self._show_hint()

    def _watch_value(self, value: str) -> None:
        super()._watch_value(value)
        if self._hint and not self._completer.continues(value):
            self._hint = ""
        self._show_hint()

    def _show_hint(self) -> None:
        # Under the line: Tab's matches while completing, else who the line goes to.
        hint = self._hint or describe(self.value)
        self.border_subtitle = Content(hint) if hint else None

    def start_private_message(self, name: str) -> None:
        self.set_line(private_message_draft(name))
        self.focus()
