"""The PROXY protocol header parser (v1 and v2), fed as a socket would feed it."""

from __future__ import annotations

import ipaddress
import socket
import struct

import pytest

from chatroom.server.core.proxy_protocol import (
    MAX_HEADER,
    V1_MAX,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    looks_like_header,
    parse,
)

V1_TCP4 = b"PROXY TCP4 203.0.113.7 192.0.2.1 51234 8087\r\n"
V1_TCP6 = b"PROXY TCP6 2001:db8::7 2001:db8::1 51234 8087\r\n"


def v2(command: int = 1, family: int = 0x11, addresses: bytes = b"", tlvs: bytes = b"") -> bytes:
    """A v2 header as HAProxy's send-proxy-v2 writes it."""
    body = addresses + tlvs
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(body)) + body


def v2_inet(src: str, sport: int, dport: int = 8087, **kw) -> bytes:
    ip = ipaddress.ip_address(src)
    family, dst = (0x11, "192.0.2.1") if ip.version == 4 else (0x21, "2001:db8::1")
    packed = ip.packed + ipaddress.ip_address(dst).packed + struct.pack("!HH", sport, dport)
    return v2(family=family, addresses=packed, **kw)


@pytest.mark.parametrize(
    ("data", "header"),
    [
        (V1_TCP4, ProxyHeader(1, ("203.0.113.7", 51234), len(V1_TCP4))),
        (V1_TCP6, ProxyHeader(1, ("2001:db8::7", 51234), len(V1_TCP6))),
        (b"PROXY UNKNOWN\r\n", ProxyHeader(1, None, 15)),
        (b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n", ProxyHeader(1, None, 39)),
        (v2_inet("203.0.113.7", 51234), ProxyHeader(2, ("203.0.113.7", 51234), 28)),
        (v2_inet("2001:db8::7", 443), ProxyHeader(2, ("2001:db8::7", 443), 52)),
        # TLVs (ALPN, unique id...) after the addresses are skipped.
        (
            v2_inet("203.0.113.7", 1, tlvs=b"\x01\x00\x02h2\x05\x00\x03abc"),
            ProxyHeader(2, ("203.0.113.7", 1), 39),
        ),
        (v2(command=0, family=0), ProxyHeader(2, None, 16)),  # LOCAL: a health check
        (v2(command=0, family=0x11, addresses=bytes(12)), ProxyHeader(2, None, 28)),
        (v2(family=0x00), ProxyHeader(2, None, 16)),  # UNSPEC
        (v2(family=0x31, addresses=bytes(216)), ProxyHeader(2, None, 232)),  # UNIX
        (v2(family=0x12, addresses=bytes(12)), ProxyHeader(2, None, 28)),  # UDP
    ],
)
def test_a_complete_header_gives_the_client_and_its_length(data, header):
    assert parse(data) == header
    # What follows is the client's and is not looked at; fed in pieces, it is incomplete
    # until the last byte.
    assert parse(data + b"hello\n") == header
    for cut in range(1, len(data)):
        assert parse(data[:cut]) is None, cut


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b"GET / HTTP/1.0\r\n", "not a PROXY"),
        (b"hello\n", "not a PROXY"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "CRLF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "bad PROXY v1"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "bad PROXY v1"),
        (b"PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP4 ::1 ::1 1 2\r\n", "bad address"),
        (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 \xd9\xa1 2\r\n", "ASCII"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "bad PROXY v1"),
        (b"PROXY " + b"x" * V1_MAX, "longer than 107"),
        (V2_SIGNATURE + b"\x10\x11\x00\x00", "version 1"),
        (V2_SIGNATURE + b"\x22\x11\x00\x00", "command 2"),
        (v2(family=0x11, addresses=bytes(11)), "too short"),
        (v2(family=0x21, addresses=bytes(35)), "too short"),
    ],
)
def test_a_malformed_header_is_refused_with_a_reason(data, complaint):
    with pytest.raises(ProxyHeaderError, match=complaint):
        parse(data)


def test_the_longest_headers_are_bounded():
    longest_v1 = b"PROXY TCP6 " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n"
    assert len(longest_v1) <= V1_MAX and parse(longest_v1).length == len(longest_v1)
    huge = v2_inet("203.0.113.7", 1, tlvs=bytes(0xFFFF - 12))
    assert len(huge) == MAX_HEADER
    assert parse(huge[:-1]) is None and parse(huge).length == MAX_HEADER


def test_the_first_bytes_of_a_header_are_recognised():
    for data in (V1_TCP4, v2_inet("203.0.113.7", 1)):
        for cut in range(1, len(data)):
            assert looks_like_header(data[:cut])
    for data in (b"", b"hello", b"PROXYZ", b"\r\n\r\nhi", b"/nick PROXY"):
        assert not looks_like_header(data)


def test_v2_addresses_are_read_in_network_order():
    packed = socket.inet_aton("10.1.2.3") + socket.inet_aton("10.0.0.1") + b"\xc3\x50\x1f\x97"
    assert parse(v2(addresses=packed)).source == ("10.1.2.3", 50000)
