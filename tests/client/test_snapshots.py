"""Snapshots of the main screen and the rename dialog at 80x24 (dark and light themes), 120x40
and 40x12, and of issue 21's views (a private conversation, the search bar, the Ban
question, the bare view, the /help table) at 80x24 and 40x12.

The events are fed to the screen as the connection worker would post them, with fixed
ids and timestamps (UTC), so the picture is the same on every run. Conversations with a
real server are covered by test_app.py; this is only about how the screen looks.
"""

from __future__ import annotations

from datetime import UTC

import pytest

from chatroom.client.app import ChatApp
from chatroom.client.messages import LinkChanged, LinkState, ServerEventReceived
from chatroom.client.settings import ClientSettings
from chatroom.protocol import (
    Action,
    Join,
    Leave,
    LeaveReason,
    Message,
    Private,
    Rename,
    Welcome,
    Who,
    WhoEntry,
)

ME, BOB, ODD, CAROL = "10.0.0.2:50001", "10.0.0.3:50002", "10.0.0.4:50003", "10.0.0.5:50004"
T = 1_700_000_000.0  # 22:13 UTC

CONVERSATION = [
    Welcome(id=ME, name=ME, idle_timeout=60, users=3),
    Message(seq=3, ts=T - 600, id=BOB, name="bob", text="morning all", history=True),
    Who(users=(WhoEntry(ME, ME, 0), WhoEntry(BOB, "bob", 4), WhoEntry(ODD, "a[/]b", 9))),
    Rename(seq=10, ts=T, id=ME, old=ME, new="ann"),
    Join(seq=11, ts=T + 5, id=CAROL, name="carol"),
    Message(seq=12, ts=T + 20, id=BOB, name="bob", text="hi ann, [bold]welcome[/bold]"),
    Message(seq=13, ts=T + 30, id=ME, name="ann", text="thanks bob!"),
    Action(seq=14, ts=T + 40, id=CAROL, name="carol", text="waves"),
    Message(seq=15, ts=T + 45, id=ODD, name="a[/]b", text="brackets [/] stay as typed"),
    Private(ts=T + 50, sender="bob", recipient="ann", text="lunch later?"),
    Leave(seq=16, ts=T + 70, id=CAROL, name="carol", reason=LeaveReason.TIMEOUT),
]


def steady_cursor(app: ChatApp) -> None:
    """The input's cursor without blinking: a blink timer that fires late on a busy
    machine (a slow run) showed the cursor in one picture and not in the other."""
    from chatroom.client.widgets.chat_input import ChatInput

    app.chat.query_one(ChatInput).cursor_blink = False


def chat_app(theme: str) -> ChatApp:
    # A fixed clock: lines without a time of their own (notices, the client's) show it.
    settings = ClientSettings("chat.example.org", 8087, tz=UTC, now=lambda: T + 80)
    app = ChatApp(settings, autoconnect=False)
    app.theme = theme
    return app


async def feed_conversation(pilot) -> None:
    screen = pilot.app.chat
    steady_cursor(pilot.app)
    screen.post_message(LinkChanged(LinkState.CONNECTED))
    for event in CONVERSATION:
        screen.post_message(ServerEventReceived(event))
    await pilot.pause()
    log = screen.query_one("#log")
    while len(log.plain_lines()) < len(log.buffer.lines):  # drawn with the next frame
        await pilot.pause(0.05)
    pilot.app.clear_notifications()  # toasts would cover the log; tested in test_app.py
    await pilot.pause()


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
def test_main_screen(snap_compare, theme):
    assert snap_compare(chat_app(theme), terminal_size=(80, 24), run_before=feed_conversation)


def test_rename_dialog(snap_compare):
    async def open_dialog(pilot) -> None:
        await feed_conversation(pilot)
        await pilot.press("f2", "space", *"x")

    assert snap_compare(chat_app("textual-dark"), terminal_size=(80, 24), run_before=open_dialog)


@pytest.mark.parametrize("size", [(120, 40), (40, 12)])
def test_main_screen_sizes(snap_compare, size):
    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=feed_conversation)


def test_rename_dialog_narrow(snap_compare):
    async def open_dialog(pilot) -> None:
        await feed_conversation(pilot)
        await pilot.press("f2")

    assert snap_compare(chat_app("textual-dark"), terminal_size=(40, 12), run_before=open_dialog)


# --- issue 21's views ---------------------------------------------------------------------

SIZES = [(80, 24), (40, 12)]


@pytest.mark.parametrize("size", SIZES)
def test_private_conversation(snap_compare, size):
    async def show_private(pilot) -> None:
        await feed_conversation(pilot)
        await pilot.press("alt+right")  # bob's conversation, from the bar
        await pilot.pause()

    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=show_private)


@pytest.mark.parametrize("size", SIZES)
def test_search_bar(snap_compare, size):
    async def search(pilot) -> None:
        await feed_conversation(pilot)
        await pilot.press("ctrl+f", *"bob")
        await pilot.pause()

    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=search)


@pytest.mark.parametrize("size", SIZES)
def test_ban_question(snap_compare, size):
    async def ask(pilot) -> None:
        await feed_conversation(pilot)
        from chatroom.client.moderation import ban_question
        from chatroom.client.screens.confirm_dialog import ConfirmDialog

        question = ban_question(pilot.app.chat.roster, BOB, "bob")
        pilot.app.push_screen(ConfirmDialog("Ban bob?", question, "Ban"))
        await pilot.pause()

    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=ask)


@pytest.mark.parametrize("size", SIZES)
def test_bare_view(snap_compare, size):
    async def bare(pilot) -> None:
        await feed_conversation(pilot)
        await pilot.press("alt+l")
        await pilot.pause()

    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=bare)


@pytest.mark.parametrize("size", SIZES)
def test_help_table(snap_compare, size):
    async def show_help(pilot) -> None:
        await feed_conversation(pilot)
        pilot.app.chat.send_typed("/help")
        log = pilot.app.chat.query_one("#log")
        while "Ctrl+Q" not in "\n".join(log.plain_lines()):  # drawn (the next frame)
            await pilot.pause(0.05)
        log.scroll_to(y=14, animate=False, immediate=True)
        await pilot.pause()

    assert snap_compare(chat_app("textual-dark"), terminal_size=size, run_before=show_help)
