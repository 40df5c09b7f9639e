"""Whom a WebSocket connection carries: its peer, or the client a trusted proxy names.

An HTTP reverse proxy (nginx, Caddy, a cloud balancer) in front of ``--ws-port`` opens the
connection itself and names the browser in ``X-Forwarded-For``. That header is believed
only from the networks of ``--proxy-protocol-from`` — the same list that says whose TCP
connections begin with a PROXY header — since anyone else could name any address in it.
From anyone else it is ignored (a browser behind its own proxy may send one): the peer is
the client.

Each proxy appends the address it received the request from, so the header reads
``client, proxy1, proxy2`` and the last entry was written by the proxy that connected to
us. It is read from the right: trusted proxies are skipped, and the first address that is
not one is the client (if every entry is trusted, the leftmost). An entry that is not an
address makes the request one the trusted proxy got wrong: refused, as a malformed PROXY
header is. No I/O here.
"""

from __future__ import annotations

import ipaddress

from chatroom.server.core.proxy_protocol import TrustedPeers

HEADER = "X-Forwarded-For"
MAX_HOPS = 32  # entries read, at most; a longer chain is refused


class ForwardedError(ValueError):
    """The header from a trusted proxy is malformed; the message says why in one line."""


def _address(entry: str) -> str:
    """One entry: an IPv4 or IPv6 address, IPv6 perhaps in brackets (RFC 7239's style)."""
    text = entry.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        shown = entry.strip()[:64]
        raise ForwardedError(f"{HEADER}: not an address: {shown!r}") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


def client_host(values: list[str], peer: str, trusted: TrustedPeers) -> str:
    """The client's address for a connection from ``peer`` whose request carried the
    ``X-Forwarded-For`` header ``values`` (each occurrence, in order). Raises
    :class:`ForwardedError` for a malformed header from a trusted peer."""
    if not trusted or peer not in trusted:
        return peer
    entries = [entry for value in values for entry in value.split(",")]
    if not entries:
        return peer  # the proxy's own request (a health check): the proxy is the client
    if len(entries) > MAX_HOPS:
        raise ForwardedError(f"{HEADER}: more than {MAX_HOPS} addresses")
    client = peer
    for entry in reversed(entries):
        client = _address(entry)
        if client not in trusted:
            break
    return client
