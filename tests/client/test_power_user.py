"""Issue 21, items 7 and 8, with Pilot against a real server and nc-like peers: times on
every line, /who with no match, long lines, /help, away marks, Ban asked first; private
conversations and /r, search, the next mention, the read marker, --log, /clear, the bare
view, the desktop notification and --seconds."""

from __future__ import annotations

import re

from chat_helpers import buffer_text, eventually, log_text, screen_text, submit
from test_app import SIZE, client, joined

from chatroom.client.log_buffer import RoomRef
from chatroom.client.screens.confirm_dialog import ConfirmDialog
from chatroom.client.screens.user_actions import UserActionsDialog
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import ChatLog
from chatroom.client.widgets.conversations import ConversationView
from chatroom.client.widgets.user_list import UserList

TIME = re.compile(r"^\d\d:\d\d ")


async def test_every_line_has_its_time_and_who_with_no_match_says_so(room, join_nc):
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/who zzz")
        await eventually(lambda: "nobody online has 'zzz' in their name" in log_text(app), pilot)
        await submit(pilot, "/ping")
        await eventually(lambda: "pong" in log_text(app), pilot)
        lines = [line for line in log_text(app).splitlines() if not line.startswith("──")]
        assert lines and all(TIME.match(line) for line in lines), lines


async def test_a_long_line_is_split_before_it_is_sent_and_nothing_is_lost(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    words = " ".join(f"word{n}" for n in range(700))  # about 5.4 kB: over the 2048 limit
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, words)
        got = []
        while not got or not got[-1].endswith("word699"):
            got.append((await nc.read_until("<ann>")).removeprefix("<ann> "))
        assert len(got) == 3 and " ".join(got).split() == words.split()
        assert "line too long" not in log_text(app)


async def test_a_line_the_server_refuses_as_too_long_comes_back(make_room, join_nc):
    room = await make_room(max_line=100)  # shorter than the client's default, unannounced
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        text = "x" * 150
        await submit(pilot, text)
        await eventually(lambda: "line too long" in log_text(app), pilot)
        await eventually(lambda: app.chat.query_one(ChatInput).value == text, pilot)
        assert app.chat.session.max_line == 1024


async def test_help_lists_every_command(room):
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        await submit(pilot, "/help")
        await eventually(lambda: "Ctrl+Q" in log_text(app), pilot)
        for command in ["/away", "/unban", "/bans", "/ignore", "/kick", "/r TEXT", "/clear"]:
            assert command in log_text(app), command


async def test_away_users_are_marked_in_the_user_list(room, join_nc):
    nc = await join_nc(room, "bob")
    await nc.say("/away lunch")
    await nc.read_until("away")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)

        def prompt(name: str) -> str:
            return next(str(o.prompt) for o in users.options if users.name_of(o.id) == name)

        await eventually(lambda: "bob" in users.names() and "(away)" in prompt("bob"), pilot)
        assert "(away)" not in prompt("ann")
        await submit(pilot, "/away brb")  # our own: from the server's fact
        await eventually(lambda: "(away)" in prompt("ann"), pilot)
        await submit(pilot, "/away")
        await eventually(lambda: "(away)" not in prompt("ann"), pilot)


async def test_ban_asks_first_and_says_who_shares_the_address(make_room, join_nc, tmp_path):
    from chatroom.server.core.passwords import hash_password

    ops = tmp_path / "ops"
    ops.write_text(f"root {hash_password('pw')}\n")
    room = await make_room(ops_file=str(ops))
    bob = await join_nc(room, "bob")
    await join_nc(room, "carol")  # the same address: 127.0.0.1
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/oper root pw")
        await eventually(lambda: app.chat.roster.own_is_operator, pilot)
        users = app.chat.query_one(UserList)
        await eventually(lambda: {"bob", "carol"} <= set(users.names()), pilot)
        users.highlighted = next(
            i for i, o in enumerate(users.options) if users.name_of(o.id) == "bob"
        )
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, UserActionsDialog), pilot)
        await pilot.press("end", "enter")  # Ban, the last action
        await eventually(lambda: isinstance(app.screen, ConfirmDialog), pilot)
        question = str(app.screen.query_one("#confirm-question").content)
        assert "3 users there now: ann, bob, carol" in question
        await pilot.press("enter")  # Cancel has the focus: nothing is sent
        await eventually(lambda: not isinstance(app.screen, ConfirmDialog), pilot)
        await bob.say("still here")
        assert "still here" in await bob.read_until("still here")


