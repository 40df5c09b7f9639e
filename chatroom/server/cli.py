"""``chatroom-server``: parse flags, start the room, stop it gracefully on Ctrl+C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import logging
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

from chatroom.cli_parser import OneLineErrorParser
from chatroom.protocol import name_problem
from chatroom.server.adapter.app import StartError, start_server
from chatroom.server.cli_flags import PROG, build_parser, config_from_args
from chatroom.server.config import ServerConfig
from chatroom.server.core.moderation import hash_password
from chatroom.server.workers import WorkerStartError, run_workers, worker_argv

__all__ = ["build_parser", "config_from_args", "main", "worker_argv"]


class PasswordFileError(Exception):
    """--password-file cannot be read, or holds no password."""


def read_password(path: str) -> bytes:
    """The room's password: the file's text without surrounding whitespace (a final newline
    is not part of it). Read once, at start."""
    try:
        with open(path, encoding="utf-8") as file:
            secret = file.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PasswordFileError(f"--password-file {path}: {reason}") from None
    if not secret:
        raise PasswordFileError(f"--password-file {path}: the file holds no password")
    return secret.encode()


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
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


def _raise_fd_limit() -> None:
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


def hash_password_main(argv: list[str]) -> int:
    """``chatroom-server hash-password NAME``: read a password without echo, print the line
    for --ops-file."""
    parser = OneLineErrorParser(
        prog=f"{PROG} hash-password",
        description="Print an --ops-file line for NAME; the password is read without echo.",
    )
    parser.add_argument("name", help="the operator's name, as given to /oper")
    args = parser.parse_args(argv)
    problem = name_problem(args.name)
    if problem:
        parser.error(f"{args.name!r}: {problem}")
    try:
        password = getpass.getpass("password: ")
        if not password:
            parser.error("the password cannot be empty")
        if getpass.getpass("again: ") != password:
            parser.error("the passwords differ")
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)
        return 1
    print(f"{args.name} {hash_password(password)}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        return hash_password_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    config = config_from_args(args)
    problems = config.problems()
    if problems:
        parser.error(problems[0])
    if config.password_file is not None:
        try:
            config = replace(config, password=read_password(config.password_file))
        except PasswordFileError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    _raise_fd_limit()
    try:
        if config.workers > 1:
            return run_workers(
                config,
                lambda port: [sys.executable, "-m", "chatroom.server", *worker_argv(config, port)],
                lambda port: banner_line(config.host, config.host, port, config.workers),
            )
        factory = _loop_factory(config.loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(serve(config, banner=not config.worker))
    except (ListenError, LoopError, WorkerStartError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # a second Ctrl+C during shutdown
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
