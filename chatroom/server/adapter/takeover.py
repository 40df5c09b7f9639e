"""The new process of an upgrade: receive everything from the old one, rebuild, serve on.

Started by the old process (:mod:`~chatroom.server.adapter.upgrade`) with the same flags and
:data:`~chatroom.server.adapter.handover.ENV` naming its end of their socketpair. It makes
its room from the flags as any server does (the slow part: imports, the ops file, the
motd), says hello, and then, while the old one is frozen: takes the state (refused, with
one line, if its format or shape is not this version's, core/snapshot.py), checks that
RLIMIT_NOFILE has room for every descriptor before taking any, opens the state file (the
old one has let go of it; ``--state``), takes the descriptors,
and says TAKEN. Only after the old one's COMMIT does it make the connections' transports
(each sends what the old one owed first), listen and read again.
Anything that fails before COMMIT ends this process (``os._exit(1)``, its copies of the
descriptors closed by the kernel: the old process holds its own and goes on).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import resource
import socket
import time
from dataclasses import replace
from typing import Any

from chatroom.server.adapter.app import ChatServer
from chatroom.server.adapter.carried import Carried
from chatroom.server.adapter.connection import ClientConnection
from chatroom.server.adapter.handover import (
    ACK,
    COMMIT,
    HELLO,
    OFFER,
    READY,
    REFUSED,
    STATE,
    TAKEN,
    Channel,
    HandoverFailed,
)
from chatroom.server.adapter.listener import open_fds
from chatroom.server.adapter.startup import RoomClock, StartError
from chatroom.server.adapter.store import StateError, StateStore
from chatroom.server.config import ServerConfig
from chatroom.server.core.inputs import LeaseGranted
from chatroom.server.core.snapshot import SnapshotRefused, restore
from chatroom.server.pidfile import notify

log = logging.getLogger("chatroom.server")


async def _redis_answers(config: ServerConfig) -> None:
    """Raise HandoverFailed unless Redis answers a PING (the new link connects only after
    COMMIT: a Redis that goes away in between is waited for, :func:`_serve_on`)."""
    import redis.asyncio  # (the redis package: only with --redis)

    client = redis.asyncio.from_url(config.redis, socket_timeout=config.ledger_timeout)
    try:
        await client.ping()
    except (redis.RedisError, OSError) as exc:
        raise HandoverFailed(f"Redis does not answer ({exc})") from None
    finally:
        await client.aclose()


def fd_problem(count: int, config: ServerConfig) -> str | None:
    """Why ``count`` more descriptors do not fit in RLIMIT_NOFILE (None: they do)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    needed = count + open_fds() + config.fd_reserve
    if needed <= soft:
        return None
    return f"{count} descriptors to take and the open-file limit is {soft} (prlimit --nofile)"


async def take_over(config: ServerConfig, fd: int) -> ChatServer:
    """Become the server the old process was (the module's docstring); on failure, exit."""
    loop = asyncio.get_running_loop()
    channel = Channel(socket.socket(fileno=fd))
    try:
        server = ChatServer(config, loop, taking_over=True)
        if config.redis:  # reachable now, or the old one goes on (it is not frozen yet)
            await _redis_answers(config)
        channel.send(HELLO, {"pid": os.getpid()})
        started = time.perf_counter()
        carried, appends = _receive(server, channel)
        channel.receive(time.monotonic() + config.handover_step, COMMIT)
    except HandoverFailed as exc:
        log.error("upgrade: pid %d does not take over: %s", os.getpid(), exc)
        os._exit(1)
    channel.close()
    # Transports only now: an event loop may start reading a socket as soon as its
    # transport is made (uvloop does, paused or not), and until COMMIT it is the old one's.
    await asyncio.gather(*(_connect(server, one, sock) for one, sock in carried))
    count = len(carried)
    await _serve_on(server, appends)
    log.info(
        "upgrade: pid %d took over %d connections in %.0f ms",
        os.getpid(),
        count,
        (time.perf_counter() - started) * 1000,
    )
    return server


