"""TlsStream alone, over a real socket pair with a real TLS client (an ssl.MemoryBIO), on
both loops: what it holds after a close_notify, and that a close_notify is an end of input
with the sending side still open."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import pytest
import uvloop

from chatroom.client.connection import tls_context
from chatroom.server.adapter.tls import server_context
from chatroom.server.adapter.tls_stream import TlsStream
from tests import test_tls
from tests.conftest import TIMEOUT

certs = test_tls.certs  # the fixture, shared


class Inner(asyncio.BufferedProtocol):
    """The room's connection, reduced to what it received; it answers at end of input."""

    def __init__(self) -> None:
        self.buffer = bytearray(4096)
        self.received = bytearray()
        self.ended = asyncio.Event()
        self.transport: TlsStream | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self.buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.received += self.buffer[:nbytes]

    def eof_received(self) -> bool:
        self.ended.set()
        return True


def client_hello_to_close_notify(
    sock: socket.socket, cafile: str
) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """Handshake, send a line and our close_notify; the client and its incoming BIO."""
    context = tls_context(cafile)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            incoming.write(sock.recv(65536))
    tls.write(b"hello\n")
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.unwrap()
    sock.sendall(outgoing.read())
    return tls, incoming


async def run(certs: test_tls.Certs) -> None:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    inner = Inner()
    done: list[BaseException | None] = []
    stream = TlsStream(
        server_context(certs.cert, certs.key), loop, TIMEOUT, lambda: inner, done.append
    )
    await loop.connect_accepted_socket(lambda: stream, ours)
    theirs.settimeout(TIMEOUT)
    tls, incoming = await asyncio.to_thread(client_hello_to_close_notify, theirs, certs.cafile)
    await asyncio.wait_for(inner.ended.wait(), TIMEOUT)
    assert done == [None] and bytes(inner.received) == b"hello\n"
    # The peer goes on sending after its close_notify: nothing of it is held.
    junk = b"\x17\x03\x03\x40\x00" + bytes(0x4000)
    await asyncio.to_thread(theirs.sendall, junk * 64)
    await asyncio.sleep(0.2)  # (a lower bound: the server has read it)
    assert stream._incoming is not None and stream._incoming.pending == 0
    # The sending side is still open: what is written after the end of input arrives,
    # then our close_notify.
    stream.write(b"your reply\n")
    stream.close()
    while data := await asyncio.to_thread(theirs.recv, 65536):
        incoming.write(data)
    theirs.close()
    received = bytearray()
    with contextlib.suppress(ssl.SSLZeroReturnError):  # our close_notify, after the reply
        while chunk := tls.read(65536):
            received += chunk
    assert bytes(received) == b"your reply\n"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_close_notify_ends_input_and_nothing_after_it_is_held(certs, loop):
    if loop == "uvloop":
        uvloop.run(run(certs))
    else:
        asyncio.run(run(certs))
