"""The log pane: the conversations' bar, the log of the one shown, the "new messages" bar
and the search bar. It keeps the :class:`~chatroom.client.log_buffer.Buffers` (the room's
and one per private conversation), writes ``--log`` files, and answers the keys that move
in the log: search (Ctrl+F), the next mention (F6), the conversation before or after."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical

from chatroom.client.log_buffer import Buffers, LogBuffer
from chatroom.client.logfiles import ConversationLogs
from chatroom.client.render import LogLine
from chatroom.client.widgets.buffer_bar import BufferBar
from chatroom.client.widgets.chat_log import ChatLog, NewMessagesBar
from chatroom.client.widgets.search_bar import SearchBar


class ConversationView(Vertical):
    def __init__(self, scrollback: int, logs: ConversationLogs | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buffers = Buffers("room", scrollback)
        self.logs = logs
        self._hit: int | None = None  # the line the search (or mention jump) is on
        self._log: ChatLog | None = None

    def compose(self) -> ComposeResult:
        yield BufferBar(id="buffers")
        yield ChatLog(self.buffers.room, id="log")
        yield NewMessagesBar(id="unseen")
        yield SearchBar(id="search")

    @property
    def log(self) -> ChatLog:
        if self._log is None:
            self._log = self.query_one(ChatLog)
        return self._log

    @property
    def conversation(self) -> str | None:
        """The private conversation shown (the peer's name), None for the room."""
        active = self.buffers.active
        return None if active is self.buffers.room else active.title

    def add(self, line: LogLine, conversation: str | None) -> str | None:
        """Add a line to its conversation; a reason if the --log file could not be written."""
        before = len(self.buffers)
        buffer = self.buffers.add(conversation, line)
        if buffer is self.buffers.active:
            self.log.changed()
        else:
            self._show_bar()
        if len(self.buffers) != before:
            self._show_bar()
        if self.logs is not None:
            return self.logs.write(conversation, line)
        return None

    def _show_bar(self) -> None:
        self.query_one(BufferBar).show_buffers(self.buffers)

    # --- which conversation is shown -----------------------------------------------------

    def show(self, buffer: LogBuffer | None) -> None:
        if buffer is None or not self.buffers.show(buffer):
            return
        self._hit = None
        self.log.show(buffer)
        self._show_bar()

    def open(self, name: str) -> None:
        self.show(self.buffers.get(name))
        self._show_bar()

    def step(self, delta: int) -> None:
        self.show(self.buffers.beside(delta))

    def by_number(self, number: int) -> None:
        self.show(self.buffers.by_position(number - 1))

    def close_shown(self) -> bool:
        active = self.buffers.active
        if not self.buffers.close(active):
            return False
        self.log.show(self.buffers.active)
        self._show_bar()
        return True

    def clear_shown(self) -> None:
        self.buffers.active.clear()
        self._hit = None
        self.log.show(self.buffers.active)

    def mark_read(self) -> None:
        """The reader left (the terminal lost the focus): the read marker goes at the end."""
        self.buffers.active.mark_read()
        self.log.changed()

    # --- search and mentions -------------------------------------------------------------

    def open_search(self) -> None:
        self.query_one(SearchBar).open()

    @on(SearchBar.Step)
    def _search(self, message: SearchBar.Step) -> None:
        log, buffer = self.log, self.buffers.active
        if message.again and self._hit is not None:
            start = self._hit - 1 if message.older else self._hit + 1
        else:
            start = buffer.end - 1 if log.following else log.top_line + log.size.height
        hit = buffer.search(message.query, start, older=message.older)
        if hit is None:
            if not message.again:
                self._hit = None
                log.highlight(None)
            self.app.bell()
            return
        self._hit = hit
        log.highlight(hit)

    @on(SearchBar.Closed)
    def _search_closed(self) -> None:
        self._hit = None
        self.log.highlight(None)
        self.screen.query_one("#input").focus()

    def next_mention(self) -> bool:
        """Bring the next line that mentions us into view; False if none is kept."""
        log = self.log
        after = self._hit if self._hit is not None else log.top_line
        hit = self.buffers.active.next_mention(after)
        if hit is None:
            return False
        self._hit = hit
        log.highlight(hit)
        return True

    def jump_to_end(self) -> None:
        self._hit = None
        self.log.jump_to_end()
