"""Issue 19 item 4, the view: the rooms panel with Pilot and a snapshot, fed the events a
server with rooms sends (docs/PROTOCOL.md "Rooms"), as the connection worker posts them.

Against the real server: test_rooms_end_to_end.py. Here: the panel lists the rooms and a
private conversation with unread counts and a mention mark; Alt+N, Ctrl+N/Ctrl+P and a
click switch; the user list, the header and the topic follow the room shown; each room's
log keeps its scrollback across switches.
"""

from __future__ import annotations

from datetime import UTC

from chat_helpers import eventually, log_text, screen_text
from test_snapshots import steady_cursor

from chatroom.client.app import ChatApp
from chatroom.client.log_buffer import RoomRef
from chatroom.client.messages import LinkChanged, LinkState, ServerEventReceived
from chatroom.client.settings import ClientSettings
from chatroom.client.widgets.buffer_bar import BufferBar
from chatroom.client.widgets.chat_log import ChatLog
from chatroom.client.widgets.conversations import ConversationView
from chatroom.client.widgets.user_list import UserList
from chatroom.protocol import (
    Join,
    Message,
    Private,
    RoomEntered,
    Welcome,
    Who,
    WhoEntry,
)

ME, BOB, CAT = "10.0.0.2:50001", "10.0.0.3:50002", "10.0.0.4:50003"
T = 1_700_000_000.0

GREETING = [
    Welcome(id=ME, name="ann", idle_timeout=0, users=2, epoch="e", room="main"),
    Who(users=(WhoEntry(ME, "ann", 0), WhoEntry(BOB, "bob", 4)), room="main"),
    Message(seq=5, ts=T, id=BOB, name="bob", text="morning", room="main"),
    RoomEntered(room="dev", users=2, topic="release on friday"),
    Message(seq=7, ts=T - 60, id=CAT, name="cat", text="tests are green", history=True, room="dev"),
    Join(seq=8, ts=T + 1, id=ME, name="ann", room="dev"),
    Who(users=(WhoEntry(ME, "ann", 0), WhoEntry(CAT, "cat", 9)), room="dev"),
    Message(seq=9, ts=T + 2, id=CAT, name="cat", text="ann: review please?", room="dev"),
    Message(seq=10, ts=T + 3, id=CAT, name="cat", text="thanks", room="dev"),
    Private(ts=T + 4, sender="bob", recipient="ann", text="lunch?"),
]


def rooms_app() -> ChatApp:
    settings = ClientSettings("chat.example.org", 8087, tz=UTC, now=lambda: T + 80)
    return ChatApp(settings, autoconnect=False)


async def feed(pilot, events) -> None:
    screen = pilot.app.chat
    for event in events:
        screen.post_message(ServerEventReceived(event))
    await pilot.pause()


def wire(app) -> list[str]:
    """What the session sends, recorded (the app has no connection: nothing would go, and
    the quiet ``who`` of each room would not be quiet)."""
    sent: list[str] = []
    session = app.chat.session
    session._send = session.room_events._send = lambda line: sent.append(line) or True
    return sent


async def greeted(pilot) -> None:
    pilot.app.sent = wire(pilot.app)
    pilot.app.chat.post_message(LinkChanged(LinkState.CONNECTED))
    await feed(pilot, GREETING)
    log = pilot.app.chat.query_one(ChatLog)
    await eventually(lambda: len(log.plain_lines()) >= len(log.buffer.lines), pilot)
    pilot.app.clear_notifications()
    await pilot.pause()


def panel(app) -> list[str]:
    return str(app.chat.query_one(BufferBar).render()).splitlines()


def users(app) -> list[str]:
    user_list = app.chat.query_one(UserList)
    return [str(user_list.get_option_at_index(i).prompt) for i in range(user_list.option_count)]


def header(app) -> str:
    return screen_text(app).splitlines()[0]


