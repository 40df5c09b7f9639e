"""The log pane: the rooms panel, the log of the conversation shown, the "new messages"
bar and the search bar. It keeps the :class:`~chatroom.client.log_buffer.Buffers` (one per
room joined and one per private conversation), writes ``--log`` files, and answers the
keys that move in the log: search (Ctrl+F), the next mention (F6), the conversation before
or after, by number, or clicked in the panel. When the conversation shown changes it says
so (:class:`ConversationView.Switched`): the screen has the user list and header follow."""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message

from chatroom.client.log_buffer import Buffers, Conversation, LogBuffer, RoomRef
from chatroom.client.logfiles import ConversationLogs
from chatroom.client.render import LogLine
from chatroom.client.widgets.buffer_bar import BufferBar
from chatroom.client.widgets.chat_log import ChatLog, NewMessagesBar
from chatroom.client.widgets.search_bar import SearchBar

# The lines of the conversations not shown are wrapped between frames, for at most
# WRAP_SLICE seconds every WRAP_EVERY (a fifth of a core at most), so that a switch to a
# room that got 10,000 lines meanwhile does not wrap them all at once (2 s of wrapping).
WRAP_EVERY = 0.1
WRAP_SLICE = 0.02


class ConversationView(Vertical):
    @dataclass
    class Switched(Message):
        """The conversation shown is another one now."""

        conversation: Conversation

    def __init__(self, scrollback: int, logs: ConversationLogs | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.buffers = Buffers("room", scrollback)
        self.logs = logs
        self._hit: int | None = None  # the line the search (or mention jump) is on
        self._log: ChatLog | None = None
        self._wrapping = False  # a timer will wrap the lines of the buffers not shown

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
    def conversation(self) -> Conversation:
        """The conversation shown: a room's, a private one (the peer's name), or None (the
        unnamed room of a server without rooms)."""
        return self.buffers.active.conversation

    def add(self, line: LogLine, conversation: Conversation) -> str | None:
        """Add a line to its conversation; a reason if the --log file could not be written."""
        before = len(self.buffers)
        buffer = self.buffers.add(conversation, line)
        if buffer is self.buffers.active:
            self.log.changed()
        else:
            self._show_bar()
            if not self._wrapping:
                self._wrapping = True
                self.set_timer(WRAP_EVERY, self._wrap_hidden)
        if len(self.buffers) != before:
            self._show_bar()
        if self.logs is not None:
            return self.logs.write(buffer.conversation, line)
        return None

    def _wrap_hidden(self) -> None:
        """Wrap the lines the buffers not shown got, for WRAP_SLICE seconds at most each
        time, until none is left: a room switched to is then drawn at once, however much it
        got meanwhile (past what a slice keeps up with, a switch wraps the rest)."""
        end, log, left = time.monotonic() + WRAP_SLICE, self.log, 0
        for buffer in self.buffers:
            if buffer is self.buffers.active:
                continue
            pending = log.wrap_hidden(buffer, 0)
            while pending and time.monotonic() < end:
                pending = log.wrap_hidden(buffer, 50)
            left += pending
        self._wrapping = left > 0
        if self._wrapping:
            self.set_timer(WRAP_EVERY, self._wrap_hidden)

    def _show_bar(self) -> None:
        self.query_one(BufferBar).show_buffers(self.buffers)

    # --- which conversation is shown -----------------------------------------------------

    def show(self, buffer: LogBuffer | None) -> None:
        if buffer is None or not self.buffers.show(buffer):
            return
        self._shown_changed()

    def _shown_changed(self) -> None:
        self._hit = None
        self.log.show(self.buffers.active)
        self._show_bar()
        self.post_message(self.Switched(self.conversation))

    def open(self, conversation: str | RoomRef) -> None:
        self.show(self.buffers.get(conversation))
        self._show_bar()

    def name_room(self, room: RoomRef) -> None:
        """The server named the room the client is in: the unnamed room's log is its."""
        self.buffers.name_room(room)
        self._show_bar()

    def close_room(self, room: RoomRef) -> None:
        """The client is no longer in ``room``: its log goes (another room's is shown)."""
        buffer = self.buffers.find(room)
        if buffer is None:
            return
        shown = buffer is self.buffers.active
        if self.buffers.close(buffer) and shown:
            self._shown_changed()
        self._show_bar()

    @on(BufferBar.Picked)
    def _picked(self, message: BufferBar.Picked) -> None:
        self.show(self.buffers.by_position(message.position))

    def step(self, delta: int) -> None:
        self.show(self.buffers.beside(delta))

    def by_number(self, number: int) -> None:
        self.show(self.buffers.by_position(number - 1))

    def close_shown(self) -> bool:
        """``/close``: the private conversation shown goes (a room's stays: ``/part``)."""
        active = self.buffers.active
        if active.is_room or not self.buffers.close(active):
            return False
        self._shown_changed()
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
