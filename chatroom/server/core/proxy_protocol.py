"""The PROXY protocol header (v1 text and v2 binary, as HAProxy sends it). No I/O.

A TCP load balancer that speaks it (HAProxy's ``send-proxy``/``send-proxy-v2``, nginx
stream's ``proxy_protocol on``, cloud balancers) writes one header before the client's
bytes, saying whom it is carrying: then the room can count, name and log the real client
rather than the balancer. The specification is HAProxy's ``doc/proxy-protocol.txt``.

:func:`parse` takes the bytes received so far and says: not complete yet (None), the
header and how many bytes it took, or :class:`ProxyHeaderError` (the peer misbehaved). What
it may cost is bounded: a v1 header is at most 107 bytes and a v2 header at most
:data:`V2_MAX` (its length field is 16 bits), so a caller that holds no more than
:data:`MAX_HEADER` bytes and sets a deadline cannot be made to hold more.

Which peers may send a header is the caller's business (``proxy_protocol_from``); a header
from anyone else is refused, since it would let them pose as any address.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 line, CRLF included ("PROXY UNKNOWN" + two IPv6 + ports)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version and command, family, length
V2_MAX = V2_FIXED + 0xFFFF
MAX_HEADER = V2_MAX  # the most a header can be, of either version

_FAMILIES = {0x1: (4, ipaddress.IPv4Address), 0x2: (16, ipaddress.IPv6Address)}


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY header; the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A complete header. ``source`` is the client's ``(host, port)``, or None when the
    header carries no address to use (v1 ``UNKNOWN``, v2 ``LOCAL``, a v2 family other than
    TCP over IPv4/IPv6): then the connection's own peer address stands."""

    version: int
    source: tuple[str, int] | None
    length: int  # bytes of the input the header took; what follows is the client's


def looks_like_header(data: bytes) -> bool:
    """Whether ``data``, the first bytes of a connection, begin a PROXY header of either
    version (``data`` may be shorter than the signature, but not empty)."""
    if not data:
        return False
    for prefix in (V1_PREFIX, V2_SIGNATURE):
        n = min(len(data), len(prefix))
        if data[:n] == prefix[:n]:
            return True
    return False


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; None if ``data`` is a header's beginning only.

    Raises :class:`ProxyHeaderError` if ``data`` cannot begin a header, or the header is
    malformed or longer than its version allows."""
    if not looks_like_header(data):
        raise ProxyHeaderError("not a PROXY protocol header")
    if data[:1] == b"P":
        return _parse_v1(data)
    return _parse_v2(data)


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError(f"PROXY v1 header longer than {V1_MAX} bytes")
        if b"\n" in data:
            raise ProxyHeaderError("PROXY v1 header not ended by CRLF")
        return None
    try:
        line = data[:end].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("PROXY v1 header is not ASCII") from None
    words = line.split(" ")
    if words[1:2] == ["UNKNOWN"]:  # the balancer does not know: the rest is to be ignored
        return ProxyHeader(1, None, end + 2)
    if len(words) != 6 or words[1] not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"bad PROXY v1 header: {line[:V1_MAX]!r}")
    kind = ipaddress.IPv4Address if words[1] == "TCP4" else ipaddress.IPv6Address
    source = _v1_address(kind, words[2])
    _v1_address(kind, words[3])
    port = _v1_port(words[4])
    _v1_port(words[5])
    return ProxyHeader(1, (source, port), end + 2)


def _v1_address(kind: type, text: str) -> str:
    try:
        return str(kind(text))
    except ValueError:
        raise ProxyHeaderError(f"bad address in PROXY v1 header: {text[:45]!r}") from None


def _v1_port(text: str) -> int:
    if not (text.isdigit() and text.isascii() and len(text) <= 5) or int(text) > 65535:
        raise ProxyHeaderError(f"bad port in PROXY v1 header: {text[:8]!r}")
    return int(text)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < V2_FIXED:
        return None
    version_command, family_protocol, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"PROXY v2 header of version {version_command >> 4}")
    command = version_command & 0xF
    if command not in (0, 1):
        raise ProxyHeaderError(f"PROXY v2 header with command {command}")
    total = V2_FIXED + length
    if len(data) < total:
        return None
    if command == 0:  # LOCAL: the balancer's own connection (a health check)
        return ProxyHeader(2, None, total)
    family, protocol = family_protocol >> 4, family_protocol & 0xF
    if family not in _FAMILIES or protocol != 0x1:  # UNSPEC, UNIX, or not a stream
        return ProxyHeader(2, None, total)
    size, kind = _FAMILIES[family]
    if length < 2 * size + 4:
        raise ProxyHeaderError(f"PROXY v2 header too short for its addresses ({length} bytes)")
    source = str(kind(data[V2_FIXED : V2_FIXED + size]))
    (port,) = struct.unpack_from("!H", data, V2_FIXED + 2 * size)
    return ProxyHeader(2, (source, port), total)


class TrustedPeers:
    """The networks whose connections begin with a PROXY header (``proxy_protocol_from``)."""

    def __init__(self, cidrs: tuple[str, ...]) -> None:
        self.networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, host: object) -> bool:
        try:
            ip = ipaddress.ip_address(host)  # type: ignore[arg-type]
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)
