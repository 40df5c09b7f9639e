"""The real server process between accept() and the room (issue 18, items 6 and 7), on
both event loops: a trusted balancer's PROXY header before the TLS ClientHello, direct
users whose first bytes look like a header, a TLS client that half-closes with
``close_notify``, and pending handshakes counted against ``--max-clients``.

Real TLS handshakes (the ssl module; a MemoryBIO client where the test needs to send a
``close_notify`` and read on), real headers as HAProxy writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl

import pytest

from chatroom.client.connection import tls_context
from tests import test_tls
from tests.conftest import TIMEOUT, Peer
from tests.test_proxy_protocol import V1_TCP4, v2_inet
from tests.test_tls import LOOPS, closed_by_server, silent_socket, still_open

certs = test_tls.certs  # the fixtures, shared
serve_tls = test_tls.serve_tls

BALANCER = ("--proxy-protocol-from", "127.0.0.1/32")


async def from_elsewhere(port: int) -> Peer:
    """A direct user from 127.0.0.2: not the trusted balancer."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=("127.0.0.2", 0), limit=2**20
    )
    return Peer(reader, writer)


async def tls_after(port: int, cafile: str, before: bytes) -> Peer:
    """A TLS connection from 127.0.0.1 (the balancer) that sends ``before`` in plaintext
    first, then the ClientHello: HAProxy's send-proxy in TCP mode."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.sendall(before)
    raw.setblocking(False)
    reader, writer = await asyncio.open_connection(
        sock=raw, ssl=tls_context(cafile), server_hostname="127.0.0.1", limit=2**20
    )
    return Peer(reader, writer)


class TlsHalfCloser:
    """A blocking TLS client over a MemoryBIO: it can send its ``close_notify`` and go on
    reading, which ``SSLSocket`` cannot (its ``unwrap`` waits for the server's)."""

    def __init__(
        self, port: int, cafile: str, version: ssl.TLSVersion | None = None, before: bytes = b""
    ) -> None:
        """Connect and handshake; ``before`` goes in the same segment as the ClientHello."""
        context = tls_context(cafile)
        if version is not None:
            context.minimum_version = context.maximum_version = version
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.before = before
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        self.received = bytearray()
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._send()
                self._receive()
        self._send()

    def _send(self) -> None:
        if self.outgoing.pending:
            before, self.before = self.before, b""
            self.sock.sendall(before + self.outgoing.read())

    def _receive(self) -> bool:
        data = self.sock.recv(65536)
        self.incoming.write(data) if data else self.incoming.write_eof()
        return bool(data)

    def _drain(self) -> str | None:
        """Decrypt what has arrived; "close_notify" once the server's came."""
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLWantReadError:
                return None
            except ssl.SSLZeroReturnError:
                return "close_notify"
            if not chunk:
                return "close_notify"
            self.received += chunk

    def send_then_close_notify(self, data: bytes) -> None:
        """``data``, then our close_notify (the end of our sending side), in one segment:
        the server reads the lines and the close_notify together."""
        self._drain()  # (a second SSL_shutdown must find no record waiting)
        self.tls.write(data)
        with contextlib.suppress(ssl.SSLWantReadError):  # sent, not waiting for the server's
            self.tls.unwrap()
        self._send()

    def read_to_the_end(self) -> str:
        """Everything until the connection ends; how it ended: "close_notify" (the
        server's, then its FIN), "eof" (a FIN without one) or "reset"."""
        ended = self._drain()
        try:
            while ended is None:
                if not self._receive():
                    return "eof"
                ended = self._drain()
            while self._receive():  # the FIN after the close_notify
                pass
        except ConnectionResetError:
            return "reset"
        return ended

    def close(self) -> None:
        self.sock.close()


# --- item 6: the PROXY protocol ------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    ("first", "said"),
    [
        (b"P", ["Pstill me"]),  # typed slowly: its first read is one letter
        (b"PR", ["PRstill me"]),
        (b"\r\n", ["still me"]),  # a bare Enter (telnet): the start of v2's signature
        (b"PROXY is fun\n", ["PROXY is fun", "still me"]),
    ],
)
async def test_a_direct_user_whose_first_bytes_look_like_a_header_is_served(
    serve_tls, loop, first, said
):
    server = serve_tls(loop, *BALANCER)
    user = await from_elsewhere(server.port)
    assert (await user.line()).startswith(f"*** Welcome, {user.local_id}!")
    await user.until_contains(f"*** {user.local_id} joined")
    await user.send(first)
    await asyncio.sleep(0.2)  # (a lower bound: the server reads these bytes on their own)
    await user.send(b"still me\n")
    # Its lines are its own, under its own address (an empty line is no message).
    for text in said:
        assert await user.line() == f"<{user.local_id}> {text}"
    await user.close()
    assert "refused" not in server.stop_cleanly()


