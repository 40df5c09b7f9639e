"""Client test fixtures: a real chatroom server in this process, and nc-like peers.

The server runs on an ephemeral 127.0.0.1 port; peers are raw TCP connections in the
server's default text mode, exactly what someone on ``nc`` sends and sees.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from chat_helpers import NcUser

from chatroom.server.adapter.app import ChatServer


# The room is the server fixture of tests/conftest.py under the name these tests read best.
@pytest.fixture
def make_room(make_server) -> Callable[..., Awaitable[ChatServer]]:
    return make_server


@pytest.fixture
async def room(server) -> ChatServer:
    return server


@pytest.fixture
async def join_nc() -> AsyncIterator[Callable[..., Awaitable[NcUser]]]:
    users: list[NcUser] = []

    async def join(server: ChatServer, name: str | None = None) -> NcUser:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        user = NcUser(reader, writer)
        users.append(user)
        await user.read_until(f"{user.id} joined")
        if name is not None:
            await user.say(f"rename|{name}")
            await user.read_until(f"is now {name}")
        return user

    yield join
    for user in users:
        await user.close()
