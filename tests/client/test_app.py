"""The Textual app (Pilot) against a real server, with nc-like peers in the same room."""

from __future__ import annotations

import asyncio
from datetime import UTC

from chat_helpers import buffer_text, eventually, log_text, submit
from textual.content import Content
from textual.widgets import Input, Label

from chatroom.client.app import ChatApp
from chatroom.client.connection import Backoff
from chatroom.client.messages import LinkState, ServerEventReceived
from chatroom.client.screens.rename_dialog import RenameDialog
from chatroom.client.settings import ClientSettings
from chatroom.client.widgets.chat_input import ChatInput
from chatroom.client.widgets.chat_log import ChatLog
from chatroom.client.widgets.status_header import StatusHeader
from chatroom.client.widgets.user_list import UserList
from chatroom.protocol import Fact, Message, Notice, NoticeCode

SIZE = (140, 40)  # wide enough that the lines tested for do not wrap


def client(port: int, name: str | None = "ann", **settings) -> ChatApp:
    settings.setdefault("tz", UTC)
    settings.setdefault("reconnect", Backoff(initial=0.1, maximum=0.2, jitter=0))
    return ChatApp(ClientSettings("127.0.0.1", port, name, **settings))


def own_name(app: ChatApp) -> str | None:
    return app.chat.roster.own_name


def header_text(app: ChatApp) -> str:
    header = app.chat.query_one(StatusHeader)
    return " ".join(str(label.content) for label in header.query(Label))


async def joined(pilot, name: str = "ann") -> None:
    """Connected, named ``name``, and the user list filled from /who."""
    app = pilot.app
    await eventually(
        lambda: own_name(app) == name and not app.chat.own_requests.awaiting_who, pilot
    )


async def test_chat_in_both_directions_shows_remote_text_verbatim(room, join_nc):
    nc = await join_nc(room, "a[/]b")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await nc.say("[bold]x[/bold] hi")
        await eventually(lambda: "a[/]b [bold]x[/bold] hi" in log_text(app), pilot)

        await submit(pilot, "hello from ann")
        assert await nc.read_until("hello from ann") == "<ann> hello from ann"
        await submit(pilot, "//shrug")
        assert await nc.read_until("shrug") == "<ann> /shrug"
        await submit(pilot, "/me waves")
        assert "waves" in await nc.read_until("waves")
        await eventually(lambda: "* ann waves" in log_text(app), pilot)

        await nc.say("/msg ann psst")
        # In its own conversation (issue 21), not in the room's log.
        await eventually(lambda: "[private] a[/]b → psst" in buffer_text(app, "a[/]b"), pilot)
        assert "psst" not in buffer_text(app)


async def test_mention_of_own_name_notifies(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await nc.say("ann: are you there?")
        await eventually(
            lambda: "bob mentioned you" in [n.title for n in app._notifications], pilot
        )


async def test_user_list_follows_join_rename_and_leave(room, join_nc):
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        assert users.names() == ["ann"] and users.border_title == "Users (1)"
        assert "(you)" in str(users.get_option_at_index(0).prompt)

        nc = await join_nc(room)
        await eventually(lambda: nc.id in users.names(), pilot)
        assert users.border_title == "Users (2)"
        await nc.say("rename|zed")
        await eventually(lambda: users.names() == ["ann", "zed"], pilot)
        await nc.say("/quit later")
        await eventually(lambda: users.names() == ["ann"], pilot)
        assert users.border_title == "Users (1)"
        assert "zed left (later)" in log_text(app)


async def test_selecting_a_user_starts_a_private_message(room, join_nc):
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        users = app.chat.query_one(UserList)
        await eventually(lambda: "bob" in users.names(), pilot)
        users.focus()
        bob = next(option.id for option in users.options if users.name_of(option.id) == "bob")
        users.highlighted = users.get_option_index(bob)
        await pilot.press("enter")
        chat_input = app.chat.query_one(ChatInput)
        assert chat_input.value == "/msg bob " and chat_input.has_focus


async def test_rename_dialog_checks_as_you_type_and_closes_on_success(room, join_nc):
    nc = await join_nc(room)
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await pilot.press("f2")
        dialog = app.screen
        assert isinstance(dialog, RenameDialog)
        name_input = dialog.query_one("#new-name", Input)
        assert name_input.has_focus and name_input.value == "ann"

        await pilot.press("backspace", "backspace", "backspace", "space")
        problem = dialog.query_one("#problem", Label)
        assert "spaces" in str(problem.content)
        assert dialog.query_one("#apply").disabled
        await pilot.press("backspace", *"zoë")
        assert str(problem.content) == ""

        await pilot.press("enter")
        await eventually(lambda: not isinstance(app.screen, RenameDialog), pilot)
        assert own_name(app) == "zoë"
        assert "zoë" in header_text(app)
        assert (await nc.read_until("ann is now")).endswith("ann is now zoë")


async def test_rename_dialog_shows_a_taken_name_and_stays_open(room, join_nc):
    await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await pilot.press("f2", "ctrl+u", *"BOB", "enter")
        dialog = app.screen
        assert isinstance(dialog, RenameDialog)
        problem = dialog.query_one("#problem", Label)
        await eventually(lambda: "taken" in str(problem.content), pilot)
        assert problem.has_class("refused")
        assert own_name(app) == "ann"
        await pilot.press("escape")
        assert not isinstance(app.screen, RenameDialog)


async def test_a_taken_name_at_start_opens_the_rename_dialog(room, join_nc):
    await join_nc(room, "ann")
    app = client(room.port, "Ann")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, RenameDialog), pilot)
        dialog = app.screen
        assert "taken" in str(dialog.query_one("#problem", Label).content)
        assert dialog.query_one("#new-name", Input).value == "Ann"
        await pilot.press("ctrl+u", *"ann2", "enter")
        await eventually(lambda: own_name(app) == "ann2", pilot)


