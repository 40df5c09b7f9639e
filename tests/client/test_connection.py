"""ServerConnection against a real server: the plain networking layer, no Textual."""

from __future__ import annotations

import asyncio

import pytest
from chat_helpers import DEADLINE

from chatroom.client.connection import CloseCause, ServerConnection
from chatroom.protocol import Join, Message, Notice, NoticeCode, Welcome


async def collect_until(connection, predicate, deadline=DEADLINE):
    events = []
    async with asyncio.timeout(deadline):
        async for event in connection.events():
            events.append(event)
            if predicate(event):
                return events
    return events


async def test_open_skips_the_text_greeting_and_yields_json_events(room, join_nc):
    nc = await join_nc(room, "nina")
    await nc.say("before you came")
    connection = await ServerConnection.open("127.0.0.1", room.port)
    try:
        events = await collect_until(connection, lambda e: isinstance(e, Message))
        welcome = events[0]
        assert isinstance(welcome, Welcome) and welcome.users == 2
        assert events[-1] == Message(
            seq=events[-1].seq,
            ts=events[-1].ts,
            id=nc.id,
            name="nina",
            text="before you came",
            history=True,
            room="main",
        )
        connection.send("hello nc")
        assert (await nc.read_until("hello nc")).endswith("hello nc")
        await nc.say("hello client")
        events = await collect_until(
            connection, lambda e: isinstance(e, Message) and e.text == "hello client"
        )
        assert not events[-1].history and events[-1].id == nc.id
    finally:
        await connection.close()


async def test_idle_timeout_is_the_close_cause(make_room):
    room = await make_room(idle_timeout=0.5)
    connection = await ServerConnection.open("127.0.0.1", room.port)
    events = await collect_until(connection, lambda e: False)
    assert any(isinstance(e, Notice) and e.code is NoticeCode.TIMEOUT for e in events)
    assert connection.cause is CloseCause.IDLE_TIMEOUT


async def test_quit_is_the_close_cause(room):
    connection = await ServerConnection.open("127.0.0.1", room.port)
    connection.send("/quit see you")
    await collect_until(connection, lambda e: False)
    assert connection.cause is CloseCause.QUIT


async def test_shutdown_is_the_close_cause(make_room, join_nc):
    room = await make_room()
    connection = await ServerConnection.open("127.0.0.1", room.port)
    nc = await join_nc(room)
    await collect_until(connection, lambda e: isinstance(e, Join) and e.id == nc.id)
    shutting_down = asyncio.create_task(room.shutdown())
    await collect_until(connection, lambda e: False)
    await shutting_down
    assert connection.cause is CloseCause.SHUTDOWN


async def test_open_fails_with_oserror_when_nobody_listens(room):
    port = room.port
    await room.shutdown()
    with pytest.raises(OSError):
        await ServerConnection.open("127.0.0.1", port)
