"""Pasting into the input line: every line of a multi-line paste goes out, in order."""

from __future__ import annotations

from chat_helpers import eventually
from test_app import client, joined
from textual import events

from chatroom.client.screens.paste_dialog import PasteDialog
from chatroom.client.widgets.chat_input import ChatInput


async def paste(pilot, text: str) -> None:
    """What a terminal's bracketed paste delivers to the focused input."""
    pilot.app.chat.query_one(ChatInput).post_message(events.Paste(text))
    await pilot.pause()


async def test_a_three_line_paste_arrives_as_three_lines(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        await paste(pilot, "first\nsecond /shrug\nthird")
        assert await nc.read_until("first") == "<ann> first"
        assert await nc.read_until("second") == "<ann> second /shrug"
        assert await nc.read_until("third") == "<ann> third"
        chat_input = app.chat.query_one(ChatInput)
        assert chat_input.value == "" and chat_input.has_focus


async def test_a_one_line_paste_is_typed_in_at_the_cursor(room):
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        await pilot.press(*"ab", "left")
        await paste(pilot, "XY")
        assert app.chat.query_one(ChatInput).value == "aXYb"


async def test_a_long_paste_asks_once_then_sends_every_line(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        await pilot.press(*"draft")
        await paste(pilot, "\n".join(f"p{n}" for n in range(6)))
        await eventually(lambda: isinstance(app.screen, PasteDialog), pilot)
        await pilot.press("escape")  # cancelled: nothing sent, the draft is back
        chat_input = app.chat.query_one(ChatInput)
        await eventually(lambda: chat_input.value == "draft", pilot)

        await pilot.press("ctrl+u")
        await paste(pilot, "\n".join(f"p{n}" for n in range(6)))
        await eventually(lambda: isinstance(app.screen, PasteDialog), pilot)
        await pilot.press("enter")
        for n in range(6):
            assert await nc.read_until(f"p{n}") == f"<ann> p{n}"
