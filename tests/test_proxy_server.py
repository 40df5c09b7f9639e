"""The PROXY protocol over real sockets: a trusted balancer's header names the client
everywhere, a malformed one from it is refused with a log line, and from anyone else a
header is nothing but input."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.conftest import Peer
from tests.test_proxy_protocol import V1_TCP4, v2_inet

TRUSTED = {"proxy_protocol_from": ("127.0.0.1/32",), "proxy_header_timeout": 0.5}


async def balanced(port: int, header: bytes, first: bytes = b"") -> Peer:
    """A connection from 127.0.0.1 (the balancer) that sends ``header`` then ``first``."""
    peer = await Peer.connect(port)
    await peer.send(header + first)
    return peer


async def from_elsewhere(port: int) -> Peer:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=("127.0.0.2", 0), limit=2**20
    )
    return Peer(reader, writer)


async def observer(port: int) -> Peer:
    """A direct user (not through the balancer) that has seen its own join."""
    peer = await from_elsewhere(port)
    await peer.until_contains(f"*** {peer.local_id} joined")
    return peer


async def test_a_v1_header_from_a_trusted_balancer_names_the_client(make_server):
    server = await make_server(**TRUSTED, exempt_ip=())
    ann = await balanced(server.port, V1_TCP4)
    # One segment with the header and the first line: the line is the client's.
    bob = await balanced(server.port, b"PROXY TCP4 198.51.100.9 192.0.2.1 4000 8087\r\n", b"hi\n")
    assert (await ann.line()).startswith("*** Welcome, 203.0.113.7:51234!")
    await ann.until_contains("*** 198.51.100.9:4000 joined")
    assert await ann.line() == "<198.51.100.9:4000> hi"
    await ann.send("/who")
    await ann.until_contains("203.0.113.7:51234  (203.0.113.7:51234")
    for peer in (ann, bob):
        await peer.close()


async def test_a_v2_header_in_pieces_names_the_client_and_its_address_counts(make_server):
    server = await make_server(**TRUSTED, exempt_ip=(), max_per_ip=1)
    header = v2_inet("2001:db8::7", 443)
    ann = await Peer.connect(server.port)
    for piece in (header[:5], header[5:20], header[20:]):
        await ann.send(piece)
        await asyncio.sleep(0.05)
    assert (await ann.line()).startswith("*** Welcome, [2001:db8::7]:443!")
    # The per-address limit counts the client (its /64), not the balancer: another client
    # of the balancer comes in, a second connection of the same one does not.
    other = await balanced(server.port, v2_inet("203.0.113.7", 1))
    assert (await other.line()).startswith("*** Welcome, 203.0.113.7:1!")
    again = await balanced(server.port, v2_inet("2001:db8::8", 444))
    assert "too many connections from your address" in (await again.closed()).decode()
    for peer in (ann, other):
        await peer.close()


async def test_a_local_header_is_the_balancer_itself(make_server):
    server = await make_server(**TRUSTED)
    peer = await balanced(server.port, v2_inet("203.0.113.7", 1)[:12] + b"\x20\x00\x00\x00")
    assert (await peer.line()).startswith(f"*** Welcome, {peer.local_id}!")
    await peer.close()


async def test_a_header_from_an_untrusted_address_is_only_its_input(make_server):
    # Nobody but a trusted balancer can name a client: from anyone else a header is no
    # header, only what they typed, and they stay themselves.
    server = await make_server(**TRUSTED)
    ann = await observer(server.port)
    for header in (V1_TCP4, v2_inet("203.0.113.7", 1)):
        mallory = await from_elsewhere(server.port)
        assert (await mallory.line()).startswith(f"*** Welcome, {mallory.local_id}!")
        await mallory.send(header + b"I am someone else\n")
        said = await ann.until_contains("I am someone else")
        # (v2's binary address is cleaned text before it, on the same line)
        assert said.startswith(f"<{mallory.local_id}> ") and said.endswith("I am someone else")
        await mallory.close()
    await ann.send("/who")
    await ann.until_contains("Online users (1)")  # they came and went as themselves
    await ann.close()


async def test_a_direct_client_without_a_header_from_elsewhere_is_served(make_server):
    server = await make_server(**TRUSTED)
    peer = await from_elsewhere(server.port)
    assert (await peer.line()).startswith("*** Welcome, 127.0.0.2:")
    await peer.until_contains(f"*** {peer.local_id} joined")
    await peer.send("proxy is a word")  # a first line, but not a header's beginning
    assert await peer.line() == f"<{peer.local_id}> proxy is a word"
    await peer.close()


@pytest.mark.parametrize(
    ("sent", "cause"),
    [
        (b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", "bad address"),
        (b"hello\n", "not a PROXY protocol header"),
        (b"PROXY " + b"1" * 200, "longer than 107 bytes"),
        (b"PROXY TCP4 1.2.3.4", "no complete PROXY header within 0.5s"),  # then silence
        (b"", "no complete PROXY header within 0.5s"),
    ],
)
async def test_a_bad_or_missing_header_from_the_balancer_is_refused_before_the_room(
    make_server, caplog, sent, cause
):
    server = await make_server(**TRUSTED)
    ann = await observer(server.port)
    with caplog.at_level(logging.WARNING, logger="chatroom.server"):
        peer = await Peer.connect(server.port)
        if sent:
            await peer.send(sent)
        assert await peer.closed() == b""  # never welcomed
    assert any(cause in r.getMessage() for r in caplog.records), caplog.text
    await ann.send("/who")
    assert (await ann.line()).startswith("Online users (1)")  # nobody joined or left
    await ann.close()
