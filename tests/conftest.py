"""Shared fixtures: a real server on an ephemeral 127.0.0.1 port and raw-socket peers.

Peers are plain TCP connections speaking the line protocol, exactly what an ``nc`` user
sends; nothing of the network is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest

from chatroom.server.adapter.app import ChatServer, start_server
from chatroom.server.config import ServerConfig
from tests import processes

# redis_server / redis_url: a real redis-server per test, for the cluster tests.
pytest_plugins = ["tests.redis_fixture"]

TIMEOUT = 5.0  # generous: this machine is shared and noisy; tests never assert on speed


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """After every test, passed or failed, and after its own fixtures' teardown: stop each
    process it spawned (tests/processes.py) that is still running, with its process group."""
    try:
        yield
    finally:
        processes.stop_all()


# Defaults for tests: no flood pacing and no idle kick unless a test asks for them.
TEST_CONFIG = ServerConfig(host="127.0.0.1", port=0, rate=0, idle_timeout=0)


class LineReader:
    """What every kind of peer reads with, built on its own ``line()`` and ``send()``."""

    async def line(self, timeout: float = TIMEOUT) -> str:
        raise NotImplementedError

    async def send(self, line: str | bytes) -> None:
        raise NotImplementedError

    async def until(self, predicate: Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """Read lines until one satisfies ``predicate``; return it."""
        async with asyncio.timeout(timeout):
            while True:
                line = await self.line(timeout)
                if predicate(line):
                    return line

    async def until_contains(self, text: str, timeout: float = TIMEOUT) -> str:
        return await self.until(lambda line: text in line, timeout)

    async def event(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        return json.loads(await self.line(timeout))

    async def until_event(self, kind: str, timeout: float = TIMEOUT, **fields: Any) -> dict:
        """Read JSON lines until an event of ``kind`` with the given field values arrives."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.event(timeout)
                if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                    return event

    async def to_json(self) -> dict[str, Any]:
        """Switch to JSON mode; return the welcome (text lines before it are skipped)."""
        await self.send("/format json")
        await self.until(lambda line: line == '{"type":"format","format":"json"}')
        welcome = await self.event()
        assert welcome["type"] == "welcome"
        return welcome


class Peer(LineReader):
    """One raw TCP user of the room, like ``nc``: writes lines, reads lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
        return cls(reader, writer)

    @property
    def local_id(self) -> str:
        host, port = self.writer.get_extra_info("sockname")[:2]
        return f"{host}:{port}"

    async def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else (line + "\n").encode()
        self.writer.write(data)
        await self.writer.drain()

    async def line(self, timeout: float = TIMEOUT) -> str:
        raw = await asyncio.wait_for(self.reader.readline(), timeout)
        if not raw:
            raise EOFError("the server closed the connection")
        return raw.decode().rstrip("\n")

    async def closed(self, timeout: float = TIMEOUT) -> bytes:
        """Everything until the server closes the connection."""
        return await asyncio.wait_for(self.reader.read(), timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[ChatServer]]]:
    servers: list[ChatServer] = []

    async def make(**overrides: Any) -> ChatServer:
        server = await start_server(dataclasses.replace(TEST_CONFIG, **overrides))
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.shutdown()


@pytest.fixture
async def server(make_server) -> ChatServer:
    return await make_server()


@pytest.fixture
async def make_peer() -> AsyncIterator[Callable[[ChatServer], Awaitable[Peer]]]:
    peers: list[Peer] = []

    async def make(server: ChatServer, *, joined: bool = True) -> Peer:
        """A connected peer; with ``joined`` it has read up to its own join line."""
        peer = await Peer.connect(server.port)
        peers.append(peer)
        if joined:
            await peer.until_contains(f"*** {peer.local_id} joined")
        return peer

    yield make
    for peer in peers:
        await peer.close()
