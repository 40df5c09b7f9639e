"""The rooms panel, left of the log: every room joined, then the private conversations, one
a line, numbered for Alt+1…9::

    1 #main
    2 #dev (3) !
    3 bob

Shown only when there is more than one conversation. The one shown is highlighted; one
with unread lines says how many; one that mentions you (or a private one with news) is
marked ``!``. A click on a line shows that conversation.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from chatroom.client.log_buffer import Buffers


class BufferBar(Static):
    DEFAULT_CSS = """
    BufferBar {
        dock: left;
        width: 16;
        height: 1fr;
        display: none;
        border: round $primary 50%;
        border-title-color: $text;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        &.-shown { display: block; }
    }
    """

    @dataclass
    class Picked(Message):
        """The conversation at ``position`` (0: the first line) was clicked."""

        position: int

    def on_mount(self) -> None:
        self.border_title = "Rooms"

    def show_buffers(self, buffers: Buffers) -> None:
        self.set_class(len(buffers) > 1, "-shown")
        lines: list[Content] = []
        for number, buffer in enumerate(buffers, 1):
            label = f"{number} {buffer.title or 'room'}"
            if buffer.unread:
                label += f" ({buffer.unread})"
            if buffer is buffers.active:
                lines.append(Content.styled(label, "bold reverse"))
            elif buffer.mentioned:
                lines.append(Content.styled(label + " !", "bold $text-warning"))
            else:
                lines.append(Content.styled(label, "" if buffer.unread else "dim"))
        self.update(Content("\n").join(lines))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None:
            event.stop()
            self.post_message(self.Picked(offset.y))
