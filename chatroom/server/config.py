"""The server's settings: one plain typed object, built by the CLI and passed down."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chatroom.protocol import DEFAULT_PORT

# A shared room's name: it becomes part of Redis keys, so a plain, short alphabet.
ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    idle_timeout: float = 60.0  # seconds without a line before a user is kicked; 0 disables
    history: int = 20  # chat messages replayed to a newcomer
    max_line: int = 2048  # bytes per line, line ending not counted
    max_clients: int = 10_000
    max_per_ip: int = 16  # connections from one remote address; loopback is exempt
    rate: float = 5.0  # lines per second per connection; 0 disables flood control
    burst: int = 10  # lines a client may send at once before pacing starts
    max_sendq: int = 262_144  # unsent bytes per connection before it is dropped as slow
    shutdown_grace: float = 1.5  # seconds to flush output to everyone on shutdown
    redis: str | None = None  # redis://HOST:PORT/DB: one room shared by several servers
    room: str = "main"  # the shared room's name (namespaces its keys in Redis)
    reuse_port: bool = False  # SO_REUSEPORT, so several worker processes share the port