def _receive(
    server: ChatServer, channel: Channel
) -> tuple[list[tuple[Carried, socket.socket]], list[Any]]:
    """Everything up to TAKEN: each connection's state and socket (and, in the server's
    config, the listening sockets and, with --redis, where the old one read the stream to)."""
    config = server.config
    deadline = time.monotonic() + config.handover_start + config.handover_step
    offer = channel.receive_json(deadline, OFFER)
    deadline = time.monotonic() + config.handover_step
    _, state = channel.receive(deadline, STATE)
    problem = fd_problem(offer["fds"], config)
    if problem is None:
        try:
            extra = restore(state, server.room)
        except SnapshotRefused as exc:
            problem = str(exc)
    if problem is None and config.state is not None:  # the old one has let go of it
        try:
            use_store(server, StateStore.from_config(config)[0])
        except StateError as exc:
            problem = str(exc)
    if problem is not None:
        channel.send(REFUSED, {"reason": problem})
        raise HandoverFailed(problem)
    channel.send(READY)
    fds: list[int] = []
    while len(fds) < offer["fds"]:
        fds += channel.receive_fds(time.monotonic() + config.handover_step, config.handover_batch)
        channel.send(ACK)
    names: list[str] = extra["listeners"]
    listeners, conn_fds = fds[: len(names)], fds[len(names) :]
    server.clock = RoomClock(extra["clock"])
    server.ids = itertools.count(extra["next_id"])
    server.outbox = extra["outbox"]
    server.config = replace(
        config,
        inherited=tuple(zip(listeners, names, strict=True)),
        stream_position=extra.get("cluster"),
    )
    carried: list[Carried] = extra["connections"]
    socks = [socket.socket(fileno=fd) for fd in conn_fds]
    notify(f"MAINPID={os.getpid()}")  # before the old one exits (pidfile.py)
    channel.send(TAKEN)
    return list(zip(carried, socks, strict=True)), extra.get("appends", [])


async def _connect(server: ChatServer, carried: Carried, sock: socket.socket) -> ClientConnection:
    conn = server._new_connection(carried.named, b"", carried)
    server.adopt(conn)  # before any transport is made: the room's output finds them all
    await server.loop.connect_accepted_socket(lambda: conn, sock)
    return conn


def use_store(server: ChatServer, store: StateStore) -> None:
    """The state file, which the old process let go of; its seq leases told to the room."""
    store.on_lease = lambda n: server.loop.call_soon_threadsafe(server.handle, LeaseGranted(n))
    server.store = store


async def open_store(server: ChatServer) -> None:
    """The old process, thawing: the state file again, once the new process that failed has
    let go of it (it may have opened it: a few tries, ``handover_step`` at most)."""
    deadline = time.monotonic() + server.config.handover_step
    while True:
        try:
            store, _ = await asyncio.to_thread(StateStore.from_config, server.config)
        except StateError as exc:
            if time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                continue
            log.error("upgrade failed and %s: the state is not kept until a restart", exc)
            return
        use_store(server, store)
        return


async def _serve_on(server: ChatServer, appends: list[Any]) -> None:
    """After COMMIT: the listeners, then every connection's owed output and its input.
    With --redis, a Redis that went away since the PING is waited for (``handover_start``
    at most): the connections wait, their input held."""
    deadline = time.monotonic() + server.config.handover_start
    while True:
        try:
            await server.start()
            break
        except StartError as exc:
            if not server.config.redis or time.monotonic() > deadline:
                raise
            log.warning("upgrade: %s; trying again", exc)
            await asyncio.sleep(server.config.reconnect_backoff[0])
    if server.cluster is not None:  # lines the old link had not sent yet, first
        for action in appends:
            server.cluster.carry(action)
    for conn in list(server.connections.values()):
        deadline = server.room.next_idle_check(conn.conn_id)
        conn.hold(False, None if deadline is None else max(0.0, deadline - server.clock()))
