"""The server's settings: one plain typed object, built by the CLI and passed down.

Every knob of the server lives here, flags and tuning values alike, so a value has one
home and a test can shorten any timer by building a config rather than by patching a
module. :class:`RoomRules` is the part of it the room's rules read, derived from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from chatroom.protocol import DEFAULT_PORT

# A shared room's name: it becomes part of Redis keys, so a plain, short alphabet.
ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    # --- what the room allows (the command line's flags)
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
    who_max: int = 500  # users listed in one who reply; /who TEXT finds the others
    loop: str = "auto"  # event loop: auto (uvloop if installed), asyncio or uvloop
    log_level: str = "info"

    # --- one room on several servers (docs/SCALING.md)
    redis: str | None = None  # redis://HOST:PORT/DB: one room shared by several servers
    room: str = "main"  # the shared room's name (namespaces its keys in Redis)
    workers: int = 1  # server processes sharing the port (needs redis)
    worker: bool = False  # this process is one of --workers: SO_REUSEPORT, says only "ready"
    heartbeat_ttl: float = 4.0  # a node silent this long is dead: its users leave the room

    # --- tuning: not flags; the values below were measured (docs/PERFORMANCE.md)
    idle_warning_lead: float = 10.0  # seconds of warning before an idle kick...
    idle_warning_min_timeout: float = 20.0  # ...given only when the timeout is longer
    shutdown_grace: float = 1.5  # seconds to flush output to everyone on shutdown
    workers_stop_grace: float = 3.0  # seconds workers get to shut down before a kill
    listen_backlog: int = 4096  # absorbs a burst of connects while the loop is busy
    # SO_SNDBUF for client sockets (Linux doubles it). Loopback autotuning would otherwise
    # let the kernel hold megabytes for a reader that has stopped, out of --max-sendq's sight.
    kernel_send_buffer: int = 64 * 1024
    close_linger: float = 5.0  # after we close, how long the last bytes may take to drain
    # Input held per connection (the RecvQ): bytes received but not yet handled, waiting for
    # flood control or for the connection's own output to drain. Past it, reading stops.
    recvq: int = 8192
    read_chunk: int = 4096  # bytes taken from a socket per read
    input_per_flush: int = 4096  # input bytes one connection may have handled per flush
    # On uvloop a newcomer's welcome and join wait at least join_coalesce_min, or as long as
    # the last flush took (at most join_coalesce_max), so that in a connect storm the joins
    # of many newcomers share one flush (see app.py).
    join_coalesce_min: float = 0.002
    join_coalesce_max: float = 0.05
    # After a flush slower than slow_flush (a room of thousands) the next waits
    # flush_gather, so lines sent together share it.
    slow_flush: float = 0.03
    flush_gather: float = 0.002
    reconnect_backoff: tuple[float, float] = (0.2, 5.0)  # first, longest wait for Redis
    append_batch: int = 512  # appends sent to Redis in one round trip, at most
    append_drain: float = 0.5  # on shutdown, how long accepted lines may take to reach Redis
    ledger_timeout: float = 3.0  # a Redis command that takes longer has failed
    # Flood control counts a who reply as one line per this many users listed (at least 1).
    who_users_per_line: int = 50

    @property
    def heartbeat_every(self) -> float:
        """Seconds between heartbeats (and reaps of dead nodes): four in each TTL."""
        return self.heartbeat_ttl / 4


@dataclass(frozen=True, slots=True)
class RoomRules:
    """What the room's rules read of the config. Built only from a config, never by hand,
    so a default is written once (in :class:`ServerConfig`)."""

    idle_timeout: float
    idle_warning_lead: float
    idle_warning_min_timeout: float
    history: int
    max_clients: int  # connections on this node
    max_per_ip: int
    who_max: int
    who_users_per_line: int

    @classmethod
    def from_config(cls, config: ServerConfig) -> RoomRules:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})
