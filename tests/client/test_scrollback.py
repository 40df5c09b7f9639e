"""Issue 21, item 1: the log never freezes once its scrollback is full.

The log keeps ``--scrollback`` lines; once full, each new line pushes the oldest out, so
the log's height stays the same. The screen must still be repainted: these tests read
what the terminal shows (the compositor's rows), not what the widget holds.
"""

from __future__ import annotations

from chat_helpers import eventually, log_text, screen_text
from test_app import client, joined

from chatroom.client.widgets.chat_log import ChatLog

SCROLLBACK = 50


async def test_lines_past_a_full_scrollback_reach_the_screen(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port, scrollback=SCROLLBACK)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(SCROLLBACK + 10):  # more than the scrollback holds
            await nc.say(f"line {n}")
        await eventually(lambda: f"bob line {SCROLLBACK + 9}" in log_text(app), pilot)
        await eventually(lambda: f"bob line {SCROLLBACK + 9}" in screen_text(app), pilot)
        log = app.chat.query_one(ChatLog)
        assert "bob line 0\n" not in log_text(app) + "\n"  # the oldest went

        # The log is full: every line from now on replaces one. Each must be seen.
        for n in range(3):
            await nc.say(f"after full {n}")
            await eventually(lambda n=n: f"bob after full {n}" in screen_text(app), pilot)
        assert len(log.plain_lines()) <= SCROLLBACK + 1
