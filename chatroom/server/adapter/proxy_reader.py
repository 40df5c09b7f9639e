"""Reading a trusted balancer's PROXY header on the accepted socket, before anything else.

A connection from ``--proxy-protocol-from`` begins with a header naming the client; it is
read here, on the raw socket, before the connection is anyone's: before the room sees it,
and on the TLS port before the TLS layer (HAProxy's ``send-proxy`` in TCP mode sends it
ahead of the ClientHello). What follows the header in the same reads is handed on, to the
room's connection or to the TLS handshake, as the client's first bytes.

Bounded: at most :data:`~chatroom.server.core.proxy_protocol.MAX_HEADER` bytes plus one
read are held, the whole header must come within ``timeout``, and a v2 header is parsed
once, when its announced length has arrived (not again for every byte of it).
"""

from __future__ import annotations

import asyncio
import socket
import struct

from chatroom.server.core.proxy_protocol import (
    MAX_HEADER,
    V2_FIXED,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse,
)

CHUNK = 4096  # bytes asked for per read


async def read_proxy_header(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float
) -> tuple[ProxyHeader, bytes]:
    """The header at the start of ``sock``'s input, and the bytes read past it. Raises
    :class:`ProxyHeaderError` (malformed, incomplete at EOF or after ``timeout``) or
    OSError (reset)."""
    buffer = bytearray()
    needed = 1  # bytes to have before the next parse
    try:
        async with asyncio.timeout(timeout):
            while True:
                data = await loop.sock_recv(sock, CHUNK)
                if not data:
                    raise ProxyHeaderError("connection closed before its PROXY header was complete")
                buffer += data
                if len(buffer) < needed:
                    continue
                header = parse(bytes(buffer[: MAX_HEADER + 1]))
                if header is not None:
                    return header, bytes(buffer[header.length :])
                needed = _v2_length(buffer) or len(buffer) + 1
    except TimeoutError:
        raise ProxyHeaderError(f"no complete PROXY header within {timeout:g}s") from None


def _v2_length(buffer: bytearray) -> int | None:
    """The whole length of a v2 header whose fixed part has come, else None."""
    if len(buffer) < V2_FIXED or not buffer.startswith(V2_SIGNATURE):
        return None
    (length,) = struct.unpack_from("!H", buffer, 14)
    return V2_FIXED + length
