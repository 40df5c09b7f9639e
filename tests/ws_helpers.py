"""A WebSocket user of the room, with a real client (websockets'), and raw-socket helpers
for the upgrade requests no well-behaved client would send."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from tests.conftest import TIMEOUT, LineReader

UPGRADE = (
    "GET {path} HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
)


class WsPeer(LineReader):
    """One WebSocket user: each line it sends is one text message, each line it reads too."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, port: int, scheme: str = "ws", **options: Any) -> WsPeer:
        return cls(await connect(f"{scheme}://127.0.0.1:{port}/", **options))

    @property
    def local_id(self) -> str:
        host, port = self.ws.local_address[:2]
        return f"{host}:{port}"

    async def send(self, line: str | bytes) -> None:
        await self.ws.send(line)

    async def line(self, timeout: float = TIMEOUT) -> str:
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(message, str), f"a binary message from the server: {message!r}"
        return message

    async def closed(self, timeout: float = TIMEOUT) -> tuple[list[str], Close | None]:
        """The lines read until the server closed the connection, and the close frame it
        sent (None: it sent none, the TCP connection just ended)."""
        lines: list[str] = []
        async with asyncio.timeout(timeout):
            try:
                while True:
                    lines.append(await self.line(timeout))
            except ConnectionClosed as exc:
                return lines, exc.rcvd

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()


def raw_upgrade(port: int, path: str = "/", extra: str = "", end: bool = True) -> socket.socket:
    """A socket that sent an upgrade request (``extra``: more header lines, each ending in
    CRLF; ``end``: with the blank line that completes it)."""
    sock = socket.create_connection(("127.0.0.1", port))
    request = UPGRADE.format(path=path, port=port) + extra + ("\r\n" if end else "")
    sock.sendall(request.encode())
    return sock


async def http_answer(sock: socket.socket, timeout: float = TIMEOUT) -> str:
    """What the server answered on ``sock`` up to the end of its headers, or up to its
    close (the status line first)."""
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while b"\r\n\r\n" not in data:
            try:
                chunk = await loop.sock_recv(sock, 4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")
