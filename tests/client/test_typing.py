"""Issue 21, items 3-5: what the input line sends, keeps and forgets, and its keys.

Against a real server with nc-like peers: a mistyped command never reaches the room, a
secret is never recalled in clear, the dialog's password lasts the session, and the
input line edits as readline does.
"""

from __future__ import annotations

from chat_helpers import eventually, log_text, submit
from test_app import SIZE, client, joined

from chatroom.client.link import LinkState
from chatroom.client.screens.password_dialog import PasswordDialog
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import ChatLog

SECRET = "open sesame"


async def test_an_unknown_command_is_refused_locally_and_stays_in_the_input(room, join_nc):
    nc = await join_nc(room, "alice")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        chat_input = app.chat.query_one(ChatInput)
        for n, typo in enumerate(["/mgs alice my password is hunter2", "/qeury alice"], 1):
            await submit(pilot, typo)
            await eventually(lambda n=n: log_text(app).count("unknown command") == n, pilot)
            assert chat_input.value == typo  # still the user's, to correct
        await submit(pilot, "marker")
        line = await nc.read_until("<ann>")  # the first line from ann the room saw
        assert line == "<ann> marker"
        assert "hunter2" not in log_text(app)


async def test_a_double_slash_sends_the_text_with_one_slash(room, join_nc):
    nc = await join_nc(room, "alice")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "//shrug")
        assert await nc.read_until("shrug") == "<ann> /shrug"


async def test_secrets_are_never_recalled_in_clear_from_the_history(room):
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        chat_input = app.chat.query_one(ChatInput)
        await submit(pilot, "/oper root hunter2")
        await eventually(lambda: "hunter2" not in chat_input.value and "!" in log_text(app), pilot)
        await submit(pilot, "/pass sesame")
        await pilot.press("up")
        assert chat_input.value.startswith("/pass") and "sesame" not in chat_input.value
        await pilot.press("up")
        assert chat_input.value.startswith("/oper root") and "hunter2" not in chat_input.value


async def test_the_dialogs_password_is_kept_across_a_server_restart(make_room):
    room = await make_room(password=SECRET.encode())
    port = room.port
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, PasswordDialog), pilot)
        await pilot.press(*SECRET, "enter")
        await joined(pilot)
        await room.shutdown()
        await eventually(lambda: app.chat.link_state is not LinkState.CONNECTED, pilot)
        await make_room(port=port, password=SECRET.encode())
        await eventually(lambda: log_text(app).count("connected as") == 2, pilot)
        await joined(pilot)
        assert not isinstance(app.screen, PasswordDialog)


async def test_cancelling_the_password_dialog_leaves_a_hint(make_room):
    room = await make_room(password=SECRET.encode())
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, PasswordDialog), pilot)
        await pilot.press("escape")

        def last_line() -> str:
            return log_text(app).rstrip().splitlines()[-1]

        # The client's own line (after the server's prompt), saying how to get in.
        await eventually(lambda: "-- " in last_line() and "/pass" in last_line(), pilot)


async def test_the_input_line_edits_with_readline_keys(room):
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        chat_input = app.chat.query_one(ChatInput)
        await pilot.press(*"hello world")
        await pilot.press("home", "X")
        assert chat_input.value == "Xhello world"
        await pilot.press("end", "Y")
        assert chat_input.value == "Xhello worldY"
        await pilot.press("alt+b", "Z")
        assert chat_input.value == "Xhello ZworldY"
        await pilot.press("ctrl+a", "alt+f", "!")
        assert chat_input.value == "Xhello! ZworldY"
        await pilot.press("ctrl+e", "ctrl+w")
        assert chat_input.value == "Xhello! "
        await pilot.press("ctrl+a", "ctrl+k")
        assert chat_input.value == ""
        await pilot.press(*"abc", "ctrl+u")
        assert chat_input.value == ""


async def test_the_log_scrolls_with_pgup_pgdn_and_ctrl_home_end(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(60):
            await nc.say(f"line {n}")
        log = app.chat.query_one(ChatLog)
        await eventually(lambda: "bob line 59" in log_text(app), pilot)
        await eventually(lambda: log.is_vertical_scroll_end, pilot)
        await pilot.press("ctrl+home")
        await eventually(lambda: log.scroll_y == 0, pilot)
        await pilot.press("pagedown")
        await eventually(lambda: log.scroll_y > 0, pilot)
        await pilot.press("ctrl+end")
        await eventually(lambda: log.is_vertical_scroll_end and log.following, pilot)
        await pilot.press("pageup")
        await eventually(lambda: not log.is_vertical_scroll_end, pilot)


async def test_tab_after_msg_offers_the_names(room, join_nc):
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await eventually(lambda: "bob" in app.chat.roster.names(), pilot)
        chat_input = app.chat.query_one(ChatInput)
        await pilot.press(*"/msg ", "tab")
        assert chat_input.value in ("/msg ann ", "/msg bob ")
        await pilot.press("tab")
        assert chat_input.value in ("/msg ann ", "/msg bob ")
        assert "bob" in chat_input.value or "ann" in chat_input.value