def v2_with_tlvs_to_the_limit(src: str, port: int) -> bytes:
    """A v2 header whose TLVs take it to its greatest length (16 + 65535 bytes)."""
    room = 0xFFFF - 12  # the body's length, less the IPv4 addresses and ports
    tlvs = b""
    while room:
        size = min(room - 3, 0x4000)
        tlvs += bytes([0xE0]) + size.to_bytes(2, "big") + b"x" * size  # a custom TLV
        room -= 3 + size
    header = v2_inet(src, port, tlvs=tlvs)
    assert len(header) == 16 + 0xFFFF
    return header


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize(
    "header",
    [
        V1_TCP4,
        v2_inet("203.0.113.7", 51234),
        v2_with_tlvs_to_the_limit("203.0.113.7", 51234),
    ],
    ids=["v1", "v2", "v2-largest"],
)
async def test_a_balancers_header_before_the_client_hello_names_the_tls_client(
    serve_tls, certs, loop, header
):
    server = serve_tls(loop, *BALANCER)
    secure = await tls_after(server.tls_port, certs.cafile, header)
    assert (await secure.line()).startswith("*** Welcome, 203.0.113.7:51234!")
    await secure.send("hello from behind the balancer")
    assert await secure.until_contains("hello from") == (
        "<203.0.113.7:51234> hello from behind the balancer"
    )
    # The header and the ClientHello in one segment: what follows the header is the
    # handshake's, not lost with it.
    joined = await asyncio.to_thread(TlsHalfCloser, server.tls_port, certs.cafile, before=header)
    await asyncio.to_thread(joined.send_then_close_notify, b"hi\n")
    assert await asyncio.to_thread(joined.read_to_the_end) == "close_notify"
    joined.close()
    assert joined.received.decode().startswith("*** Welcome, 203.0.113.7:")
    await secure.until_contains("> hi")
    await secure.close()
    server.stop_cleanly()


@pytest.mark.parametrize("loop", LOOPS)
async def test_tls_handshakes_through_the_balancer_count_against_the_client_it_names(
    serve_tls, certs, loop
):
    server = serve_tls(
        loop, *BALANCER, "--max-per-ip", "1", "--exempt-ip", "--tls-handshake-timeout", "60"
    )
    # A client of the balancer whose handshake stalls after its header: it counts against
    # its own address...
    stalled = silent_socket(server.tls_port)
    stalled.sendall(v2_inet("198.51.100.1", 1000))
    same = await asyncio.to_thread(
        socket.create_connection, ("127.0.0.1", server.tls_port), TIMEOUT
    )
    same.sendall(v2_inet("198.51.100.1", 1001) + b"\x16\x03\x01")  # a ClientHello begins
    assert await closed_by_server(same), "a second handshake of 198.51.100.1 was let in"
    assert still_open(stalled)
    # ...and not against the balancer's, nor any other client's.
    other = await tls_after(server.tls_port, certs.cafile, v2_inet("198.51.100.2", 2000))
    assert (await other.line()).startswith("*** Welcome, 198.51.100.2:2000!")
    for sock in (stalled, same):
        sock.close()
    await other.close()
    err = server.stop_cleanly()
    assert "refused 198.51.100.1:1001: too many connections from its address" in err, err


# --- item 7: TLS -----------------------------------------------------------------------------


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
async def test_a_tls_client_that_sends_close_notify_still_gets_its_replies(
    serve_tls, certs, loop, version
):
    server = serve_tls(loop, "--log-level", "info")
    watcher = await Peer.connect(server.port)
    await watcher.to_json()
    client = await asyncio.to_thread(TlsHalfCloser, server.tls_port, certs.cafile, version)
    lines = b"/format json\n/nick halfway\nwho\nlast words\n"
    await asyncio.to_thread(client.send_then_close_notify, lines)
    ended = await asyncio.to_thread(client.read_to_the_end)
    received = client.received.decode()
    client.close()
    # Every line was handled and every reply delivered, then a clean TLS close.
    assert '"type":"who"' in received and '"name":"halfway"' in received, received
    assert '"text":"last words"' in received, received
    assert ended == "close_notify", (ended, received)
    await watcher.until_event("message", text="last words")
    await watcher.until_event("leave", name="halfway")
    await watcher.close()
    err = server.stop_cleanly()
    assert "eof_received" not in err, err


@pytest.mark.parametrize("loop", LOOPS)
async def test_pending_tls_handshakes_count_against_max_clients(serve_tls, certs, loop):
    # Loopback is exempt from --max-per-ip: only --max-clients bounds it.
    server = serve_tls(loop, "--max-clients", "3", "--tls-handshake-timeout", "60")
    member = await Peer.connect(server.port)
    await member.until_contains(f"{member.local_id} joined")
    pending = [silent_socket(server.tls_port) for _ in range(2)]
    await asyncio.sleep(0.2)  # (a lower bound: they are accepted, not yet refused)
    # One member and two handshakes under way: the server is full for a third handshake,
    # which is closed at once, long before the handshakes' timeout.
    third = silent_socket(server.tls_port)
    assert await closed_by_server(third), "a handshake past --max-clients was let wait"
    assert all(still_open(sock) for sock in pending)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await tls_after(server.tls_port, certs.cafile, b"")
    # A handshake that ends frees its place.
    pending.pop().close()
    secure = None
    async with asyncio.timeout(TIMEOUT):
        while secure is None:
            try:
                secure = await tls_after(server.tls_port, certs.cafile, b"")
            except (ssl.SSLError, ConnectionError):
                await asyncio.sleep(0.05)  # until the server has seen the close
    assert "Welcome" in await secure.line()
    for sock in (*pending, third):
        sock.close()
    await secure.close()
    await member.close()
    err = server.stop_cleanly()
    assert "server full (1 in the room, 2 waiting for a PROXY header or a TLS handshake)" in err
