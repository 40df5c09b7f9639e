"""One server process: start the room, say where it listens, and serve it until SIGINT or
SIGTERM (SIGHUP reloads the TLS certificate); then shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import signal
from collections.abc import Callable

from chatroom.server.adapter.app import StartError, start_server
from chatroom.server.adapter.handover import ENV
from chatroom.server.adapter.listener import DEFAULT_HOSTS, BindError, show
from chatroom.server.adapter.takeover import take_over
from chatroom.server.adapter.upgrade import Upgrade
from chatroom.server.config import ServerConfig
from chatroom.server.pidfile import remove_pid_file, serving

# What to do about a socket that cannot listen, by errno.
_BIND_HINTS = {
    errno.EADDRINUSE: "another program listens there (another chatroom-server?): stop it, "
    "or give another {flag}",
    errno.EACCES: "a port below 1024 needs root or CAP_NET_BIND_SERVICE (README, systemd)",
    errno.EADDRNOTAVAIL: "this machine has no such address: check --host",
}


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event-loop factory for ``--loop`` (None: asyncio's own); None for auto without uvloop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise LoopError("--loop uvloop: uvloop is not installed (pip install uvloop)") from None
        return None
    return uvloop.new_event_loop


def raise_fd_limit() -> None:
    """Each client is a file descriptor; allow as many as the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _join_host(hosts: tuple[str, ...]) -> str:
    """The host a user on this machine joins: the first given that is no wildcard."""
    named = [host for host in hosts if host not in ("0.0.0.0", "::", "")]
    return named[0] if named else "localhost"


def configured_addresses(hosts: tuple[str, ...], port: int) -> list[str]:
    """Where ``--host`` says to listen on ``port``, as people write it (for --workers)."""
    return [show((host, port)) for host in hosts or DEFAULT_HOSTS]


def bind_problem(exc: BindError) -> str:
    """The one line for a socket that cannot listen: where, why, and what to do."""
    reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
    hint = _BIND_HINTS.get(exc.errno or 0)
    flag = exc.where.rpartition("(")[2].rstrip(")")
    return f"cannot listen on {exc.where}: {reason}" + (
        f"; {hint.format(flag=flag)}" if hint else ""
    )


class ListenError(Exception):
    """The server could not start (port in use, bad address, no permission, no Redis)."""


class LoopError(Exception):
    """The event loop asked for with ``--loop`` is not available."""


async def serve(config: ServerConfig, *, banner: bool = True) -> None:
    handover = os.environ.pop(ENV, None)  # started by an upgrading server (upgrade.py)
    try:
        if handover is not None:
            server = await take_over(config, int(handover))
        else:
            server = await start_server(config)
    except StartError as exc:
        raise ListenError(str(exc)) from None
    except BindError as exc:
        raise ListenError(bind_problem(exc)) from None
    log = logging.getLogger("chatroom.server")
    if handover is not None:  # the start-up line was the first process's
        if not banner:  # a worker: the supervisor learns who it is now (rolling.py)
            print(f"ready {os.getpid()}", flush=True)
    elif banner:
        assert server.listener is not None
        plain, tls = server.listener.addresses(), server.listener.addresses(tls=True)
        notes = [n for n in (config.inherited and "sockets from systemd", server.fd_note) if n]
        line = ""
        if server.port is not None:
            line = banner_line(config.host, plain, server.port, note="; ".join(notes) or None)
        if server.tls_port is not None:
            line = tls_banner(config.host, tls, server.tls_port, line)
        if server.door is not None:
            host = _join_host(config.host)
            line += server.door.banner(f"[{host}]" if ":" in host else host)
        print(line, flush=True)
    else:
        if server.fd_note:
            log.warning("%s", server.fd_note)
        print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s", type(loop).__module__.split(".")[0])
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if server.tls is not None:
        loop.add_signal_handler(signal.SIGHUP, server.reload_certificate)
    loop.add_signal_handler(signal.SIGUSR2, Upgrade(server).requested)
    serving(config.pid_file)
    await stop.wait()
    log.info("shutting down (%d online)", len(server.room))
    await server.shutdown()
    if config.pid_file is not None:
        remove_pid_file(config.pid_file)


def banner_line(
    hosts: tuple[str, ...],
    addresses: list[str],
    port: int,
    workers: int = 1,
    note: str | None = None,
) -> str:
    """The start-up line: every address it listens on, and how to join."""
    processes = f" ({workers} workers)" if workers > 1 else ""
    return (
        f"chatroom listening on {' and '.join(addresses)}{processes} - join with: "
        f"nc {_join_host(hosts)} {port}" + (f" ({note})" if note else "")
    )


def tls_banner(hosts: tuple[str, ...], addresses: list[str], tls_port: int, plain: str) -> str:
    """The start-up line with a TLS listener: beside the plaintext one (``plain``), or
    alone (``plain`` empty)."""
    host = _join_host(hosts)
    join = f"chatroom-client tls://{f'[{host}]' if ':' in host else host}:{tls_port}"
    if not plain:
        where = " and ".join(addresses)
        return f"chatroom listening on {where} (TLS only) - join with: {join}"
    return f"{plain}; TLS on port {tls_port}: {join}"
