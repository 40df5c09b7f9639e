"""The message log: shows one conversation's buffer, wrapped to its width, following new lines.

The lines live in a :class:`~chatroom.client.log_buffer.LogBuffer` (bounded by the
scrollback); this widget only shows one. New lines are not drawn one by one: the widget
is told something changed (:meth:`ChatLog.changed`) and draws at most once a frame
(:data:`FRAME`), wrapping only the lines that have no rows yet and repainting once. That
keeps a busy room cheap: a burst of a hundred lines costs one layout and one repaint,
not a hundred.

Why it once froze (issue 21): the log was a ``RichLog`` filled by hand; once the scrollback
was full every new line pushed one out, so the log's height stayed the same, and nothing
asked for a repaint (``RichLog.write`` does, on trimming; the hand-made path did not):
the screen kept showing the rows it had. Here every flush that changed a row ends in
``refresh()``.

Whether the log follows new lines is a flag of its own (``following``), not worked out
from the scroll position when a line arrives: a terminal that shrinks moves the end below
the view without the reader having scrolled. A reader who scrolled up keeps the same line
at the top while lines arrive, old ones go, or the width changes; lines that arrived since
are counted in ``unseen`` for the "new messages" bar. The read marker is drawn as a row of
its own before the first line that arrived after the reader left the buffer.
"""

from __future__ import annotations

import time
from itertools import islice

from rich.style import Style
from rich.text import Text
from textual import events
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from chatroom.client.log_buffer import LogBuffer
from chatroom.client.render import LogLine

# The log draws new lines at most this often: a line after a quiet while is drawn at once,
# a busy room at most ten times a second (each draw is a layout and a repaint of the log,
# which costs far more than a line: at 2,000 lines/s a draw per line could not keep up).
FRAME = 0.1
MARKER_TEXT = " unread "
MARKER_STYLE = Style(color="red", bold=True)
HIGHLIGHT = Style(reverse=True)  # the search hit or the mention jumped to
MIN_TEXT = 20  # continuation rows hang under the text while this many cells are left


