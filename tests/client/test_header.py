"""Issue 21, item 6: the header's link state and next key win over the topic at every
width (read from what the terminal shows)."""

from __future__ import annotations

import pytest
from chat_helpers import eventually, screen_text
from test_app import client, header_text

from chatroom.client.messages import LinkState, ServerEventReceived
from chatroom.protocol import Topic

LONG_TOPIC = "release planning for the winter: " + "very long words " * 6


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (120, "● disconnected: idle timeout · ctrl+r reconnect"),
        (80, "● disconnected: idle timeout · ctrl+r reconnect"),
        (60, "● disconnected: idle timeout · ctrl+r reconnect"),
        (40, "● idle timeout · ctrl+r reconnect"),
    ],
)
async def test_the_link_state_and_next_key_are_shown_whole_beside_a_long_topic(
    make_room, width, expected
):
    room = await make_room(idle_timeout=0.5)
    app = client(room.port, name=None)
    async with app.run_test(size=(width, 24)) as pilot:
        await eventually(lambda: app.chat.link_state is LinkState.DISCONNECTED, pilot)
        # The topic as the room's topic event gives it (an operator set it).
        app.chat.post_message(ServerEventReceived(Topic(text=LONG_TOPIC, by="root")))
        await eventually(lambda: "release planning" in header_text(app), pilot)

        def header() -> str:
            return screen_text(app).splitlines()[0]

        await eventually(lambda: expected in header(), pilot)
