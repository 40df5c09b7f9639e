"""The asyncio server: accepts connections, feeds the room, carries out what it decides.

Everything runs on one event loop. Output is coalesced: the room's actions only fill the
:class:`~chatroom.server.outbox.Outbox`, and one flush per loop iteration writes what each
connection is owed with a single ``transport.write`` (the same bytes object for everyone
who got only broadcasts). Nothing here awaits a client, so a reader that stalls only
fills its own bounded queue and is then dropped as ``slow``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chatroom.protocol import LeaveReason
from chatroom.server.codec import LineTooLong
from chatroom.server.config import ServerConfig
from chatroom.server.connection import ClientConnection
from chatroom.server.outbox import Outbox
from chatroom.server.room import (
    Append,
    Broadcast,
    Close,
    Deliver,
    Room,
    RoomAction,
    RoomRules,
    SendPrivate,
    Subscribe,
    Unsubscribe,
)

if TYPE_CHECKING:  # cluster mode needs the redis package, imported only when used
    from chatroom.server.cluster import ClusterLink

log = logging.getLogger("chatroom.server")

LISTEN_BACKLOG = 4096  # absorbs a burst of connects while the loop is busy
# On uvloop a newcomer's welcome and join line wait this long (at least), or as long as the
# last flush took (at most JOIN_COALESCE_MAX), so that in a connect storm the joins of many
# newcomers share one flush. uvloop (libuv) accepts one connection per loop iteration:
# flushing after each would write every join to everyone separately, N²/2 writes for N
# connects (a 1000-connect burst took 4 s). asyncio's own loop accepts every pending
# connection in one iteration, so there the flush stays in the same iteration: delaying it
# would only make each write larger, and asyncio copies what the kernel does not take.
JOIN_COALESCE_MIN = 0.002
JOIN_COALESCE_MAX = 0.05
# When the last flush took longer than SLOW_FLUSH (a room of thousands: one write each), the
# next one waits FLUSH_GATHER, so lines sent together share it instead of each costing a
# whole flush of its own: at most 2 ms more on a delivery that takes over 30 ms anyway
# (chat-10000: p50 150 -> 120 ms, p99 340 -> 175 ms, server CPU halved).
SLOW_FLUSH = 0.03
FLUSH_GATHER = 0.002


def _node_name() -> str:
    """A name for this server among the nodes of a shared room: host, pid and a nonce."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def queue_output(outbox: Outbox, action: RoomAction) -> bool:
    """Put one of the room's output actions into ``outbox``; False for any other action."""
    match action:
        case Broadcast():
            outbox.broadcast(action.fmt, action.payload)
        case Deliver():
            for conn_id in action.recipients:
                outbox.send(conn_id, action.payload)
        case Subscribe():
            outbox.subscribe(action.conn, action.fmt)
        case Unsubscribe():
            outbox.unsubscribe(action.conn)
        case _:
            return False
    return True


class StartError(Exception):
    """The server cannot start for a reason the user can fix; the message says which."""