async def test_private_messages_have_their_own_conversation_and_r_answers(room, join_nc):
    bob = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await bob.say("/msg ann psst")
        await eventually(lambda: "bob → psst" in buffer_text(app, "bob"), pilot)
        assert "psst" not in log_text(app)  # the room's log is shown, without it
        assert app.desktop_notifications  # the bell (or the terminal's notification)
        await submit(pilot, "/r hi back")
        assert "hi back" in await bob.read_until("hi back")
        view = app.chat.query_one(ConversationView)
        await eventually(lambda: view.conversation == "bob", pilot)  # /msg, /r show it
        await submit(pilot, "plain line")  # in bob's conversation: to bob alone
        assert "plain line" in await bob.read_until("plain line")
        await pilot.press("alt+left")
        assert view.conversation == RoomRef("main")  # the room
        await submit(pilot, "/clear")
        await eventually(lambda: log_text(app) == "", pilot)


async def test_search_finds_older_and_newer_matches_and_f6_jumps_to_a_mention(room, join_nc):
    bob = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        for n in range(40):
            await bob.say(f"needle {n}" if n in (5, 20) else f"hay {n} ann" if n == 10 else f"x{n}")
        await eventually(lambda: "x39" in log_text(app), pilot)
        log = app.chat.query_one(ChatLog)
        await pilot.press("ctrl+f", *"needle")
        await eventually(lambda: "needle 20" in screen_text(app), pilot)
        await pilot.press("enter")  # older
        await eventually(lambda: "needle 5" in screen_text(app), pilot)
        await pilot.press("down")  # newer
        await eventually(lambda: "needle 20" in screen_text(app), pilot)
        await pilot.press("escape")
        assert app.chat.query_one(ChatInput).has_focus
        await pilot.press("f6")
        await eventually(lambda: "hay 10 ann" in screen_text(app), pilot)
        assert not log.following


async def test_the_read_marker_shows_where_the_reader_left(room, join_nc):
    bob = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await bob.say("seen before")
        await eventually(lambda: "seen before" in log_text(app), pilot)
        app.chat.conversations.mark_read()  # as the terminal losing the focus does
        await bob.say("new since")
        log = app.chat.query_one(ChatLog)
        await eventually(lambda: "bob new since" in "\n".join(log.plain_lines()), pilot)
        rows = log.plain_lines()
        marker = next(i for i, row in enumerate(rows) if " unread " in row)
        assert "seen before" in rows[marker - 1] and "new since" in rows[marker + 1]


async def test_log_dir_writes_each_conversation_to_a_plain_file(room, join_nc, tmp_path):
    bob = await join_nc(room, "bob")
    app = client(room.port, log_dir=tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await bob.say("for the room")
        await bob.say("/msg ann for ann")
        await eventually(lambda: "for ann" in buffer_text(app, "bob"), pilot)
    room_file = tmp_path / f"127.0.0.1_{room.port}.room.log"
    private = tmp_path / f"127.0.0.1_{room.port}.private.bob.log"
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\t"
    assert re.search(stamp + "bob for the room$", room_file.read_text(), re.M)
    assert "[private] bob → for ann" in private.read_text()


async def test_the_bare_view_shows_the_log_alone_and_seconds_are_an_option(room, join_nc):
    bob = await join_nc(room, "bob")
    app = client(room.port, seconds=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await joined(pilot)
        await bob.say("select me")
        await eventually(lambda: "bob select me" in screen_text(app), pilot)
        assert re.search(r"\d\d:\d\d:\d\d bob select me", screen_text(app))
        await pilot.press("alt+l")
        await eventually(lambda: "╭" not in screen_text(app), pilot)
        shown = screen_text(app)
        assert "╭" not in shown and "│" not in shown and "Users" not in shown
        assert re.search(r"^\d\d:\d\d:\d\d ", shown, re.M)
        await pilot.press("alt+l")
        await eventually(lambda: "╭" in screen_text(app), pilot)