async def test_input_history_and_tab_completion(room, join_nc):
    await join_nc(room, "bobby")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        chat_input = app.chat.query_one(ChatInput)
        for line in ["first", "second"]:
            await pilot.press(*line, "enter")
        assert chat_input.value == ""
        await pilot.press(*"dra")
        await pilot.press("up")
        assert chat_input.value == "second"
        await pilot.press("up")
        assert chat_input.value == "first"
        await pilot.press("down", "down")
        assert chat_input.value == "dra"

        await pilot.press("ctrl+u", *"zq", "tab")  # no such name: Tab stays in the input
        assert chat_input.value == "zq" and chat_input.has_focus
        await pilot.press("ctrl+u", *"bo", "tab")
        assert chat_input.value == "bobby: "
        assert chat_input.has_focus
        await pilot.press(*"hi", "enter")
        await eventually(lambda: "ann bobby: hi" in log_text(app), pilot)


async def test_server_going_away_is_shown_and_the_client_reconnects(make_room, join_nc):
    room = await make_room()
    port = room.port
    # Retries a second apart, so the header shows the shutdown long enough to be seen on
    # a busy machine (0.1 s apart, it could be replaced by "connection refused" between
    # two looks).
    app = client(port, reconnect=Backoff(initial=1.0, maximum=1.0, jitter=0))
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await room.shutdown()
        await eventually(lambda: "server shut down" in header_text(app), pilot)
        assert "disconnected: server shut down; reconnecting" in log_text(app)
        assert app.chat.query_one(UserList).names() == []

        await make_room(port=port)
        await eventually(
            lambda: app.chat.link_state is LinkState.CONNECTED and own_name(app) == "ann", pilot
        )
        assert "● connected" in header_text(app)


async def test_idle_timeout_waits_for_the_user_to_reconnect(make_room):
    room = await make_room(idle_timeout=0.5)
    app = client(room.port, name=None)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: "idle timeout · ctrl+r reconnect" in header_text(app), pilot)
        text = log_text(app)
        assert "press ctrl+r to reconnect" in text
        assert app.chat.check_action("reconnect", ())
        await asyncio.sleep(0.4)  # longer than the retry delay: no reconnect on its own
        assert app.chat.link_state is LinkState.DISCONNECTED

        await pilot.press("ctrl+r")
        await eventually(lambda: log_text(app).count("connected as") == 2, pilot)


async def test_idle_warning_is_shown_prominently(room):
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        warning = Notice(
            NoticeCode.IDLE_WARNING, "you will be disconnected in 10 s", fact=Fact.IDLE, seconds=10
        )
        app.chat.post_message(ServerEventReceived(warning))
        await eventually(lambda: "disconnected in 10 s" in log_text(app), pilot)
        assert "idle: kicked in 10s · any key stays" in header_text(app)
        await asyncio.sleep(1.1)
        await eventually(lambda: "idle: kicked in 9s" in header_text(app), pilot)


async def test_any_key_during_the_idle_countdown_keeps_the_user_in_the_room(make_room, join_nc):
    # The server warns 3 s before its 4 s idle kick (a real room warns only above 20 s):
    # seconds enough for the key to reach it on a busy machine.
    room = await make_room(idle_timeout=4, idle_warning_min_timeout=0.5, idle_warning_lead=3.0)
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await eventually(lambda: "· any key stays" in header_text(app), pilot)
        assert "idle: kicked in " in header_text(app)
        assert "disconnected in 3s" in log_text(app)
        await pilot.press("x")  # any key: it also goes into the input line as usual
        await eventually(lambda: "idle:" not in header_text(app), pilot)
        assert app.chat.query_one(ChatInput).value == "x"
        await asyncio.sleep(3.2)  # past the kick the warning announced
        assert app.chat.link_state is LinkState.CONNECTED
        assert "pong" not in log_text(app)  # neither the /ping nor its answer is logged
        nc = await join_nc(room, "bob")  # (now: the room would kick a silent bob too)
        await nc.say("hi ann")
        await eventually(lambda: "hi ann" in log_text(app), pilot)
        assert app.chat.link_state is LinkState.CONNECTED  # 4 s after joining, still in
        await submit(pilot, "/ping typed")  # one the user typed is answered in the log
        await eventually(lambda: "pong typed" in log_text(app), pilot)