class ChatLog(ScrollView, can_focus=True):
    FOCUS_ON_CLICK = False  # a click (to select or scroll) must not take the keyboard away

    class UnseenChanged(Message):
        """The number of lines below the view, that arrived while scrolled up, changed."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, buffer: LogBuffer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buffer = buffer
        self._flat: list[Strip] = []  # the rows shown, the read marker's among them
        self._wrap_width = 0  # 0: not laid out yet; lines are wrapped on the first resize
        self._shown_end = buffer.end  # the buffer's end at the last flush
        self._flush_pending = False
        self._last_flush = 0.0
        self._highlight: int | None = None  # the number of the highlighted line
        self._highlight_rows: range = range(0)
        self._top = buffer.first  # the number of the line at the top of the view
        self.following = True
        self.unseen = 0

    # --- what is shown --------------------------------------------------------------------

    def changed(self) -> None:
        """The buffer got lines (or lost them): draw them with the next frame."""
        if self._flush_pending:
            return
        self._flush_pending = True
        delay = self._last_flush + FRAME - time.monotonic()
        if delay <= 0:
            self.call_later(self._flush)  # after what is queued now: a burst is one flush
        else:
            self.set_timer(delay, self._flush)

    def show(self, buffer: LogBuffer) -> None:
        """Show another buffer, at its newest line."""
        self.buffer = buffer
        self._highlight = None
        self._shown_end = buffer.end
        self.following = True
        self._set_unseen(0)
        self._rebuild(keep_top=False)

    def _flush(self) -> None:
        self._flush_pending = False
        self._last_flush = time.monotonic()
        if not self._wrap_width:
            return  # drawn once the width is known (on_resize)
        added = self.buffer.end - self._shown_end
        self._shown_end = self.buffer.end
        self._rebuild(keep_top=not self.following)
        if added > 0 and not self.following:
            self._set_unseen(self.unseen + added)

    def _rebuild(self, *, keep_top: bool) -> None:
        """Make the rows shown from the buffer, wrapping the lines that have none yet."""
        buffer, width = self.buffer, self._wrap_width
        if not width:
            return
        top = self._top if keep_top else None  # as it was before the buffer changed
        if buffer.rows_width != width:
            buffer.rows.clear()
            buffer.rows_width = width
        for line in islice(buffer.lines, len(buffer.rows), None):
            buffer.rows.append(self._wrap(line, width))
        marker = buffer.marker_shown
        flat: list[Strip] = []
        highlight = range(0)
        for number, rows in enumerate(buffer.rows, buffer.first):
            if number == marker:
                flat.append(self._marker_row(width))
            if number == self._highlight:
                highlight = range(len(flat), len(flat) + len(rows))
            flat.extend(rows)
        self._flat = flat
        self._highlight_rows = highlight
        self._set_virtual_size(Size(width, len(flat)))
        self.refresh()  # the height may not have changed (a full scrollback): repaint anyway
        if top is not None:
            self._top = max(top, buffer.first)
            self._hold(self.row_of(self._top))
        elif self.following:
            self._follow()  # now, not after the refresh: one repaint, not two

    def wrap_hidden(self, buffer: LogBuffer, budget: int) -> int:
        """Wrap at most ``budget`` of the lines of ``buffer`` (one not shown) that have no
        rows yet, at this log's width: between frames, so that showing it later does not
        wrap thousands of lines at once. Returns how many are still unwrapped."""
        width = self._wrap_width
        if not width or buffer is self.buffer:
            return 0
        if buffer.rows_width != width:
            buffer.rows.clear()
            buffer.rows_width = width
        done = len(buffer.rows)
        for line in islice(buffer.lines, done, done + budget):
            buffer.rows.append(self._wrap(line, width))
        return len(buffer.lines) - len(buffer.rows)

    def _set_virtual_size(self, size: Size) -> None:
        """A new height without a layout of the whole screen: setting ``virtual_size``
        lays out every widget again (and repaints them), which cost more than the lines
        themselves in a busy room. Only the log's scrollbar follows, unless it appears or
        goes, which needs a layout."""
        if size == self.virtual_size:
            return
        shown = self.show_vertical_scrollbar
        self.set_reactive(ChatLog.virtual_size, size)
        self._scroll_update(size)
        if self.show_vertical_scrollbar != shown:
            self.refresh(layout=True)

    def _wrap(self, line: LogLine, width: int) -> list[Strip]:
        """``line`` as screen rows ``width`` cells wide, continuation rows hanging."""
        console = self.app.console
        text = line.text
        if text.cell_len <= width:  # most lines: one row, nothing to wrap
            return [Strip(text.render(console, end=""), text.cell_len)]
        hang = line.hang if line.hang <= width - MIN_TEXT else 0
        head, body = line.text[:hang], line.text[hang:]
        rows = body.wrap(console, width - hang, overflow="fold")
        strips = []
        for index, row in enumerate(rows or [Text()]):
            row.rstrip_end(width - hang)
            prefix = head if index == 0 else Text(" " * hang)
            strips.append(Strip(Text.assemble(prefix, row).render(console, end="")))
        return strips

    def _marker_row(self, width: int) -> Strip:
        side = max(0, width - len(MARKER_TEXT))
        text = "─" * (side // 2) + MARKER_TEXT + "─" * (side - side // 2)
        return Strip(Text(text[:width], style=MARKER_STYLE).render(self.app.console, end=""))

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        if row >= len(self._flat):
            return Strip.blank(width, self.rich_style)
        strip = self._flat[row]
        if row in self._highlight_rows:
            strip = strip.apply_style(HIGHLIGHT)
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style).apply_style(
            self.rich_style
        )

    # --- positions --------------------------------------------------------------------------

    def row_of(self, number: int) -> int:
        """The first screen row of the line ``number`` (clamped to the lines kept)."""
        buffer = self.buffer
        index = min(max(number - buffer.first, 0), len(buffer.rows))
        row = sum(len(rows) for rows in islice(buffer.rows, index))
        marker = buffer.marker_shown
        return row + (1 if marker is not None and marker <= buffer.first + index else 0)

    def line_at(self, row: int) -> int:
        """The number of the line shown on screen row ``row``."""
        buffer = self.buffer
        total = 0
        marker = buffer.marker_shown
        for number, rows in enumerate(buffer.rows, buffer.first):
            total += len(rows) + (1 if number == marker else 0)
            if total > row:
                return number
        return max(buffer.end - 1, buffer.first)

    @property
    def top_line(self) -> int:
        return self._top

    def highlight(self, number: int | None) -> None:
        """Highlight the line ``number`` (a search hit, a mention) and bring it into view;
        None: no highlight."""
        self._highlight = number
        if number is None:
            self._rebuild(keep_top=not self.following)
            return
        self.following = False
        self._rebuild(keep_top=False)
        row = max(0, self.row_of(number) - self.scrollable_content_region.height // 2)
        self.call_after_refresh(self._hold, row)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width > 0 and width != self._wrap_width:
            self._wrap_width = width
            self._shown_end = self.buffer.end
            self._rebuild(keep_top=not self.following)
        elif self.following:
            # Shrinking moves the end below the view: the reader did not scroll, follow on.
            self.call_after_refresh(self._follow)

    # --- following -----------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) == round(new_value):
            return
        self.following = new_value >= self.max_scroll_y
        if not self.following:  # (following, the top line is not needed)
            self._top = self.line_at(round(new_value))
        if self.following:
            self._set_unseen(0)

    def _hold(self, y: int) -> None:
        self.scroll_to(y=y, animate=False, immediate=True)

    def _follow(self) -> None:
        if self.following:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _set_unseen(self, count: int) -> None:
        if count != self.unseen:
            self.unseen = count
            self.post_message(self.UnseenChanged(count))

    def jump_to_end(self) -> None:
        """Back to the newest line, following again."""
        self.following = True
        self._set_unseen(0)
        if self._highlight is not None:
            self.highlight(None)
        self.call_after_refresh(self._follow)

    def scroll_by(self, how: str) -> None:
        """Keys from the input line: "page_up", "page_down", "home" or "end" (following)."""
        if how == "end":
            self.jump_to_end()
        elif how == "home":
            self.following = False  # at once: a draw due now must not follow the end
            self._top = self.buffer.first
            self._hold(0)
        elif how == "page_up":
            self.scroll_page_up(animate=False)
        else:
            self.scroll_page_down(animate=False)

    def plain_lines(self) -> list[str]:
        """What the log shows, as plain text (for tests and debugging)."""
        return [strip.text for strip in self._flat]


class NewMessagesBar(Static):
    """ "▼ N new messages below": shown while the reader is scrolled up; a click jumps down."""

    DEFAULT_CSS = """
    NewMessagesBar {
        display: none;
        height: 1;
        width: 1fr;
        text-align: center;
        background: $warning-muted;
        color: $text;
        text-style: bold;
        &.-shown { display: block; }
    }
    """

    class Clicked(Message):
        """The reader wants the newest lines."""

    def show_count(self, count: int) -> None:
        noun = "message" if count == 1 else "messages"
        self.update(Content(f"▼ {count} new {noun} below · Ctrl+End to jump"))
        self.set_class(count > 0, "-shown")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Clicked())
