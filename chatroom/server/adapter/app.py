"""The asyncio server: accepts connections, feeds the room, carries out what it decides.

Everything runs on one event loop. Output is coalesced: the room's actions only fill the
:class:`~chatroom.server.core.outbox.Outbox`, and one flush — in the next loop iteration, or a
few milliseconds later to gather a connect storm or a big room's lines — writes what each
connection is owed with a single ``transport.write`` (the same bytes object for everyone
who got only broadcasts). Nothing here awaits a client, so a reader that stalls only
fills its own bounded queue and is then dropped as ``slow``.

On uvloop (the listener accepts a few connections per wake-up) a newcomer's welcome and
join wait a little, so that in a connect storm the joins of many newcomers share one flush
rather than writing each join to everyone separately: N²/2 writes for N connects (a
1000-connect burst took 4 s). asyncio's own loop accepts every pending connection in one
iteration, so there the flush stays in that iteration: delaying it would only make each
write larger, and asyncio copies what the kernel does not take.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from chatroom.protocol import LeaveReason
from chatroom.server.adapter.connection import ClientConnection
from chatroom.server.adapter.hashing import PasswordWorkers
from chatroom.server.adapter.listener import Listener, fit_to_fd_limit
from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.adapter.metrics import LoopLag, Tally
from chatroom.server.adapter.reports import log_report
from chatroom.server.adapter.startup import (  # noqa: F401 (StartError: the CLI's)
    RoomClock,
    StartError,
    make_room,
)
from chatroom.server.adapter.tls import CertificateError, reload_certificate, server_context
from chatroom.server.adapter.websocket import WebSocketDoor, open_door
from chatroom.server.config import ServerConfig
from chatroom.server.core.actions import (
    AnswerElsewhere,
    Append,
    Charge,
    CheckPassword,
    Close,
    HashPassword,
    ModerateElsewhere,
    Persist,
    RoomAction,
    SendPrivate,
)
from chatroom.server.core.inputs import (
    Connected,
    Disconnected,
    Input,
    LeaseGranted,
    LineReceived,
    Paced,
    ShuttingDown,
    StateFlushDue,
    TimerFired,
)
from chatroom.server.core.outbox import Outbox

if TYPE_CHECKING:  # cluster mode needs the redis package, imported only when used
    from chatroom.server.adapter.ops_http import OpsEndpoint
    from chatroom.server.cluster.link import ClusterLink

log = logging.getLogger("chatroom.server")


class ChatServer:
    """The adapter: carries out the room's actions and runs its timers, on one event loop.

    It implements :class:`~chatroom.server.adapter.connection.ConnectionOwner` for its connections.
    It never decides anything about the room: what it logs comes from the room's reports.
    """

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        # As many clients as there are file descriptors for (the start-up line says so).
        config, self.fd_note = fit_to_fd_limit(config)
        self.config = config
        self.loop = loop
        self.log_once = OncePerInterval(log, config.log_interval, loop)
        self.clock = RoomClock()
        self.room, self.store = make_room(config)
        if self.store is not None:  # a seq lease committed: the room may number up to it
            self.store.on_lease = lambda n: loop.call_soon_threadsafe(self.handle, LeaseGranted(n))
        self.checks = PasswordWorkers(  # /oper's, /login's and /register's scrypt, off the loop
            config.oper_check_threads, config.oper_check_queue, loop, self.handle, self.log_once
        )
        self.cluster: ClusterLink | None = None
        self._ids = itertools.count(1)
        self._connections: dict[int, ClientConnection] = {}
        self.outbox = Outbox()
        self.tally = Tally()  # the room's reports, counted (metrics.py)
        self.loop_lag: LoopLag | None = None
        self.ops: OpsEndpoint | None = None  # --metrics-port (ops_http.py)
        self._accepting = False  # the listener is open (/healthz)
        self._to_close: list[int] = []
        self._after_flush: list[ClientConnection] = []  # input held back until the flush
        # One read buffer for every connection: the loop reads into it and hands it over
        # in one callback, so no connection needs one of its own.
        self._read_buffer = memoryview(bytearray(config.read_chunk))
        self._flush_scheduled = False
        self._last_flush_seconds = 0.0
        # On uvloop a newcomer's welcome and join wait a little (the module's docstring).
        self._coalesce_joins = not isinstance(loop, asyncio.BaseEventLoop)
        self.listener: Listener | None = None
        self._all_closed = asyncio.Event()
        self._all_closed.set()
        self.port: int | None = config.port  # None: no plaintext listener (--port off)
        self.tls: ssl.SSLContext | None = None
        self.tls_port: int | None = None
        self.door: WebSocketDoor | None = None  # --ws-port/--wss-port (websocket.py)

    async def start(self) -> None:
        """Listen; in cluster mode, first join the shared room (raises StartError)."""
        if self.config.tls_cert and (self.config.tls_port, self.config.wss_port) != (None, None):
            try:
                self.tls = server_context(self.config.tls_cert, self.config.tls_key)
            except CertificateError as exc:
                raise StartError(str(exc)) from None
        if self.config.redis:
            try:
                from chatroom.server.cluster.link import ClusterLink, LedgerUnavailable
            except ImportError as exc:
                raise StartError(
                    f"--redis needs the redis package ({exc.name} is missing): "
                    "from the chatroom checkout, pip install '.[redis]' (docs/SCALING.md)"
                ) from None
            self.cluster = ClusterLink(self.room, self.config, self.handle)
            try:
                await self.cluster.start()
            except LedgerUnavailable as exc:
                raise StartError(str(exc)) from None
        config = self.config
        batch = config.accept_batch if self._coalesce_joins else config.listen_backlog
        self.listener = Listener(
            self.loop,
            config,
            self._new_connection,
            self.log_once,
            batch,
            self.tls,
            self.room,
            self.tally.refused,
        )
        self.listener.start()
        self._accepting = True
        if config.metrics_port is not None:
            await self._start_ops()
        if self.store is not None:
            self.loop.call_later(config.state_flush, self._keep_history)
        if self.listener.sockets:
            self.port = self.listener.sockets[0].getsockname()[1]
        if self.listener.tls_sockets:
            self.tls_port = self.listener.tls_sockets[0].getsockname()[1]
        self.door = open_door(self)  # --ws-port, --wss-port (websocket.py)

    async def _start_ops(self) -> None:
        """The operators' port: metrics, health, readiness (raises StartError)."""
        from chatroom.server.adapter.ops_http import open_ops  # prometheus-client: 12 MiB

        self.loop_lag, self.ops = await open_ops(self)

    def accepting(self) -> bool:
        """Whether the server accepts connections (/healthz)."""
        return self._accepting

    def ready(self) -> bool:
        """Whether it listens and, with --redis, is in sync with the shared room (/readyz)."""
        return self.accepting() and (self.cluster is None or self.cluster.up)

    def queued_bytes(self) -> int:
        """Bytes the connections' transports have yet to send (for the metrics)."""
        transports = (conn.transport for conn in self._connections.values())
        return sum(t.get_write_buffer_size() for t in transports if t is not None)

    def _keep_history(self) -> None:
        """Every ``state_flush`` seconds: the history, if the room says it changed, to the
        state file (a kill -9 loses at most that much chat)."""
        if self.store is None or self.store.closing:
            return
        self.handle(StateFlushDue())
        self.loop.call_later(self.config.state_flush, self._keep_history)

    def reload_certificate(self) -> None:
        """SIGHUP: load the certificate and key files again; new handshakes present them,
        established connections go on. A failure is logged and the old one stays."""
        if self.tls is not None and self.config.tls_cert is not None:
            reload_certificate(self.tls, self.config.tls_cert, self.config.tls_key)

    def _new_connection(
        self, named: tuple[str, int] | None = None, first: bytes = b""
    ) -> ClientConnection:
        return ClientConnection(
            self, next(self._ids), self.config, self.loop, self._read_buffer, named, first
        )

    # --- ConnectionOwner: what connections tell us -----------------------------------------

    def handle(self, event: Input, *, joining: bool = False) -> None:
        """The one way into the room, for the connections, the timers and the cluster
        link alike: hand it ``event`` with the time, and carry out what it decides."""
        self.apply(self.room.handle(event, self.clock()), joining=joining)

    def event(
        self, conn: ClientConnection, event: Connected | LineReceived | TimerFired | Paced
    ) -> float | None:
        if type(event) is LineReceived or type(event) is Paced:  # almost every event: first
            self.apply(self.room.handle(event, self.clock()))
            return None
        if type(event) is Connected:
            self._connections[conn.conn_id] = conn
            self._all_closed.clear()
        self.handle(event, joining=type(event) is Connected)
        deadline = self.room.next_idle_check(conn.conn_id)
        return None if deadline is None else max(0.0, deadline - self.clock())

    def input_finished(self, conn: ClientConnection) -> None:
        self._leave(conn.conn_id, LeaveReason.EOF)
        self._to_close.append(conn.conn_id)  # after what it is owed has been flushed
        self._request_flush()

    def ended(self, conn: ClientConnection, reason: LeaveReason, exc: Exception | None) -> None:
        try:
            self._leave(conn.conn_id, reason, str(exc) if exc else None)
        finally:  # whatever happened above, the connection is forgotten
            self._connections.pop(conn.conn_id, None)
            self.outbox.forget(conn.conn_id)
            if not self._connections:
                self._all_closed.set()

    def owed(self, conn: ClientConnection) -> int:
        return self.outbox.owed(conn.conn_id)

    def after_flush(self, conn: ClientConnection) -> None:
        self._after_flush.append(conn)
        self._request_flush()

    def answer_in_crlf(self, conn: ClientConnection) -> None:
        self.outbox.answer_in_crlf(conn.conn_id)

    def _leave(self, conn_id: int, reason: LeaveReason, detail: str | None = None) -> None:
        """The one way a connection leaves the room (the room ignores a second time)."""
        self.apply(self.room.handle(Disconnected(conn_id, reason), self.clock()), detail)

    # --- carrying out the room's decisions -------------------------------------------------------

    def apply(
        self, actions: Iterable[RoomAction], detail: str | None = None, joining: bool = False
    ) -> None:
        """Queue the room's actions and log its reports (a leave's with ``detail``); the
        flush that writes them follows in this loop iteration, or a few milliseconds later
        (``joining``) when they greet a newcomer."""
        outbox = self.outbox
        for action in actions:
            if outbox.queue(action):
                continue
            match action:
                case Close():
                    self._to_close.append(action.conn)
                case Charge():
                    conn = self._connections.get(action.conn)
                    if conn is not None:
                        conn.charge(action.lines)
                case Persist() if self.store is not None:
                    self.store.put(action)
                case Persist():
                    assert self.cluster is not None, "only --state or --redis persists"
                    self.cluster.share(action)
                case Append() | SendPrivate():
                    assert self.cluster is not None, "only a clustered room appends"
                    self.cluster.carry(action)
                case ModerateElsewhere() | AnswerElsewhere():
                    assert self.cluster is not None, "only a clustered room has other nodes"
                    self.cluster.ask(action)
                case CheckPassword() | HashPassword():
                    self.checks.submit(action)
                case _:
                    self._log(action, detail)
        self._request_flush(joining)

    def _log(self, report: RoomAction, detail: str | None) -> None:
        self.tally.report(report)
        conn = self._connections.get(getattr(report, "conn", -1))
        log_report(report, conn.peer if conn is not None else "?", detail, self.log_once)

    def _request_flush(self, joining: bool = False) -> None:
        if self._flush_scheduled:
            return
        self._flush_scheduled = True
        config = self.config
        if joining and self._coalesce_joins:
            delay = min(
                config.join_coalesce_max, max(config.join_coalesce_min, self._last_flush_seconds)
            )
            self.loop.call_later(delay, self._flush)
        elif not joining and self._last_flush_seconds > config.slow_flush:
            # A room of thousands (one write each): lines sent together share the next
            # flush instead of each costing a whole flush of its own.
            self.loop.call_later(config.flush_gather, self._flush)
        else:
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        """One write per connection, then the closes that wait. It runs in the loop
        iteration after the output was queued, or a few milliseconds later to gather a
        connect storm's joins or a big room's lines (see :meth:`_request_flush`)."""
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
        if self._after_flush:
            # Their next lines go into the next flush, in the next turn of the loop.
            waiting, self._after_flush = self._after_flush, []
            for conn in waiting:
                self.loop.call_soon(conn.resume_input)

    def _drop_slow(self, conn: ClientConnection) -> None:
        conn.abort()
        self.outbox.forget(conn.conn_id)
        self._leave(
            conn.conn_id, LeaveReason.SLOW, f"send queue over {self.config.max_sendq} bytes"
        )

    # --- shutdown ---

    async def shutdown(self) -> None:
        """Stop accepting, tell everyone, flush, and close; drop stragglers after the grace."""
        self._accepting = False
        for listener in filter(None, (self.listener, self.door)):
            listener.close()
        self.checks.close()
        if self.ops is not None:
            self.ops.close()
        if self.loop_lag is not None:
            self.loop_lag.stop()
        self.handle(ShuttingDown())
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
        if self.store is not None:  # the last of the chat is committed
            self.handle(StateFlushDue())
            await asyncio.to_thread(self.store.close)


async def start_server(config: ServerConfig) -> ChatServer:
    """Start a room listening on ``config.host``:``config.port`` (port 0 picks a free one)."""
    server = ChatServer(config, asyncio.get_running_loop())
    try:
        await server.start()
    except BaseException:
        if server.store is not None:
            server.store.close()
        raise
    return server
