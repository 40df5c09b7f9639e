"""SIGUSR2 in the serving process: start the new version and hand it everything (the old side).

:class:`Upgrade` starts the installed server again with the same flags (``python -m
chatroom.server`` with this process's arguments), its end of a socketpair named by
:data:`~chatroom.server.adapter.handover.ENV`, and goes on serving while the new process
starts. When the new one says hello, this one freezes (:meth:`Upgrade._freeze`): it stops
accepting (the listening sockets stay open: newcomers wait in the kernel's backlog), stops
reading every connection, lets connections being made finish, flushes what the room owes
everyone, and commits the state file and lets go of its lock. It then hands over, without
returning to the event loop (so asyncio writes nothing more behind its back): the state
(the room's snapshot, core/snapshot.py, with each connection's
:class:`~chatroom.server.adapter.carried.Carried`, the outbox's subscriptions, the clock's
origin and the next connection id), then the descriptors in acknowledged batches. Once the
new process has rebuilt everything and said TAKEN, this one says COMMIT and ends with
``os._exit(0)``: no socket is shut down or closed by it (the kernel drops this process's
copies; the new process holds its own), no leave is announced, no finaliser runs that
could write to a client.

Whatever fails before COMMIT (the new version does not start, crashes, takes too long,
refuses the state's format or lacks file descriptors) is one log line, and this process
thaws: it accepts and reads again, as if nothing had happened. A second SIGUSR2 while one
is under way is one log line too.

TLS and WebSocket connections cannot be carried (their sessions' state is in this process's
memory): each is told, in its format, that the server restarts for an upgrade and closed
cleanly, and leaves the room; chatroom-client reconnects by itself and resumes by seq.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from chatroom.server.adapter.handover import (
    ABORT,
    ACK,
    COMMIT,
    ENV,
    HELLO,
    OFFER,
    READY,
    STATE,
    TAKEN,
    Channel,
    HandoverFailed,
)
from chatroom.server.adapter.takeover import open_store
from chatroom.server.core.inputs import Restarting, StateFlushDue
from chatroom.server.core.snapshot import snapshot
from chatroom.server.pidfile import notify

if TYPE_CHECKING:
    from chatroom.server.adapter.app import ChatServer
    from chatroom.server.adapter.connection import ClientConnection

log = logging.getLogger("chatroom.server")


def carried_over(conn: ClientConnection) -> bool:
    """Whether a connection can be handed over: a plain TCP socket, no TLS, no WebSocket."""
    transport = conn.transport
    if transport is None or transport.get_extra_info("framed"):
        return False
    if transport.get_extra_info("ssl_object") is not None:
        return False
    sock = transport.get_extra_info("socket")
    return sock is not None and sock.fileno() >= 0


class Upgrade:
    """The old process's side of an upgrade (the module's docstring)."""

    def __init__(self, server: ChatServer, argv: list[str] | None = None) -> None:
        self.server = server
        self.argv = argv or [sys.executable, "-m", "chatroom.server", *sys.argv[1:]]
        self.under_way = False
        self._task: asyncio.Task[None] | None = None
        self._cluster_position: Any = None
        self._appends: list[Any] = []  # with --redis: lines not in Redis yet, carried

    def requested(self) -> None:
        """SIGUSR2: upgrade, unless an upgrade is under way already."""
        if self.under_way:
            log.warning("SIGUSR2 ignored: an upgrade is already under way")
            return
        self.under_way = True
        self._task = self.server.loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except OSError as exc:
            self._failed(f"no socketpair ({exc.strerror})")
            return
        try:
            env = {**os.environ, ENV: str(child.fileno())}
            proc = subprocess.Popen(self.argv, pass_fds=(child.fileno(),), env=env)
        except OSError as exc:
            parent.close()
            self._failed(f"cannot start {self.argv[0]} ({exc.strerror})")
            return
        finally:
            child.close()
        channel = Channel(parent)
        frozen = False
        try:
            deadline = time.monotonic() + self.server.config.handover_start
            hello = await asyncio.to_thread(channel.receive_json, deadline, HELLO)
            started = time.perf_counter()
            frozen = True
            count = await self._freeze()
            self._hand_over(channel)
        except Exception as exc:  # noqa: BLE001 (whatever it was: serve on, unfrozen)
            with contextlib.suppress(HandoverFailed):
                channel.send(ABORT)
            channel.close()
            if frozen:
                notify(f"MAINPID={os.getpid()}")  # if the new one had said it was (pidfile.py)
                await self._thaw()
            why = exc if isinstance(exc, HandoverFailed) else f"{type(exc).__name__}: {exc}"
            self._failed(f"pid {proc.pid}: {why}")
            await asyncio.to_thread(_end, proc)
            return
        log.info(
            "upgrade: pid %d took over %d connections (frozen %.0f ms); pid %d exits",
            hello.get("pid", proc.pid),
            count,
            (time.perf_counter() - started) * 1000,
            os.getpid(),
        )
        for handler in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                handler.flush()
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        # Not sys.exit: no finaliser, no transport's close, nothing written to a client.
        os._exit(0)

    def _failed(self, why: str) -> None:
        log.warning("upgrade failed; pid %d goes on serving: %s", os.getpid(), why)
        self.under_way = False

    # --- freezing and thawing ---

    def _listeners(self) -> list[Any]:
        server = self.server
        door = server.door.listener if server.door is not None else None
        return [listener for listener in (server.listener, door) if listener is not None]

    async def _freeze(self) -> int:
        """Accept nothing, read nothing, flush everything; the count to carry over."""
        server = self.server
        for listener in self._listeners():
            listener.hold()
        for conn in list(server.connections.values()):
            conn.hold()
        # Connections accepted a moment ago are being made (a loop turn or two).
        await asyncio.sleep(server.config.handover_settle)
        for conn in list(server.connections.values()):
            conn.hold()
        await self._farewell()
        waited = 0.0  # password checks under way (scrypt, ~50 ms each) are answered
        while server.checks.pending and waited < server.config.shutdown_grace:
            await asyncio.sleep(0.01)
            waited += 0.01
        if server.ops is not None:  # the new process opens the metrics port again
            server.ops.close()
        if server.cluster is not None:  # accepted lines reach Redis; where it read to
            from chatroom.server.cluster.link import hand_over  # (the redis package)

            self._cluster_position, self._appends = await hand_over(server.cluster)
        server.flush()
        if server.store is not None:  # commit the chat and let go of the file's lock
            server.handle(StateFlushDue())
            store, server.store = server.store, None
            await asyncio.to_thread(store.close)
        return sum(1 for conn in server.connections.values() if carried_over(conn))

    async def _farewell(self) -> None:
        """TLS and WebSocket connections: told the server restarts, closed cleanly (they
        leave the room); their TLS close_notify and close frames get the settle time."""
        server = self.server
        leaving = [c for c in server.connections.values() if not carried_over(c)]
        for conn in leaving:
            server.handle(Restarting(conn.conn_id))
        server.flush()
        waited = 0.0
        while waited < server.config.shutdown_grace and any(
            conn.conn_id in server.connections for conn in leaving
        ):
            await asyncio.sleep(0.01)
            waited += 0.01

    async def _thaw(self) -> None:
        server = self.server
        if server.config.state is not None and server.store is None:
            await open_store(server)
        for listener in self._listeners():
            listener.hold(False)
        for conn in list(server.connections.values()):
            conn.hold(False)
        if server.ops is not None:
            if server.loop_lag is not None:
                server.loop_lag.stop()
            try:
                await server._start_ops()
            except Exception as exc:  # noqa: BLE001 (the room serves on without it)
                log.error("upgrade failed and the metrics port cannot be opened again: %s", exc)

    # --- the frozen handover: no await from here on ---

    def _hand_over(self, channel: Channel) -> None:
        server = self.server
        config = server.config
        step = config.handover_step
        listeners: list[tuple[socket.socket, str]] = []
        if server.listener is not None:
            listeners += [(sock, "") for sock in server.listener.sockets]
            listeners += [(sock, "tls") for sock in server.listener.tls_sockets]
        if server.door is not None:
            listeners += [(sock, "ws") for sock in server.door.listener.sockets]
            listeners += [(sock, "wss") for sock in server.door.listener.tls_sockets]
        conns = [conn for conn in server.connections.values() if carried_over(conn)]
        extra = {
            "pid": os.getpid(),
            "clock": server.clock.offset,
            "next_id": next(server.ids),
            "outbox": server.outbox,
            "listeners": [name for _, name in listeners],
            "connections": [conn.carry() for conn in conns],
            "cluster": self._cluster_position,
            "appends": self._appends,
        }
        state = snapshot(server.room, extra)
        fds = [sock.fileno() for sock, _ in listeners]
        fds += [conn.transport.get_extra_info("socket").fileno() for conn in conns]
        channel.send(OFFER, {"fds": len(fds), "size": len(state)})
        channel.send(STATE, state)
        channel.receive(time.monotonic() + step, READY)
        for start in range(0, len(fds), config.handover_batch):
            channel.send_fds(fds[start : start + config.handover_batch])
            channel.receive(time.monotonic() + step, ACK)
        channel.receive(time.monotonic() + step, TAKEN)
        channel.send(COMMIT)


def _end(proc: subprocess.Popen[Any]) -> None:
    """The new process that did not take over: gone, or made to go; reaped."""
    try:
        proc.wait(timeout=2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
