"""Remote addresses: how a peer is written, and which addresses are local. No I/O."""

from __future__ import annotations

import ipaddress


def peer_id(host: str, port: int) -> str:
    """A peer's address as ``ip:port`` (``[ip]:port`` for IPv6): a user's first id and name,
    and how the log names a connection."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback
