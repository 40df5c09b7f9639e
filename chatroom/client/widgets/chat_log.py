"""The message log: a bounded log that re-wraps to its width and follows new lines.

The log keeps every line it shows as a :class:`LogLine` (rich ``Text``) and wraps it to the
current width itself: on a resize every line is wrapped again, continuation lines indented
under the text rather than under the time. Whether the log follows new lines is a flag of
its own (``following``), not worked out from the scroll position when a line arrives: a
terminal that shrinks moves the end of the log below the view without the reader having
scrolled, and the log must keep following then. The flag changes only when the scroll
position changes (the reader scrolled, or the log scrolled to the end); lines that arrive
while the reader is scrolled up are counted in ``unseen`` for the "new messages" bar.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import events
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widgets import RichLog, Static

from chatroom.client.render import LogLine
from chatroom.client.settings import DEFAULT_SCROLLBACK


class ChatLog(RichLog):
    FOCUS_ON_CLICK = False  # a click (to select or scroll) must not take the keyboard away

    class UnseenChanged(Message):
        """The number of lines below the view, that arrived while scrolled up, changed."""

        def __init__(self, count: int) -> None:
            super().__init__()
            self.count = count

    def __init__(self, max_lines: int = DEFAULT_SCROLLBACK, **kwargs) -> None:
        # markup off: remote text must never be read as markup. Wrapping and the line bound
        # are done here (per log line, not per screen row), so RichLog gets no max_lines.
        super().__init__(min_width=1, wrap=True, markup=False, **kwargs)
        self.can_focus = True
        self._sources: deque[LogLine] = deque()
        self._heights: deque[int] = deque()  # screen rows of each source at the width
        self._max_sources = max_lines
        self._wrap_width = 0  # 0: not laid out yet; lines are wrapped on the first resize
        self.following = True
        self.unseen = 0
        self._follow_pending = False

    # --- adding lines ------------------------------------------------------------------

    def add(self, line: LogLine) -> None:
        self._sources.append(line)
        if not self._wrap_width:
            return
        strips = self._wrap(line, self._wrap_width)
        self._heights.append(len(strips))
        self.lines.extend(strips)
        self._trim()
        self.virtual_size = Size(self._wrap_width, len(self.lines))
        if self.following:
            self._follow_later()
        else:
            self._set_unseen(self.unseen + 1)

    def _trim(self) -> None:
        while len(self._sources) > self._max_sources:
            self._sources.popleft()
            if self._heights:
                dropped = self._heights.popleft()
                del self.lines[:dropped]
                self._start_line += dropped  # keeps RichLog's line cache keys apart
                self._line_cache.clear()

    def _wrap(self, line: LogLine, width: int) -> list[Strip]:
        """``line`` as screen rows ``width`` cells wide, continuation rows hanging."""
        console = self.app.console
        hang = line.hang if line.hang < width // 2 else 0
        head, body = line.text[:hang], line.text[hang:]
        rows = body.wrap(console, width - hang, overflow="fold")
        strips = []
        for index, row in enumerate(rows or [Text()]):
            row.rstrip_end(width - hang)
            prefix = head if index == 0 else Text(" " * hang)
            strips.append(Strip(Text.assemble(prefix, row).render(console, end="")))
        return strips

    def rewrap(self, width: int) -> None:
        """Wrap every line again for ``width``, keeping the top line in view (or the end)."""
        top = self._source_at(round(self.scroll_y)) if not self.following else None
        self._wrap_width = width
        self.lines = []
        self._heights.clear()
        self._line_cache.clear()
        self._start_line += 1_000_000  # invalidates the cache keys of the old rows
        for source in self._sources:
            strips = self._wrap(source, width)
            self._heights.append(len(strips))
            self.lines.extend(strips)
        self._trim()
        self.virtual_size = Size(width, len(self.lines))
        if top is None:
            self._follow_later()
        else:
            y = sum(list(self._heights)[:top])
            self.call_after_refresh(self._hold, y)
        self.refresh()

    def _hold(self, y: int) -> None:
        self.scroll_to(y=y, animate=False, immediate=True)

    def _source_at(self, row: int) -> int:
        total = 0
        for index, height in enumerate(self._heights):
            total += height
            if total > row:
                return index
        return max(len(self._heights) - 1, 0)

    def on_resize(self, event: events.Resize) -> None:
        width = self.scrollable_content_region.width
        if width > 0 and width != self._wrap_width:
            self.rewrap(width)
        elif self.following:
            # Shrinking moves the end below the view: the reader did not scroll, follow on.
            self._follow_later()

    # --- following -----------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) == round(new_value):
            return
        self.following = new_value >= self.max_scroll_y
        if self.following:
            self._set_unseen(0)

    def _follow_later(self) -> None:
        # Once per refresh, and only if still following then: a reader who scrolled up in
        # the meantime is not pulled down by lines that arrived before.
        if not self._follow_pending:
            self._follow_pending = True
            self.call_after_refresh(self._follow)

    def _follow(self) -> None:
        self._follow_pending = False
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
        self._follow_later()

    def scroll_by(self, how: str) -> None:
        """Keys from the input line: "page_up", "page_down", "home" or "end" (following)."""
        if how == "end":
            self.jump_to_end()
        elif how == "home":
            self.scroll_home(animate=False)
        elif how == "page_up":
            self.scroll_page_up(animate=False)
        else:
            self.scroll_page_down(animate=False)

    def plain_lines(self) -> list[str]:
        """What the log shows, as plain text (for tests and debugging)."""
        return [strip.text for strip in self.lines]


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
        self.update(Content(f"▼ {count} new {noun} below · End to jump"))
        self.set_class(count > 0, "-shown")

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(self.Clicked())
