"""The link's loop against a real server, without Textual: its states, its events, its
reconnects and when it waits for the user."""

from __future__ import annotations

import asyncio

from chat_helpers import DEADLINE, eventually

from chatroom.client.connection import Backoff
from chatroom.client.link import Link, LinkState, LinkStatus
from chatroom.client.settings import ClientSettings
from chatroom.protocol import Welcome

FAST = Backoff(initial=0.05, maximum=0.05, jitter=0)


def settings(port: int) -> ClientSettings:
    return ClientSettings("127.0.0.1", port, reconnect=FAST)


async def test_a_server_never_reached_ends_the_run_at_once(room):
    port = room.port
    await room.shutdown()
    statuses: list[LinkStatus] = []
    link = Link(settings(port))
    async with asyncio.timeout(DEADLINE):
        await link.run(statuses.append, lambda event: None)
    assert [s.state for s in statuses] == [LinkState.CONNECTING, LinkState.DISCONNECTED]
    assert statuses[-1].first_attempt and statuses[-1].retry_in is None
    assert statuses[-1].detail == "Connection refused"
    assert not link.send("hello")


async def test_events_flow_a_lost_server_is_retried_and_quit_waits_for_the_user(make_room, join_nc):
    room = await make_room()
    port = room.port
    nc = await join_nc(room, "bob")
    statuses: list[LinkStatus] = []
    events: list[object] = []
    link = Link(settings(port))
    running = asyncio.ensure_future(link.run(statuses.append, events.append))
    try:
        await eventually(lambda: any(isinstance(e, Welcome) for e in events))
        assert link.send("hello from the link")
        await nc.read_until("hello from the link")

        await room.shutdown()
        await eventually(lambda: any(s.retry_in is not None for s in statuses))
        down = next(s for s in statuses if s.state is LinkState.DISCONNECTED)
        assert down.detail == "server shut down" and not down.first_attempt
        room = await make_room(port=port)
        nc = await join_nc(room, "bob")
        await eventually(lambda: sum(isinstance(e, Welcome) for e in events) == 2)

        await link.leave("bye")
        await nc.read_until("left (quit: bye)")
        async with asyncio.timeout(DEADLINE):
            await running  # /quit: no reconnect on its own
        assert statuses[-1] == LinkStatus(LinkState.DISCONNECTED, "you left", retry_in=None)
    finally:
        running.cancel()
