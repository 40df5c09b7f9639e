"""Helpers for the client tests: an nc-like peer and polling with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

DEADLINE = 5.0  # generous for a busy machine; nothing asserts on speed


class NcUser:
    """A person on ``nc``: sends text lines, reads text lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        host, port = writer.get_extra_info("sockname")[:2]
        self.id = f"{host}:{port}"

    async def say(self, line: str) -> None:
        self.writer.write(line.encode() + b"\n")
        await self.writer.drain()

    async def read_until(self, text: str, deadline: float = DEADLINE) -> str:
        """Read lines until one contains ``text``; return it."""
        async with asyncio.timeout(deadline):
            while True:
                raw = await self.reader.readline()
                if not raw:
                    raise EOFError(f"connection closed before {text!r} arrived")
                line = raw.decode().rstrip("\n")
                if text in line:
                    return line

    async def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def eventually(condition: Callable[[], Any], pilot=None, deadline: float = DEADLINE) -> Any:
    """Wait until ``condition()`` is truthy (sockets do not wait for ``pilot.pause``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = condition()
        if result:
            return result
        if loop.time() > end:
            raise AssertionError(
                f"condition not met within {deadline} s: {condition.__doc__ or condition}"
            )
        if pilot is not None:
            await pilot.pause(0.02)
        else:
            await asyncio.sleep(0.02)


def log_text(app) -> str:
    """What the log shown holds (the conversation on screen), as plain text, one log line
    per line (drawn or still to be drawn with the next frame: ``ChatLog.plain_lines`` and
    ``screen_text`` are what is drawn)."""
    from chatroom.client.widgets.chat_log import ChatLog

    return "\n".join(line.text.plain for line in app.chat.query_one(ChatLog).buffer.lines)


async def submit(pilot, text: str) -> None:
    """Type ``text`` into the input line (as a paste would) and press Enter."""
    from chatroom.client.widgets.chat_input import ChatInput

    chat_input = pilot.app.chat.query_one(ChatInput)
    chat_input.focus()
    chat_input.value = text
    chat_input.cursor_position = len(text)
    await pilot.press("enter")


def screen_text(app) -> str:
    """What the terminal shows right now, as plain text: the compositor's rows, painted
    from the widgets (a widget that changed without asking to be repainted shows its old
    rows here, as it would on a real terminal)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def buffer_text(app, conversation: str | None = None) -> str:
    """The lines a conversation's buffer holds (the room's, or the private one with the
    user named ``conversation``), as plain text, whether it is shown or not."""
    from chatroom.client.widgets.conversations import ConversationView

    buffer = app.chat.query_one(ConversationView).buffers.get(conversation)
    return "\n".join(line.text.plain for line in buffer.lines)
