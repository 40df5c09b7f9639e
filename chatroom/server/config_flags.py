"""The server's command-line flags as config fields: :class:`FlagSettings`, the part of
:class:`~chatroom.server.config.ServerConfig` a user sets on the command line.

Each field says in its metadata (:func:`flag`) which flag it is, its help, how its text is
parsed; cli_flags.py generates the parser from them, in the fields' order (--help's order), and
workers.py each worker's command line. Checks that span several flags (``--tls-port``
needs ``--tls-cert``...) are :meth:`FlagSettings.problems`.
"""

from __future__ import annotations

import re
from dataclasses import Field, dataclass, field, fields
from typing import Any

from chatroom.protocol import DEFAULT_PORT
from chatroom.server import flag_values as v

# A shared room's name: it becomes part of Redis keys, so a plain, short alphabet.
ROOM_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def flag(default: Any, name: str, help: str | None, **options: Any) -> Any:
    """A field that is the command-line flag ``name``. ``help`` is its --help text (argparse's
    ``%(default)s`` allowed; None: not shown). Options: ``metavar``, ``parse`` (text to value,
    ValueError with the reason: see flag_values.py), ``choices``, ``nargs`` ("*": a tuple),
    ``off`` (the text that means None), ``repeat`` (True: given once per value, a tuple).
    A bool field is a switch (``--flag`` sets it)."""
    return field(default=default, metadata={"flag": name, "help": help, **options})


def flag_fields() -> list[Field[Any]]:
    """The fields that are flags, in the order --help lists them."""
    return [f for f in fields(FlagSettings) if "flag" in f.metadata]


@dataclass(frozen=True, slots=True)
class ListenFlags:
    """Where it listens: the first flags of --help (a base class's fields come first)."""

    # (the command line's flags, in --help's order: the fields' order)
    # () is every address of both families: 0.0.0.0 and :: apart (IPv4 alone on a machine
    # without IPv6). An explicit 0.0.0.0 is IPv4 alone; an explicit :: takes IPv4 too
    # (dual-stack) unless an IPv4 address is given beside it (listener.py).
    host: tuple[str, ...] = flag(
        (),
        "--host",
        "address to listen on; give it again for more (--host 127.0.0.1 --host ::1); "
        "0.0.0.0 is IPv4 only, :: both families (default: every address, IPv4 and IPv6)",
        metavar="ADDRESS",
        repeat=True,
    )
    port: int | None = flag(  # None (--port off): TLS only
        DEFAULT_PORT,
        "--port",
        "plaintext TCP port; 0 picks a free one; off: none, TLS only (needs --tls-port) "
        "(default: %(default)s)",
        parse=v.port_or_off,
        off="off",
    )
    tls_port: int | None = flag(  # serves the same room over TLS beside port
        None,
        "--tls-port",
        "also serve the room over TLS on this port (needs --tls-cert); 0 picks a free one",
        metavar="PORT",
        parse=v.port,
    )
    tls_cert: str | None = flag(
        None,
        "--tls-cert",
        "PEM certificate chain for --tls-port (e.g. certbot's fullchain.pem); reloaded on SIGHUP",
        metavar="FILE",
    )
    tls_key: str | None = flag(  # None: in the tls_cert file
        None,
        "--tls-key",
        "PEM private key of --tls-cert (e.g. privkey.pem; default: in the --tls-cert file)",
        metavar="FILE",
    )
    tls_handshake_timeout: float = flag(
        10.0,
        "--tls-handshake-timeout",
        "drop a TLS connection that has not finished its handshake by then (default: %(default)g)",
        metavar="SECONDS",
        parse=v.positive_float,
    )


