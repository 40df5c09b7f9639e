"""Remote addresses: how a peer is written. No I/O. (Which are exempt from the per-address
limits is in :mod:`chatroom.server.core.admission`.)

An address has one form wherever it becomes an id, a name, a limit's key or a ban's: an
IPv4-mapped IPv6 address (``::ffff:198.51.100.7``, as a dual-stack socket or a balancer's
PROXY header may give it) is written as the IPv4 address it is, so the room shows what it
counts and bans what it shows.
"""

from __future__ import annotations

import ipaddress

from chatroom.protocol import host_port

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def normal_ip(ip: IP) -> IP:
    """``ip``, an IPv4-mapped IPv6 address as its IPv4 address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def normal_host(host: str) -> str:
    """``host`` in the one form the room writes it in (itself if it is not an IP)."""
    try:
        return str(normal_ip(ipaddress.ip_address(host)))
    except ValueError:
        return host


def normal_network(network: Network) -> Network:
    """``network``, one within ``::ffff:0:0/96`` as the IPv4 network it maps."""
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        first = network.network_address.ipv4_mapped
        assert first is not None
        return ipaddress.IPv4Network((first, network.prefixlen - 96))
    return network


def peer_id(host: str, port: int) -> str:
    """A peer's address as ``ip:port`` (``[ip]:port`` for IPv6): a user's first id and name,
    and how the log names a connection."""
    return host_port(normal_host(host), port)
