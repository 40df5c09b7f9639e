"""One server process: start the room, say where it listens, and serve it until SIGINT or
SIGTERM (SIGHUP reloads the TLS certificate); then shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import resource
import signal
from collections.abc import Callable

from chatroom.server.adapter.app import StartError, start_server
from chatroom.server.config import ServerConfig


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


def _join_hint(host: str, port: int) -> str:
    shown = "localhost" if host in ("0.0.0.0", "::", "") else host
    return f"nc {shown} {port}"


class ListenError(Exception):
    """The server could not start (port in use, bad address, no permission, no Redis)."""


class LoopError(Exception):
    """The event loop asked for with ``--loop`` is not available."""


async def serve(config: ServerConfig, *, banner: bool = True) -> None:
    try:
        server = await start_server(config)
    except StartError as exc:
        raise ListenError(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use"
        else:
            reason = exc.strerror or str(exc)
        ports = "/".join(str(p) for p in (config.port, config.tls_port) if p is not None)
        raise ListenError(f"cannot listen on {config.host}:{ports}: {reason}") from None
    log = logging.getLogger("chatroom.server")
    if banner:
        line = banner_line(config.host, server.host, server.port, note=server.fd_note)
        if server.tls_port is not None:
            line = tls_banner(config.host, server.host, server.port, server.tls_port, line)
        if server.door is not None:
            line += server.door.banner(config.host)
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
    await stop.wait()
    log.info("shutting down (%d online)", len(server.room))
    await server.shutdown()


def banner_line(
    config_host: str, host: str, port: int, workers: int = 1, note: str | None = None
) -> str:
    processes = f" ({workers} workers)" if workers > 1 else ""
    return (
        f"chatroom listening on {host}:{port}{processes} - join with: "
        f"{_join_hint(config_host, port)}" + (f" ({note})" if note else "")
    )


def tls_banner(config_host: str, host: str, port: int | None, tls_port: int, plain: str) -> str:
    """The start-up line with a TLS listener: beside the plaintext one, or alone."""
    shown = "localhost" if config_host in ("0.0.0.0", "::", "") else config_host
    join = f"chatroom-client tls://{shown}:{tls_port}"
    if port is None:
        return f"chatroom listening on {host}:{tls_port} (TLS only) - join with: {join}"
    return f"{plain}; TLS on port {tls_port}: {join}"