@dataclass(frozen=True, slots=True)
class FlagSettings(ListenFlags):
    """The settings a user gives on the command line (every field here is a flag)."""

    # --- what the room allows
    idle_timeout: float = flag(
        60.0,
        "--idle-timeout",
        "disconnect a user who sends no line for this long; 0 disables (default: %(default)g)",
        metavar="SECONDS",
        parse=v.non_negative_float,
    )
    history: int = flag(
        20,
        "--history",
        "chat messages replayed to a newcomer (default: %(default)s)",
        metavar="N",
        parse=v.non_negative_int,
    )
    # Rooms (docs/PROTOCOL.md, "Rooms"). With --redis the default room's name also names
    # the server's shared records (names, bans) in Redis, as it named the one room before.
    room: str = flag(
        "main",
        "--room",
        "the room every connection starts in (with --redis: the shared server's name too) "
        "(default: %(default)s)",
        metavar="NAME",
        parse=v.room,
    )
    rooms: tuple[str, ...] = flag(
        (),
        "--rooms",
        "rooms that exist from the start and stay when empty, keeping their topic and "
        "history (default: none)",
        metavar="NAME",
        parse=v.room,
        nargs="*",
    )
    max_rooms: int = flag(
        1000,
        "--max-rooms",
        "rooms the server holds at most; past it /join makes no new one (default: %(default)s)",
        metavar="N",
        parse=v.positive_int,
    )
    # What /history can reach: kept in memory, in the --state file, and read from the
    # shared stream at sync with --redis (at least --history: the replay is its tail).
    keep: int = flag(
        1000,
        "--keep",
        "chat messages kept for /history (and in --state); at least --history "
        "(default: %(default)s)",
        metavar="N",
        parse=v.non_negative_int,
    )
    max_line: int = flag(  # line ending not counted
        2048,
        "--max-line",
        "longest line a client may send, line ending not counted (default: %(default)s)",
        metavar="BYTES",
        parse=v.positive_int,
    )
    max_clients: int = flag(  # lowered at start to what RLIMIT_NOFILE holds (listener.py)
        10_000,
        "--max-clients",
        "users online at once; later ones get 'server full' (default: %(default)s)",
        metavar="N",
        parse=v.positive_int,
    )
    max_per_ip: int = flag(
        16,
        "--max-per-ip",
        "connections at once from one remote address (an IPv6 /64); see --exempt-ip "
        "(default: %(default)s)",
        metavar="N",
        parse=v.positive_int,
    )
    # New connections from one address: a burst, then connect_rate a minute (0 disables).
    connect_burst: int = flag(
        20,
        "--connect-burst",
        "new connections one address may open at once before --connect-rate applies "
        "(default: %(default)s)",
        metavar="N",
        parse=v.positive_int,
    )
    connect_rate: float = flag(
        6.0,
        "--connect-rate",
        "new connections a minute from one address after the burst; more are told to "
        "try again later; 0 disables (default: %(default)g)",
        metavar="PER_MINUTE",
        parse=v.non_negative_float,
    )
    # Networks exempt from the per-address limits (max_per_ip, connect_*); () exempts none.
    exempt_ip: tuple[str, ...] = flag(
        ("127.0.0.0/8", "::1/128"),
        "--exempt-ip",
        "addresses exempt from --max-per-ip and --connect-*; give none to exempt nobody "
        "(default: %(default)s)",
        metavar="CIDR",
        parse=v.cidr,
        nargs="*",
    )
    # Load balancers whose connections begin with a PROXY protocol header (v1 or v2): the
    # client it names is the connection's address everywhere. () trusts nobody (off).
    proxy_protocol_from: tuple[str, ...] = flag(
        (),
        "--proxy-protocol-from",
        "load balancers whose connections begin with a PROXY protocol header (v1 or v2, "
        "as HAProxy's send-proxy-v2): the client it names is used everywhere; a header from "
        "any other address is refused (default: none, off)",
        metavar="CIDR",
        parse=v.cidr,
        nargs="*",
    )
    rate: float = flag(  # lines per second per connection
        5.0,
        "--rate",
        "flood control: lines per second per connection, paced not dropped; "
        "0 disables (default: %(default)g)",
        metavar="LINES_PER_S",
        parse=v.non_negative_float,
    )
    burst: int = flag(
        10,
        "--burst",
        "lines a client may send at once before pacing starts (default: %(default)s)",
        metavar="LINES",
        parse=v.positive_int,
    )
    max_sendq: int = flag(  # unsent bytes per connection before it is dropped as slow
        262_144,
        "--max-sendq",
        "unsent output per connection before it is dropped as too slow (default: %(default)s)",
        metavar="BYTES",
        parse=v.positive_int,
    )
    loop: str = flag(
        "auto",
        "--loop",
        "event loop: uvloop is faster at fan-out; auto uses it when it is installed, "
        "else asyncio's own (default: %(default)s)",
        choices=["auto", "asyncio", "uvloop"],
    )
    # --- one room on several servers (docs/SCALING.md)
    redis: str | None = flag(
        None,
        "--redis",
        "share one room among several servers through Redis, e.g. redis://HOST:6379/0 "
        "(needs, from this checkout: pip install '.[redis]')",
        metavar="URL",
    )

    workers: int = flag(
        1,
        "--workers",
        "with --redis: run N server processes sharing the port (SO_REUSEPORT) "
        "(default: %(default)s)",
        metavar="N",
        parse=v.positive_int,
    )
    heartbeat_ttl: float = flag(
        4.0,
        "--heartbeat-ttl",
        "with --redis: a server silent this long is taken for dead and its users leave "
        "the room (default: %(default)g)",
        metavar="SECONDS",
        parse=v.positive_float,
    )
    # --- on the internet (README, "Running it on the internet")
    password_file: str | None = flag(
        None,
        "--password-file",
        "a file holding the room's password (read at start); a newcomer sees nothing of "
        "the room until it sends /pass SECRET",
        metavar="FILE",
    )
    hide_addresses: bool = flag(
        False,
        "--hide-addresses",
        "default names guest-NNNN and opaque ids: nobody sees another user's ip:port "
        "(the log keeps them)",
    )
    # --- moderation (docs/PROTOCOL.md, "Operators")
    ops_file: str | None = flag(
        None,
        "--ops-file",
        "operators: lines 'NAME scrypt$...' made by `chatroom-server hash-password NAME`; "
        "/oper NAME PASSWORD makes a user one",
        metavar="FILE",
    )
    motd_file: str | None = flag(  # read at start
        None,
        "--motd-file",
        "message of the day: sent to each newcomer after the welcome, and on /motd",
        metavar="FILE",
    )
    # A SQLite file keeping bans, mutes, the topic and the recent chat across restarts
    # (store.py). None: nothing is kept.
    state: str | None = flag(
        None,
        "--state",
        "keep bans, mutes, the topic and the last --keep messages in this SQLite "
        "file, read back at start (created if missing; default: nothing is kept)",
        metavar="FILE",
    )
    # This process is one of --workers: SO_REUSEPORT, says only "ready" (not in --help).
    worker: bool = flag(False, "--worker", None)
    log_level: str = flag(
        "info",
        "--log-level",
        "log detail on stderr; chat text is never logged at info (default: %(default)s)",
        choices=["debug", "info", "warning", "error"],
    )
    log_format: str = flag(
        "text",
        "--log-format",
        "text lines, or one JSON object a line with named fields for log shippers "
        "(default: %(default)s)",
        choices=["text", "json"],
    )
    # --- operations (docs/OPERATIONS.md)
    metrics_port: int | None = flag(
        None,
        "--metrics-port",
        "serve Prometheus metrics at /metrics, and /healthz and /readyz, on this port "
        "(default: off)",
        metavar="PORT",
        parse=v.port,
    )
    metrics_host: str = flag(
        "127.0.0.1",
        "--metrics-host",
        "address the metrics port listens on (default: %(default)s)",
    )
    # --- WebSocket (docs/PROTOCOL.md, "WebSocket"; adapter/websocket.py)
    ws_port: int | None = flag(
        None,
        "--ws-port",
        "also serve the room over WebSocket (ws://HOST:PORT/) on this port; 0 picks a free one",
        metavar="PORT",
        parse=v.port,
    )
    wss_port: int | None = flag(
        None,
        "--wss-port",
        "also serve the room over wss:// (WebSocket with TLS) on this port (needs --tls-cert)",
        metavar="PORT",
        parse=v.port,
    )
    ws_origin: tuple[str, ...] = flag(
        (),
        "--ws-origin",
        "only web pages from this origin (e.g. https://chat.example.org) may open the "
        "WebSocket; repeatable; clients that send no Origin (bots) are not browsers and "
        "may connect (default: any page)",
        metavar="ORIGIN",
        parse=v.origin,
        nargs="+",
        action="extend",
    )

    def __post_init__(self) -> None:
        # The CLI hands over lists (nargs); a frozen config keeps tuples (a host: a string).
        host = (self.host,) if isinstance(self.host, str) else tuple(self.host)
        object.__setattr__(self, "host", host)
        object.__setattr__(self, "exempt_ip", tuple(self.exempt_ip))
        object.__setattr__(self, "proxy_protocol_from", tuple(self.proxy_protocol_from))
        object.__setattr__(self, "ws_origin", tuple(self.ws_origin))

    def problems(self) -> list[str]:
        """What is wrong with these flags together (:func:`flag_problems`)."""
        return flag_problems(self)


