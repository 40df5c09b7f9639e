"""The conversations' bar above the log: ``1 room  2 bob (3)  3 carol !``. Shown only when
there is more than the room; the one shown is highlighted, a conversation with unread
lines says how many, and one that mentions you (or a private one with news) is marked."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from chatroom.client.log_buffer import Buffers


class BufferBar(Static):
    DEFAULT_CSS = """
    BufferBar {
        height: 1;
        width: 1fr;
        display: none;
        background: $panel;
        text-wrap: nowrap;
        text-overflow: ellipsis;
        &.-shown { display: block; }
    }
    """

    def show_buffers(self, buffers: Buffers) -> None:
        self.set_class(len(buffers) > 1, "-shown")
        parts: list[tuple[str, str] | str] = []
        for number, buffer in enumerate(buffers, 1):
            label = f" {number} {buffer.title or 'room'}"
            if buffer.unread:
                label += f" ({buffer.unread})"
            if buffer is buffers.active:
                parts.append((label + " ", "bold reverse"))
            elif buffer.mentioned:
                parts.append((label + " !", "bold $text-warning"))
            else:
                parts.append((label + " ", "dim" if not buffer.unread else ""))
        self.update(Content.assemble(*parts))
