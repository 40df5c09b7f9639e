"""Remote addresses: how a peer is written. No I/O. (Which are exempt from the per-address
limits is in :mod:`chatroom.server.core.admission`.)"""

from __future__ import annotations

from chatroom.protocol import host_port


def peer_id(host: str, port: int) -> str:
    """A peer's address as ``ip:port`` (``[ip]:port`` for IPv6): a user's first id and name,
    and how the log names a connection."""
    return host_port(host, port)