def flag_problems(flags: FlagSettings) -> list[str]:
    """What is wrong with these flags together, one line each, as the command line
    reports them (the first, with exit status 2); [] when nothing is."""
    found = []
    if flags.workers > 1 and not flags.redis:
        found.append("--workers needs --redis: the workers share the room through it")
    if flags.state and flags.redis:
        found.append("--state is for a room on one server; it cannot be used with --redis")
    if flags.tls_port is not None and not flags.tls_cert:
        found.append("--tls-port needs --tls-cert FILE (and --tls-key FILE)")
    if flags.tls_cert and flags.tls_port is None and flags.wss_port is None:
        found.append("--tls-cert needs --tls-port PORT to serve TLS on")
    listeners = (flags.port, flags.tls_port, flags.ws_port, flags.wss_port)
    if all(port is None for port in listeners):
        found.append("--port off leaves no port: give --tls-port (TLS only)")
    if flags.workers > 1 and flags.tls_port == 0:
        found.append("--workers needs a fixed --tls-port (not 0)")
    if flags.workers > 1 and flags.metrics_port is not None:
        found.append("--metrics-port is for one process: scrape each server, not --workers")
    if flags.wss_port is not None and not flags.tls_cert:
        found.append("--wss-port needs --tls-cert FILE (and --tls-key FILE)")
    for flag_name, value in (("--ws-port", flags.ws_port), ("--wss-port", flags.wss_port)):
        if flags.workers > 1 and value == 0:
            found.append(f"--workers needs a fixed {flag_name} (not 0)")
    return found
