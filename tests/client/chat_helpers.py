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
    """The message log of a running ChatApp as plain text, one rendered line per line."""
    from chatroom.client.widgets.chat_log import ChatLog

    return "\n".join(app.chat.query_one(ChatLog).plain_lines())


async def submit(pilot, text: str) -> None:
    """Type ``text`` into the input line (as a paste would) and press Enter."""
    from chatroom.client.widgets.chat_input import ChatInput

    chat_input = pilot.app.chat.query_one(ChatInput)
    chat_input.focus()
    chat_input.value = text
    chat_input.cursor_position = len(text)
    await pilot.press("enter")
