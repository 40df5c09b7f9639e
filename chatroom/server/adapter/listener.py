"""Accepting connections, and what happens when the file descriptors run out.

The server accepts connections itself rather than through ``loop.create_server``, so that
both event loops behave the same when the process is out of file descriptors (EMFILE).
Left to themselves, asyncio's accept loop logs a traceback for every failed ``accept()``
(thousands a second: it retries once per connection waiting in the backlog) and libuv
(uvloop) accepts the waiting connections and closes them without a word. Here:

- at start, ``--max-clients`` is lowered to what fits in ``RLIMIT_NOFILE`` with
  ``fd_reserve`` descriptors to spare (:func:`clients_that_fit`; the start-up line says
  so), so the room itself turns the extra newcomers away with "server full";
- the listener holds one spare descriptor (open on /dev/null). If ``accept()`` fails with
  EMFILE all the same — connections being closed still hold theirs, and a burst is
  accepted before the room has seen any of it — it closes the spare, accepts one waiting
  connection with it, tells it "server full", closes it and opens the spare again. Every
  waiting newcomer is answered, and the listening socket never stays readable with nothing
  done, so the loop cannot spin. If even that fails, it stops listening for a moment;
- the condition is logged once per ``log_interval``, with a count
  (:class:`~chatroom.server.adapter.lograte.OncePerInterval`).

Where it listens: every address of both families by default (0.0.0.0 and :: apart, the
IPv6 one IPV6_V6ONLY; IPv4 alone where the machine has no IPv6), else each ``--host``: all
the addresses a name resolves to, ``0.0.0.0`` IPv4 alone, ``::`` both families (one
dual-stack socket, unless an IPv4 address is given beside it). With port 0 the first socket
picks the port and the others take the same. Started by systemd with sockets of its own
(``config.inherited``: socket activation, :mod:`~chatroom.server.adapter.activation`) it
binds nothing and serves on those, TLS on the ones named "tls".

With ``--tls-port`` a second set of sockets listens beside the plaintext one. What either
accepts goes to the :class:`~chatroom.server.adapter.doorway.Doorway`, which reads a
trusted balancer's PROXY header and runs the TLS handshake before the room sees the
connection, and counts what waits there.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import socket
import ssl
from collections.abc import Callable
from dataclasses import replace

from chatroom import protocol as p
from chatroom.server.adapter.doorway import ConnectionFactory, Doorway, HandshakeGate
from chatroom.server.adapter.lograte import OncePerInterval
from chatroom.server.config import ServerConfig
from chatroom.server.core.actions import encode

OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)
DEFAULT_HOSTS = ("0.0.0.0", "::")  # no --host: every address, both families
NO_IPV6 = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)
TLS_NAME = "tls"  # an inherited socket with this name (LISTEN_FDNAMES) serves TLS
WS_NAMES = ("ws", "wss")  # the WebSocket door's, WebSocket and over TLS (adapter/websocket.py)


class BindError(OSError):
    """A listening socket could not be made: ``where`` says which address and port (and
    the flag that asked for it), the errno and strerror why."""

    def __init__(self, where: str, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or str(exc))
        self.where = where


def show(address: tuple) -> str:
    """A socket address as people write it: ``0.0.0.0:6667``, ``[::]:6667``."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


SERVER_FULL_LINE = encode(
    p.Notice(code=p.NoticeCode.SERVER_FULL, text="server full; try again later"),
    p.OutputFormat.TEXT,
)


def open_fds() -> int:
    """How many file descriptors this process has open."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        with contextlib.suppress(OSError):
            return len(os.listdir(directory)) - 1  # listdir's own descriptor
    return 16  # a guess where neither exists


def clients_that_fit(config: ServerConfig) -> tuple[int, int] | None:
    """``(clients, limit)`` if fewer than ``config.max_clients`` clients fit in the open-file
    limit with ``config.fd_reserve`` to spare; None if they all fit."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    fits = soft - open_fds() - config.fd_reserve
    if fits >= config.max_clients:
        return None
    return max(1, fits), soft


def fit_to_fd_limit(config: ServerConfig) -> tuple[ServerConfig, str | None]:
    """``config`` with ``max_clients`` lowered to what fits in the open-file limit, and a
    note saying so for the start-up line (None: it was not lowered)."""
    fit = clients_that_fit(config)
    if fit is None:
        return config, None
    clients, limit = fit
    note = (
        f"--max-clients lowered from {config.max_clients} to {clients} "
        f"to fit the open-file limit of {limit}"
    )
    return replace(config, max_clients=clients), note


