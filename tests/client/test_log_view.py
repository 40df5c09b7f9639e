"""The log as a reader sees it: following across resizes, the "new messages" bar, re-wrapping."""

from __future__ import annotations

from chat_helpers import eventually, log_text
from test_app import client, joined

from chatroom.client.messages import LinkState
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import ChatLog, NewMessagesBar
from chatroom.client.widgets.user_list import UserList


def last_rows_shown(app) -> str:
    """The text of the log rows currently in view."""
    log = app.chat.query_one(ChatLog)
    top = round(log.scroll_y)
    rows = log.plain_lines()[top : top + log.scrollable_content_region.height]
    return "\n".join(rows)


async def test_log_keeps_following_after_the_terminal_shrinks_and_grows(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(30):
            await nc.say(f"line {n}")
        await eventually(lambda: "bob line 29" in last_rows_shown(app), pilot)

        await pilot.resize_terminal(80, 20)
        await pilot.pause()
        await nc.say("after shrinking")
        await eventually(lambda: "bob after shrinking" in last_rows_shown(app), pilot)

        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        await nc.say("after growing")
        await eventually(lambda: "bob after growing" in last_rows_shown(app), pilot)
        await nc.close()
        await eventually(lambda: "bob left" in last_rows_shown(app), pilot)
        assert not app.chat.query_one(NewMessagesBar).has_class("-shown")


async def test_scrolled_up_reader_sees_a_new_messages_bar_that_jumps_down(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(40):
            await nc.say(f"line {n}")
        await eventually(lambda: "bob line 39" in last_rows_shown(app), pilot)
        log = app.chat.query_one(ChatLog)
        log.scroll_to(y=5, animate=False)
        await pilot.pause()
        bar = app.chat.query_one(NewMessagesBar)
        await nc.say("while away 1")
        await nc.say("while away 2")
        await eventually(lambda: "bob while away 2" in log_text(app), pilot)
        # (drawn with the next frame: one draw for both, or one each)
        await eventually(lambda: "2 new messages below" in str(bar.render()), pilot)
        assert bar.has_class("-shown")
        assert round(log.scroll_y) == 5  # not yanked down

        await pilot.click(NewMessagesBar)
        await eventually(lambda: "bob while away 2" in last_rows_shown(app), pilot)
        assert not bar.has_class("-shown")


async def test_old_lines_rewrap_to_the_new_width_with_a_hanging_indent(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    words = " ".join(f"w{n:02d}" for n in range(30))  # 119 characters
    async with app.run_test(size=(60, 20)) as pilot:
        await joined(pilot)
        await nc.say(words)
        log = app.chat.query_one(ChatLog)
        await eventually(lambda: "w29" in "\n".join(log.plain_lines()), pilot)  # drawn
        rows = log.plain_lines()
        first = next(i for i, row in enumerate(rows) if "bob w00" in row)
        rest = rows[first + 1 :]
        assert len(rest) >= 3 and all(row.startswith("      w") for row in rest)  # under the text

        await pilot.resize_terminal(200, 30)
        await eventually(lambda: any(words in row for row in log.plain_lines()), pilot)
        assert log.virtual_size.width <= log.scrollable_content_region.width

        await pilot.resize_terminal(50, 30)
        await eventually(lambda: not any(words in row for row in log.plain_lines()), pilot)
        assert all(
            len(row.rstrip()) <= log.scrollable_content_region.width for row in log.plain_lines()
        )


async def test_typing_after_a_click_in_the_log_or_the_user_list_reaches_the_input(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        chat_input = app.chat.query_one(ChatInput)
        await pilot.click(ChatLog)
        await pilot.press(*"after click", "enter")
        assert await nc.read_until("after click") == "<ann> after click"
        assert chat_input.has_focus and chat_input.value == ""

        app.chat.query_one(ChatLog).focus()  # e.g. reached with the keyboard
        await pilot.press(*"from log", "enter")
        assert await nc.read_until("from log") == "<ann> from log"

        await pilot.press("shift+tab")
        assert app.chat.query_one(UserList).has_focus
        await pilot.press(*"from users", "enter")
        assert await nc.read_until("from users") == "<ann> from users"


async def test_page_keys_from_the_input_line_scroll_the_log_and_end_returns(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(40):
            await nc.say(f"line {n}")
        await eventually(lambda: "bob line 39" in last_rows_shown(app), pilot)
        log = app.chat.query_one(ChatLog)
        chat_input = app.chat.query_one(ChatInput)
        await pilot.press(*"draft", "pageup")
        assert chat_input.has_focus and chat_input.value == "draft"
        await eventually(lambda: "bob line 39" not in last_rows_shown(app), pilot)
        await pilot.press("ctrl+home")  # Home alone edits the input line (issue 21)
        await eventually(lambda: log.scroll_y == 0, pilot)
        await pilot.press("pagedown")
        await eventually(lambda: log.scroll_y > 0, pilot)
        await pilot.press("ctrl+end")
        await eventually(lambda: "bob line 39" in last_rows_shown(app), pilot)
        assert log.following and chat_input.value == "draft"


async def test_a_narrow_terminal_hides_the_user_list_f3_shows_it_and_the_header_keeps_the_state(
    make_room,
):
    room = await make_room(idle_timeout=0.5)
    app = client(room.port, name=None)
    async with app.run_test(size=(40, 12)) as pilot:
        users = app.chat.query_one(UserList)
        log = app.chat.query_one(ChatLog)
        await eventually(lambda: app.chat.link_state is LinkState.CONNECTED, pilot)
        assert not users.display and log.size.width > 30
        await pilot.press("f3")
        assert users.display
        await pilot.press("f3")
        assert not users.display
        await eventually(lambda: app.chat.link_state is LinkState.DISCONNECTED, pilot)
        await pilot.pause()
        link = app.chat.query_one("#link")
        assert str(link.content) == "● idle timeout · ctrl+r reconnect" and link.region.right <= 40
        assert link.has_class("disconnected")  # in the error colour
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert users.display
        text = str(link.content)
        assert text.endswith("ctrl+r reconnect") and link.region.right <= 80
        assert link.region.width >= len(text)  # not cut
