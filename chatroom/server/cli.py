"""``chatroom-server``: parse flags, start the room, stop it gracefully on Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import getpass
import ipaddress
import logging
import resource
import signal
import sys
from collections.abc import Callable
from dataclasses import replace

from chatroom.cli_parser import OneLineErrorParser, package_version
from chatroom.protocol import name_problem
from chatroom.server.adapter.app import StartError, start_server
from chatroom.server.config import ROOM_NAME, ServerConfig
from chatroom.server.core.passwords import hash_password
from chatroom.server.workers import WorkerStartError, run_workers

PROG = "chatroom-server"


def _non_negative(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _positive_int(text: str) -> int:
    value = _non_negative(int)(text)  # type: ignore[operator]
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port_or_off(text: str) -> int | None:
    return None if text == "off" else _port(text)


def _port(text: str) -> int:
    value = _non_negative(int)(text)  # type: ignore[operator]
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return value


def _cidr(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address or network: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    parser = OneLineErrorParser(
        prog=PROG,
        description="Run one chat room over TCP. Join it with `nc HOST PORT` or chatroom-client.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    parser.add_argument(
        "--host", default=d.host, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=_port_or_off,
        default=d.port,
        help="plaintext TCP port; 0 picks a free one; off: none, TLS only (needs --tls-port) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tls-port",
        type=_port,
        default=d.tls_port,
        metavar="PORT",
        help="also serve the room over TLS on this port (needs --tls-cert); 0 picks a free one",
    )
    parser.add_argument(
        "--tls-cert",
        default=d.tls_cert,
        metavar="FILE",
        help="PEM certificate chain for --tls-port (e.g. certbot's fullchain.pem); "
        "reloaded on SIGHUP",
    )
    parser.add_argument(
        "--tls-key",
        default=d.tls_key,
        metavar="FILE",
        help="PEM private key of --tls-cert (e.g. privkey.pem; default: in the --tls-cert file)",
    )
    parser.add_argument(
        "--tls-handshake-timeout",
        type=_positive_float,
        default=d.tls_handshake_timeout,
        metavar="SECONDS",
        help="drop a TLS connection that has not finished its handshake by then "
        "(default: %(default)g)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_non_negative(float),
        default=d.idle_timeout,
        metavar="SECONDS",
        help="disconnect a user who sends no line for this long; 0 disables (default: %(default)g)",
    )
    parser.add_argument(
        "--history",
        type=_non_negative(int),
        default=d.history,
        metavar="N",
        help="chat messages replayed to a newcomer (default: %(default)s)",
    )
    parser.add_argument(
        "--max-line",
        type=_positive_int,
        default=d.max_line,
        metavar="BYTES",
        help="longest line a client may send, line ending not counted (default: %(default)s)",
    )
    parser.add_argument(
        "--max-clients",
        type=_positive_int,
        default=d.max_clients,
        metavar="N",
        help="users online at once; later ones get 'server full' (default: %(default)s)",
    )
    parser.add_argument(
        "--max-per-ip",
        type=_positive_int,
        default=d.max_per_ip,
        metavar="N",
        help="connections at once from one remote address (an IPv6 /64); see --exempt-ip "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--connect-burst",
        type=_positive_int,
        default=d.connect_burst,
        metavar="N",
        help="new connections one address may open at once before --connect-rate applies "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--connect-rate",
        type=_non_negative(float),
        default=d.connect_rate,
        metavar="PER_MINUTE",
        help="new connections a minute from one address after the burst; more are told to "
        "try again later; 0 disables (default: %(default)g)",
    )
    parser.add_argument(
        "--exempt-ip",
        type=_cidr,
        nargs="*",
        default=d.exempt_ip,
        metavar="CIDR",
        help="addresses exempt from --max-per-ip and --connect-*; give none to exempt nobody "
        f"(default: {' '.join(d.exempt_ip)})",
    )
    parser.add_argument(
        "--proxy-protocol-from",
        type=_cidr,
        nargs="*",
        default=d.proxy_protocol_from,
        metavar="CIDR",
        help="load balancers whose connections begin with a PROXY protocol header (v1 or v2, "
        "as HAProxy's send-proxy-v2): the client it names is used everywhere; a header from "
        "any other address is refused (default: none, off)",
    )
    parser.add_argument(
        "--rate",
        type=_non_negative(float),
        default=d.rate,
        metavar="LINES_PER_S",
        help="flood control: lines per second per connection, paced not dropped; "
        "0 disables (default: %(default)g)",
    )
    parser.add_argument(
        "--burst",
        type=_positive_int,
        default=d.burst,
        metavar="LINES",
        help="lines a client may send at once before pacing starts (default: %(default)s)",
    )
    parser.add_argument(
        "--max-sendq",
        type=_positive_int,
        default=d.max_sendq,
        metavar="BYTES",
        help="unsent output per connection before it is dropped as too slow (default: %(default)s)",
    )
    parser.add_argument(
        "--loop",
        default=d.loop,
        choices=["auto", "asyncio", "uvloop"],
        help="event loop: uvloop is faster at fan-out; auto uses it when it is installed, "
        "else asyncio's own (default: %(default)s)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share one room among several servers through Redis, e.g. redis://HOST:6379/0 "
        "(needs, from this checkout: pip install '.[redis]')",
    )
    parser.add_argument(
        "--room",
        default=d.room,
        metavar="NAME",
        help="with --redis: the shared room's name (default: %(default)s)",
    )
    parser.add_argument(
        "--workers",
        type=_positive_int,
        default=d.workers,
        metavar="N",
        help="with --redis: run N server processes sharing the port (SO_REUSEPORT) "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--heartbeat-ttl",
        type=_positive_float,
        default=d.heartbeat_ttl,
        metavar="SECONDS",
        help="with --redis: a server silent this long is taken for dead and its users leave "
        "the room (default: %(default)g)",
    )
    parser.add_argument(
        "--password-file",
        metavar="FILE",
        help="a file holding the room's password (read at start); a newcomer sees nothing of "
        "the room until it sends /pass SECRET",
    )
    parser.add_argument(
        "--hide-addresses",
        action="store_true",
        help="default names guest-NNNN and opaque ids: nobody sees another user's ip:port "
        "(the log keeps them)",
    )
    parser.add_argument(
        "--ops-file",
        default=d.ops_file,
        metavar="FILE",
        help="operators: lines 'NAME scrypt$...' made by `chatroom-server hash-password NAME`; "
        "/oper NAME PASSWORD makes a user one",
    )
    parser.add_argument(
        "--motd-file",
        default=d.motd_file,
        metavar="FILE",
        help="message of the day: sent to each newcomer after the welcome, and on /motd",
    )
    parser.add_argument(
        "--state",
        default=d.state,
        metavar="FILE",
        help="keep bans, mutes, the topic and the last --history messages in this SQLite "
        "file, read back at start (created if missing; default: nothing is kept)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--log-level",
        default=d.log_level,
        choices=["debug", "info", "warning", "error"],
        help="log detail on stderr; chat text is never logged at info (default: %(default)s)",
    )
    return parser


def _positive_float(text: str) -> float:
    value = _non_negative(float)(text)  # type: ignore[operator]
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """Every flag is named after the config field it sets (--max-sendq sets max_sendq)."""
    return ServerConfig(**vars(args))


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


def worker_argv(config: ServerConfig, port: int) -> list[str]:
    """The flags of one of ``--workers``: the same settings, the port fixed, ``--worker``."""
    config = replace(config, port=port, workers=1, worker=True)
    default = ServerConfig()
    argv = []
    for name in vars(build_parser().parse_args([])):
        value = getattr(config, name)
        if value == getattr(default, name) and name != "port":
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is None:  # only --port off differs from its default by being None
            argv += [flag, "off"]
        elif isinstance(value, tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


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
    if args.workers > 1 and not args.redis:
        parser.error("--workers needs --redis: the workers share the room through it")
    if args.state and args.redis:
        parser.error("--state is for a room on one server; it cannot be used with --redis")
    if args.room and not ROOM_NAME.fullmatch(args.room):
        parser.error(f"--room {args.room!r}: use 1-64 characters of A-Z a-z 0-9 _ . -")
    if args.tls_port is not None and not args.tls_cert:
        parser.error("--tls-port needs --tls-cert FILE (and --tls-key FILE)")
    if args.tls_cert and args.tls_port is None:
        parser.error("--tls-cert needs --tls-port PORT to serve TLS on")
    if args.port is None and args.tls_port is None:
        parser.error("--port off leaves no port: give --tls-port (TLS only)")
    if args.workers > 1 and args.tls_port == 0:
        parser.error("--workers needs a fixed --tls-port (not 0)")
    config = config_from_args(args)
    if config.password_file is not None:
        try:
            config = replace(config, password=read_password(config.password_file))
        except PasswordFileError as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
            return 1
    logging.basicConfig(
        level=args.log_level.upper(),
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
