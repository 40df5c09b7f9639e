"""Client test fixtures: a real chatroom server in this process, and nc-like peers.

The server runs on an ephemeral 127.0.0.1 port; peers are raw TCP connections in the
server's default text mode, exactly what someone on ``nc`` sends and sees.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from chat_helpers import NcUser

from chatroom.server.app import ChatServer, start_server
from chatroom.server.config import ServerConfig

ROOM_CONFIG = ServerConfig(host="127.0.0.1", port=0, rate=0, idle_timeout=0)


@pytest.fixture
async def make_room() -> AsyncIterator[Callable[..., Awaitable[ChatServer]]]:
    servers: list[ChatServer] = []

    async def make(**settings: Any) -> ChatServer:
        server = await start_server(dataclasses.replace(ROOM_CONFIG, **settings))
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.shutdown()


@pytest.fixture
async def room(make_room) -> ChatServer:
    return await make_room()


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