async def test_the_panel_counts_unread_lines_and_marks_a_mention():
    app = rooms_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await greeted(pilot)
        # dev: its greeting, topic, replay (between dividers), our join, two messages.
        assert panel(app) == ["1 #main", "2 #dev (8) !", "3 bob (1) !"]
        assert '{"room":"dev","text":"/who"}' in app.sent
        assert "#main" in header(app) and "morning" in log_text(app)
        assert users(app) == ["ann (you)", "bob"]
        await feed(pilot, [Message(seq=11, ts=T + 5, id=CAT, name="cat", text="x", room="dev")])
        await eventually(lambda: panel(app)[1] == "2 #dev (9) !", pilot)


async def test_alt_number_ctrl_n_ctrl_p_and_a_click_switch_and_the_rest_follows():
    app = rooms_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await greeted(pilot)
        await pilot.press("alt+2")
        await eventually(lambda: "#dev" in header(app), pilot)
        assert "topic: release on friday" in header(app)
        assert users(app) == ["ann (you)", "cat"]
        assert "ann: review please?" in log_text(app) and "morning" not in log_text(app)
        assert panel(app)[1] == "2 #dev"  # read now
        await pilot.press("ctrl+n")  # bob's private conversation
        await eventually(lambda: "lunch?" in log_text(app), pilot)
        assert users(app) == ["ann (you)", "cat"]  # the list stays with the room shown last
        await pilot.press("ctrl+p", "ctrl+p")
        await eventually(lambda: "morning" in log_text(app), pilot)
        assert users(app) == ["ann (you)", "bob"] and "topic:" not in header(app)
        bar = app.chat.query_one(BufferBar)
        await pilot.click(bar, offset=(3, 2))  # the border's row, then #main, #dev
        await eventually(lambda: "#dev" in header(app), pilot)


async def test_each_room_keeps_its_scrollback_and_position_across_switches():
    app = rooms_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await greeted(pilot)
        lines = [
            Message(seq=11 + n, ts=T + 10 + n, id=CAT, name="cat", text=f"dev line {n}", room="dev")
            for n in range(300)
        ]
        await feed(pilot, lines)
        await pilot.press("alt+2")
        log = app.chat.query_one(ChatLog)
        await eventually(lambda: "dev line 299" in "\n".join(log.plain_lines()), pilot)
        await pilot.press("pageup", "pageup")
        await eventually(lambda: not log.following, pilot)
        top = log.top_line
        await pilot.press("alt+1")
        await eventually(lambda: "morning" in log_text(app), pilot)
        await pilot.press("alt+2")
        await eventually(lambda: "dev line 0" in log_text(app), pilot)
        assert len(log.buffer.lines) >= 300  # every line kept
        view = app.chat.query_one(ConversationView)
        assert view.conversation == RoomRef("dev")
        # Shown again at its newest line (a switch follows the room again), nothing lost.
        assert log.following and top < log.buffer.end - 1


def test_rooms_panel_snapshot(snap_compare):
    async def run_before(pilot) -> None:
        steady_cursor(pilot.app)
        await greeted(pilot)
        await pilot.press("alt+2")
        await feed(pilot, [Message(seq=6, ts=T + 6, id=BOB, name="bob", text="hi", room="main")])
        log = pilot.app.chat.query_one(ChatLog)
        while len(log.plain_lines()) < len(log.buffer.lines):
            await pilot.pause(0.05)
        await pilot.pause()

    assert snap_compare(rooms_app(), terminal_size=(80, 24), run_before=run_before)


async def test_a_room_not_shown_is_wrapped_between_frames_so_a_switch_wraps_nothing():
    app = rooms_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await greeted(pilot)
        view = app.chat.query_one(ConversationView)
        dev = view.buffers.find(RoomRef("dev"))
        lines = [
            Message(seq=11 + n, ts=T + n, id=CAT, name="cat", text=f"line {n} " * 9, room="dev")
            for n in range(2000)
        ]
        await feed(pilot, lines)
        assert dev is not view.buffers.active
        await eventually(lambda: len(dev.rows) == len(dev.lines) >= 2000, pilot, deadline=60)
        log = app.chat.query_one(ChatLog)
        assert dev.rows_width == log.scrollable_content_region.width  # as the log wraps