class ChatServer:
    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.room = Room(
            RoomRules(
                idle_timeout=config.idle_timeout,
                history=config.history,
                max_clients=config.max_clients,
                max_per_ip=config.max_per_ip,
            ),
            node=_node_name() if config.redis else None,
        )
        self.cluster: ClusterLink | None = None
        self._ids = itertools.count(1)
        self._connections: dict[int, ClientConnection] = {}
        self.outbox = Outbox()
        self._to_close: list[int] = []
        self._flush_scheduled = False
        self._last_flush_seconds = 0.0
        self._coalesce_joins = not isinstance(loop, asyncio.BaseEventLoop)
        self._listener: asyncio.Server | None = None
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.port: int = config.port
        self.host: str = config.host

    async def start(self) -> None:
        """Listen; in cluster mode, first join the shared room (raises LedgerUnavailable)."""
        if self.config.redis and self.room.node:
            try:
                from chatroom.server.cluster import (
                    HEARTBEAT_TTL,
                    ClusterLink,
                    LedgerUnavailable,
                    RedisLedger,
                )
            except ImportError as exc:
                raise StartError(
                    f"--redis needs the redis package ({exc.name} is missing): "
                    "pip install 'chatroom[redis]'"
                ) from None
            ledger = RedisLedger(
                self.config.redis, self.config.room, self.room.node, heartbeat_ttl=HEARTBEAT_TTL
            )
            self.cluster = ClusterLink(self.room, ledger, self.apply, self.config.history)
            try:
                await self.cluster.start()
            except LedgerUnavailable as exc:
                raise StartError(str(exc)) from None
        self._listener = await self.loop.create_server(
            lambda: ClientConnection(self),
            self.config.host,
            self.config.port,
            backlog=LISTEN_BACKLOG,
            reuse_address=True,
            reuse_port=self.config.reuse_port or None,
        )
        sockname = self._listener.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]

    # --- called by connections -----------------------------------------------------------------

    def new_conn_id(self) -> int:
        return next(self._ids)

    def attach(self, conn: ClientConnection, host: str, port: int) -> None:
        self._connections[conn.conn_id] = conn
        self._all_closed.clear()
        self.apply(self.room.connect(conn.conn_id, host, port, time.time()), joining=True)
        if conn.conn_id in self.room:
            log.info("connect %s (%d online)", conn.peer, len(self.room))
        else:
            log.warning("refused %s: server full or too many from its address", conn.peer)

    def line_from(self, conn: ClientConnection, line: str | LineTooLong) -> None:
        before = self.room.name_of(conn.conn_id)
        self.apply(self.room.receive(conn.conn_id, line, time.time()))
        after = self.room.name_of(conn.conn_id)
        if after is not None and after != before:
            log.info("rename %s: %s -> %s", conn.peer, before, after)
        elif after is None and before is not None:
            log.info("disconnect %s (%s): quit", conn.peer, before)

    def peer_finished(self, conn: ClientConnection) -> None:
        """The peer half-closed and every line it sent has been handled."""
        self._leave(conn, LeaveReason.EOF)
        self._to_close.append(conn.conn_id)  # after what it is owed has been flushed
        self._request_flush()

    def idle_check(self, conn: ClientConnection) -> None:
        name = self.room.name_of(conn.conn_id)
        self.apply(self.room.idle_check(conn.conn_id, time.time()))
        if name is not None and conn.conn_id not in self.room:
            log.info("disconnect %s (%s): idle timeout", conn.peer, name)

    def detach(self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None) -> None:
        self._leave(conn, reason, exc)
        self._connections.pop(conn.conn_id, None)
        self.outbox.forget(conn.conn_id)
        if not self._connections:
            self._all_closed.set()

    def _leave(
        self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None = None
    ) -> None:
        name = self.room.name_of(conn.conn_id)
        if name is None:
            return
        self.apply(self.room.disconnect(conn.conn_id, reason, time.time()))
        log.info("disconnect %s (%s): %s%s", conn.peer, name, reason, f" ({exc})" if exc else "")

    # --- carrying out the room's decisions -------------------------------------------------------

    def apply(self, actions: Iterable[RoomAction], joining: bool = False) -> None:
        """Queue the room's actions; the flush that writes them follows in this loop iteration,
        or a few milliseconds later (``joining``) when they greet a newcomer."""
        outbox = self.outbox
        for action in actions:
            if queue_output(outbox, action):
                continue
            match action:
                case Close():
                    self._to_close.append(action.conn)
                case Append() | SendPrivate():
                    assert self.cluster is not None, "only a clustered room appends"
                    self.cluster.carry(action)
        self._request_flush(joining)

    def _request_flush(self, joining: bool = False) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if joining:
                if self._coalesce_joins:
                    delay = min(JOIN_COALESCE_MAX, max(JOIN_COALESCE_MIN, self._last_flush_seconds))
                    self.loop.call_later(delay, self._flush)
                else:
                    self.loop.call_soon(self._flush)
            elif self._last_flush_seconds > SLOW_FLUSH:
                self.loop.call_later(FLUSH_GATHER, self._flush)
            else:
                self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Once per loop iteration: one write per connection, then the closes that wait."""
        self._flush_scheduled = False
        started = time.perf_counter()
        connections = self._connections
        while self.outbox:
            slow = []
            for conn_id, data in self.outbox.take():
                conn = connections.get(conn_id)
                if conn is not None and not conn.write(data):
                    slow.append(conn)
            for conn in slow:  # their leave lines are flushed on the next pass
                self._drop_slow(conn)
        to_close, self._to_close = self._to_close, []
        for conn_id in to_close:
            conn = connections.get(conn_id)
            if conn is not None:
                conn.close()
        self._last_flush_seconds = time.perf_counter() - started

    def _drop_slow(self, conn: ClientConnection) -> None:
        name = self.room.name_of(conn.conn_id)
        conn.abort()
        self.outbox.forget(conn.conn_id)
        if name is not None:
            log.info(
                "disconnect %s (%s): slow (send queue over %d bytes)",
                conn.peer,
                name,
                self.config.max_sendq,
            )
            self.apply(self.room.disconnect(conn.conn_id, LeaveReason.SLOW, time.time()))

    # --- shutdown ---

    async def shutdown(self) -> None:
        """Stop accepting, tell everyone, flush, and close; drop stragglers after the grace."""
        if self._listener is not None:
            self._listener.close()
        self.apply(self.room.shutdown(time.time()))
        self._flush()
        if self.cluster is not None:
            try:  # other nodes' users see this node's users leave
                await asyncio.wait_for(self.cluster.stop(), self.config.shutdown_grace / 2)
            except TimeoutError:
                log.warning("shutdown: Redis did not answer; other nodes will reap our users")
        try:
            await asyncio.wait_for(self._all_closed.wait(), self.config.shutdown_grace)
        except TimeoutError:
            log.warning(
                "shutdown: dropping %d connections that did not drain", len(self._connections)
            )
            for conn in list(self._connections.values()):
                conn.abort()
            await asyncio.sleep(0)


async def start_server(config: ServerConfig) -> ChatServer:
    """Start a room listening on ``config.host``:``config.port`` (port 0 picks a free one)."""
    server = ChatServer(config, asyncio.get_running_loop())
    await server.start()
    return server