async def test_ctrl_q_says_goodbye_and_exits_cleanly(room, join_nc):
    nc = await join_nc(room, "bob")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await pilot.press("ctrl+q")
    assert app.return_code == 0 and app.failure is None
    assert "ann left" in await nc.read_until("ann left")


async def test_an_unreachable_server_ends_the_app_with_a_reason(room):
    port = room.port
    await room.shutdown()
    app = client(port)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.failure is not None, pilot)
    assert app.return_code == 1
    assert app.failure == f"cannot reach 127.0.0.1:{port}: Connection refused"


async def test_log_is_bounded_and_does_not_yank_a_reader_who_scrolled_up():
    app = ChatApp(ClientSettings("127.0.0.1", 9, tz=UTC, scrollback=200), autoconnect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.chat
        for seq in range(1, 301):
            screen.post_message(
                ServerEventReceived(
                    Message(seq=seq, ts=0, id="x:1", name="bob", text=f"line {seq}")
                )
            )
        log = screen.query_one(ChatLog)
        await eventually(lambda: "bob line 300" in log_text(app), pilot)
        assert len(log.buffer.lines) == 200 and "bob line 100\n" not in log_text(app) + "\n"
        await eventually(lambda: log.is_vertical_scroll_end, pilot)  # it followed the lines

        log.scroll_to(y=10, animate=False)
        await pilot.pause()
        top = log.plain_lines()[10]
        screen.post_message(
            ServerEventReceived(Message(seq=301, ts=0, id="x:1", name="bob", text="line 301"))
        )
        await eventually(lambda: "bob line 301" in log.plain_lines()[-1], pilot)
        # The oldest line went, and the reader still sees the same line at the top.
        assert log.plain_lines()[round(log.scroll_y)] == top and not log.following


async def test_a_reconnect_replays_only_what_the_log_does_not_hold(room, join_nc):
    nc = await join_nc(room, "bob")
    await nc.say("before one")
    await nc.say("before two")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await eventually(lambda: "bob before two" in log_text(app), pilot)
        await nc.say("live one")
        await eventually(lambda: "bob live one" in log_text(app), pilot)

        await submit(pilot, "/quit")
        await eventually(lambda: app.chat.link_state is LinkState.DISCONNECTED, pilot)
        await nc.say("while away")
        await nc.read_until("while away")
        await pilot.press("ctrl+r")
        await eventually(lambda: "bob while away" in log_text(app), pilot)
        await joined(pilot)
        text = log_text(app)
        for line in ["bob before one", "bob before two", "bob live one", "bob while away"]:
            assert text.count(line) == 1, line
        assert text.count("earlier messages") == 2  # the first replay, and "while away"
        assert text.index("bob live one") < text.index("bob while away")


async def test_tab_on_an_ambiguous_command_shows_the_matches_and_keeps_msg_private(room, join_nc):
    bob = await join_nc(room, "[bold]x")
    carol = await join_nc(room, "carol")
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await eventually(lambda: "[bold]x" in app.chat.query_one(UserList).names(), pilot)
        chat_input = app.chat.query_one(ChatInput)

        def hint() -> str:
            return Content.from_markup(chat_input.border_subtitle or "").plain

        await pilot.press(*"/m", "tab")
        assert chat_input.value == "/msg "
        assert hint() == "Tab: [/msg] /me /motd /mute"
        await pilot.press(*"[b", "tab")
        assert chat_input.value == "/msg [bold]x "
        assert hint() == "private to [bold]x"
        await pilot.press(*"psst secret", "enter")
        assert "psst secret" in await bob.read_until("psst secret")
        await carol.say("still here")
        line = await carol.read_until("still here")  # carol never saw the secret
        assert line == "<carol> still here"


async def test_a_line_typed_while_disconnected_stays_in_the_input(make_room):
    room = await make_room()
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await room.shutdown()
        await eventually(lambda: app.chat.link_state is not LinkState.CONNECTED, pilot)
        chat_input = app.chat.query_one(ChatInput)
        chat_input.focus()
        await pilot.press(*"still mine", "enter")
        await eventually(lambda: "not connected: nothing was sent" in log_text(app), pilot)
        assert chat_input.value == "still mine"