class Listener:
    """The listening sockets of one server; each accepted socket becomes a transport with
    a protocol from ``protocol_factory`` (over TLS on ``tls_port``, with ``tls``)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: ServerConfig,
        protocol_factory: ConnectionFactory,
        log: OncePerInterval,
        batch: int,
        tls: ssl.SSLContext | None = None,
        gate: HandshakeGate | None = None,
        refused: Callable[[str], None] = lambda cause: None,
        flags: tuple[str, str] = ("--port", "--tls-port"),  # the ports' flags, for BindError
    ) -> None:
        self.loop = loop
        self.config = config
        self.log = log
        self.batch = batch  # connections accepted per wake-up, at most
        self.tls = tls
        self.doorway = Doorway(loop, config, protocol_factory, log, gate, refused)
        self.sockets: list[socket.socket] = []  # plaintext (config.port)
        self.tls_sockets: list[socket.socket] = []  # TLS (config.tls_port)
        self._spare: int | None = None
        self._closed = False
        self.flags = flags

    def start(self) -> None:
        """Listen on the sockets systemd passed (``config.inherited``), or bind and listen
        on ``config.host``:``config.port`` and on ``config.tls_port`` with TLS (the
        module's docstring); a port of None is not listened on. Raises :class:`BindError`
        (an OSError) naming the address that failed."""
        config = self.config
        try:
            if config.inherited:
                self._adopt_inherited()
            else:
                if config.port is not None:
                    self.sockets = self._bind(config.port, self.flags[0])
                if self.tls is not None and config.tls_port is not None:
                    self.tls_sockets = self._bind(config.tls_port, self.flags[1])
        except OSError:
            self.close()
            raise
        self._spare = _open_spare()
        for sock in self.sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock)
        for sock in self.tls_sockets:
            self.loop.add_reader(sock.fileno(), self._accept, sock, self.tls)

    def addresses(self, tls: bool = False) -> list[str]:
        """Where it listens (plaintext, or TLS), as people write it: ``[::]:6667``."""
        return [show(sock.getsockname()) for sock in (self.tls_sockets if tls else self.sockets)]

    def _adopt_inherited(self) -> None:
        for fd, name in self.config.inherited:
            if name in WS_NAMES:  # the WebSocket door's (an upgrade's handover)
                continue
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            (self.tls_sockets if name == TLS_NAME else self.sockets).append(sock)

    def _bind(self, port: int, flag: str) -> list[socket.socket]:
        """Listening sockets on every address of ``config.host`` (the module's docstring)."""
        config = self.config
        hosts = config.host or DEFAULT_HOSTS
        infos: list = []
        for host in hosts:
            try:
                infos += socket.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
                )
            except socket.gaierror as exc:
                raise BindError(f"{host} ({flag})", exc) from None
        infos = list(dict.fromkeys(infos))
        ipv4 = any(info[0] == socket.AF_INET for info in infos)
        bound: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in infos:
                if port == 0 and bound:  # port 0: the same free port on every address
                    address = (address[0], bound[0].getsockname()[1], *address[2:])
                try:
                    sock = self._listen(family, kind, proto, address, dual=not ipv4)
                except OSError as exc:
                    if not config.host and family == socket.AF_INET6 and exc.errno in NO_IPV6:
                        continue  # the default, on a machine without IPv6: IPv4 alone
                    raise BindError(f"{show(address)} ({flag})", exc) from None
                bound.append(sock)
        except OSError:
            for sock in bound:
                sock.close()
            raise
        return bound

    def _listen(self, family: int, kind: int, proto: int, address: tuple, dual: bool):
        """One listening socket on ``address``; the IPv6 wildcard takes IPv4 too if
        ``dual`` (no IPv4 socket beside it)."""
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.config.worker:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                v6only = not (dual and address[0] == "::")
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(v6only))
            sock.bind(address)
            sock.listen(self.config.listen_backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def hold(self, holding: bool = True) -> None:
        """Stop accepting, the sockets kept listening: newcomers wait in the kernel's
        backlog (an upgrade's handover); ``hold(False)`` accepts again."""
        for sock, tls in [(s, None) for s in self.sockets] + [
            (s, self.tls) for s in self.tls_sockets
        ]:
            with contextlib.suppress(OSError, ValueError):
                self.loop.remove_reader(sock.fileno())
            if not holding and not self._closed:
                self.loop.add_reader(sock.fileno(), self._accept, sock, tls)

    def close(self) -> None:
        """Stop listening. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for sock in self.sockets + self.tls_sockets:
            with contextlib.suppress(OSError, ValueError):
                self.loop.remove_reader(sock.fileno())
            sock.close()
        if self._spare is not None:
            os.close(self._spare)
            self._spare = None

    # --- accepting ---

    def _accept(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """The listening socket is readable: accept what waits, a batch at a time."""
        for _ in range(self.batch):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in OUT_OF_FDS:
                    self.log.log(
                        "out of file descriptors",
                        logging.WARNING,
                        "out of file descriptors (the limit is %d): newcomers are told "
                        "'server full' until some leave",
                        resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                    )
                    told = self._turn_away(sock)
                    if told:
                        continue
                    if told is False:  # nobody was waiting after all
                        return
                else:
                    self.log.log(
                        f"accept failed ({exc.strerror})", logging.WARNING, "accept: %s", exc
                    )
                self._pause(sock, tls)
                return
            self._adopt(conn, tls)

    def _adopt(self, conn: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        conn.setblocking(False)
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.doorway.adopt(conn, tls)

    def _turn_away(self, sock: socket.socket) -> bool | None:
        """Out of descriptors: with the spare one, accept a waiting connection, tell it
        "server full" and close it. True: one was told; False: none was waiting; None:
        there was no spare descriptor to do it with."""
        if self._spare is None:
            self._spare = _open_spare()
            return None
        os.close(self._spare)
        self._spare = None
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return None
        else:
            with conn:
                conn.setblocking(False)
                with contextlib.suppress(OSError):
                    conn.send(SERVER_FULL_LINE)
                    conn.shutdown(socket.SHUT_WR)
            return True
        finally:
            self._spare = _open_spare()

    def _pause(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        """Stop listening on ``sock`` for a moment (nothing can be accepted just now)."""
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(sock.fileno())
        self.loop.call_later(self.config.accept_retry, self._resume, sock, tls)

    def _resume(self, sock: socket.socket, tls: ssl.SSLContext | None = None) -> None:
        if self._closed:
            return
        if self._spare is None:
            self._spare = _open_spare()
        self.loop.add_reader(sock.fileno(), self._accept, sock, tls)


def _open_spare() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
