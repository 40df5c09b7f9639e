"""Issue 19 item 4 end to end: the app (Pilot) against a real server with rooms, nc users
in two rooms (text mode: one room at a time, ``/join ROOM``).

The client joins ``#dev`` beside ``main``: the panel counts what arrives in the room not
shown and marks a mention, Alt+N switches with the user list following, a line typed in a
room reaches that room alone, ``/rooms`` and ``/part`` work, and after a reconnect the
client is in both rooms again with what each missed, once.
"""

from __future__ import annotations

import asyncio

from chat_helpers import DEADLINE, buffer_text, eventually, log_text, submit
from test_app import SIZE, client, header_text, joined
from test_rooms_panel import panel, users

from chatroom.client.log_buffer import RoomRef
from chatroom.client.messages import LinkState

DEV = RoomRef("dev")


async def lines_until(nc, text: str) -> list[str]:
    """Every line ``nc`` reads up to the first that contains ``text`` (that one too)."""
    lines: list[str] = []
    async with asyncio.timeout(DEADLINE):
        while True:
            raw = await nc.reader.readline()
            if not raw:
                raise EOFError(f"connection closed before {text!r} arrived")
            lines.append(raw.decode().rstrip("\n"))
            if text in lines[-1]:
                return lines


async def in_dev(nc) -> None:
    await nc.say("/join dev")
    await nc.read_until("now in #dev")


async def test_two_rooms_unread_counts_a_mention_the_switch_and_a_line_for_one_room(room, join_nc):
    carol = await join_nc(room, "carol")  # stays in main
    dave = await join_nc(room, "dave")
    await in_dev(dave)
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/join #Dev")
        await eventually(lambda: "#dev" in header_text(app), pilot)  # shown once greeted
        await eventually(lambda: users(app) == ["ann (you)", "dave"], pilot)  # dev's own
        await submit(pilot, "hello dev")
        assert await dave.read_until("hello dev") == "<ann> hello dev"

        await pilot.press("alt+1")
        await eventually(lambda: users(app) == ["ann (you)", "carol"], pilot)
        assert "#main" in header_text(app)
        for n in range(3):
            await dave.say(f"dev line {n}")
        await eventually(lambda: panel(app)[1] == "2 #dev (3)", pilot)
        await dave.say("ann: a look?")
        await eventually(lambda: panel(app)[1] == "2 #dev (4) !", pilot)
        await carol.say("main line")
        await eventually(lambda: "carol main line" in log_text(app), pilot)
        assert "main line" not in buffer_text(app, DEV)
        assert "dev line" not in log_text(app)
        # carol, in main, never saw what was said in #dev.
        seen = await lines_until(carol, "main line")
        assert not [line for line in seen if "dev line" in line or "hello dev" in line]

        await pilot.press("alt+2")
        await eventually(lambda: "dave ann: a look?" in log_text(app), pilot)
        assert "ann hello dev" in log_text(app)  # the room's scrollback, kept
        assert panel(app)[1] == "2 #dev"

        await submit(pilot, "/rooms")
        await eventually(lambda: "#dev (2 users)" in log_text(app), pilot)
        await submit(pilot, "/part")
        await eventually(lambda: len(panel(app)) <= 1 and "#main" in header_text(app), pilot)
        assert "you left #dev" in log_text(app)
        assert "#dev" not in "".join(panel(app))


async def test_bad_room_names_stay_in_the_input_and_reach_nobody(room, join_nc):
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/join dev!")
        await eventually(lambda: "a room name is 1-32 letters" in log_text(app), pilot)
        assert app.chat.query_one("#input").value == "/join dev!"


async def test_a_reconnect_joins_both_rooms_again_with_what_each_missed_once(room, join_nc):
    carol = await join_nc(room, "carol")
    dave = await join_nc(room, "dave")
    await in_dev(dave)
    app = client(room.port)
    async with app.run_test(size=SIZE) as pilot:
        await joined(pilot)
        await submit(pilot, "/join dev")
        await eventually(lambda: users(app) == ["ann (you)", "dave"], pilot)
        await dave.say("dev before")
        await carol.say("main before")
        await eventually(lambda: "dave dev before" in buffer_text(app, DEV), pilot)
        await eventually(lambda: "carol main before" in buffer_text(app, RoomRef("main")), pilot)

        await submit(pilot, "/quit")
        await eventually(lambda: app.chat.link_state is LinkState.DISCONNECTED, pilot)
        await dave.say("dev while away")
        await dave.read_until("dev while away")
        await carol.say("main while away")
        await carol.read_until("main while away")
        await pilot.press("ctrl+r")
        await eventually(lambda: "dave dev while away" in buffer_text(app, DEV), pilot)
        await eventually(
            lambda: "carol main while away" in buffer_text(app, RoomRef("main")), pilot
        )
        await eventually(lambda: users(app) == ["ann (you)", "dave"], pilot)  # dev's again
        dev, main = buffer_text(app, DEV), buffer_text(app, RoomRef("main"))
        assert dev.count("dave dev before") == 1 and dev.count("dave dev while away") == 1
        assert main.count("carol main before") == 1 and main.count("main while away") == 1
        assert "dev while away" not in main and "main while away" not in dev
        await submit(pilot, "back")
        assert await dave.read_until("back") == "<ann> back"  # in dev, as before
