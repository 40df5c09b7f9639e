"""The client's side of the wire: open a connection, switch it to JSON, read events.

No Textual here. :class:`ServerConnection` turns a TCP stream (or TLS over it) into
protocol events and plain text lines back into bytes; :class:`ReconnectPolicy` decides
whether and when to try again after a connection ends. The app runs these inside a worker.

TLS (``tls://HOST:PORT``) verifies the server's certificate and host name against the
system's store, or only against ``--cafile``'s CAs (:func:`tls_context`). A certificate
that does not verify is refused, never accepted "just this once", and not retried.
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import ClassVar

from chatroom.client.outgoing import command_word
from chatroom.protocol import (
    DEFAULT_PORT,
    Event,
    FormatChanged,
    Notice,
    NoticeCode,
    OutputFormat,
    ProtocolError,
    UnknownEvent,
    decode_json,
    host_port,
)
from chatroom.protocol import commands as c

CONNECT_TIMEOUT = 10.0
# A server line is bounded by its own max-line setting plus JSON overhead; this only stops
# a broken peer from making us buffer without end.
READ_LIMIT = 1 << 20


class AddressError(ValueError):
    """A HOST:PORT argument that cannot be used."""


TLS_SCHEME = "tls://"


def parse_target(text: str) -> tuple[str, int, bool]:
    """``[tls://]HOST:PORT`` -> (host, port, tls). A TLS address needs its port: a server
    has no default TLS port."""
    if text.lower().startswith(TLS_SCHEME):
        return (*parse_address(text[len(TLS_SCHEME) :], default_port=None), True)
    if "://" in text:
        raise AddressError(f"bad address {text!r}: the only scheme is tls://")
    return (*parse_address(text), False)


def shown_address(host: str, port: int, tls: bool) -> str:
    """The server's address as the client shows it: ``tls://`` in front for TLS."""
    return ("tls://" if tls else "") + host_port(host, port)


def tls_context(cafile: str | None = None) -> ssl.SSLContext:
    """The client's TLS context: certificate and host name verified against the system's
    store, or against ``cafile``'s CAs only (a private CA); TLS 1.2 at least. Raises
    OSError or ssl.SSLError if ``cafile`` cannot be read."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def parse_address(text: str, default_port: int | None = DEFAULT_PORT) -> tuple[str, int]:
    """``HOST:PORT``, ``HOST`` (``default_port``) or ``[v6addr]:PORT`` -> (host, port)."""
    host, port_text, has_port = text, "", False
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise AddressError(f"bad address {text!r}: expected [IPv6]:PORT")
        port_text, has_port = rest[1:], bool(rest)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        has_port = True
    if not host:
        raise AddressError(f"bad address {text!r}: the host is missing")
    if not port_text:
        if default_port is None:
            raise AddressError(f"bad address {text!r}: give the port (tls://HOST:PORT)")
        if has_port:  # "HOST:" is more likely a typo than a wish for the default port
            raise AddressError(
                f"bad address {text!r}: the port is missing (write {host} alone for {DEFAULT_PORT})"
            )
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AddressError(f"bad address {text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def describe_failure(exc: BaseException) -> str:
    """A short reason for people: "Connection refused", not asyncio's wording."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = (exc.verify_message or exc.reason or "not trusted").rstrip(".")
        if exc.verify_code in _UNKNOWN_ISSUER:
            reason += " (a private CA? trust it with --cafile FILE)"
        return f"certificate refused: {reason}"
    if isinstance(exc, ssl.SSLError):
        if exc.reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            return f"TLS failed: the server does not speak TLS on that port ({exc.reason})"
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror  # e.g. a host name that does not resolve
    if exc.args and isinstance(exc.args[0], str):
        return exc.args[0]  # e.g. the server's "server full" notice
    return str(exc) or type(exc).__name__


# X509_V_ERR_*: self-signed, unknown issuer, no local issuer: a CA the system does not know.
_UNKNOWN_ISSUER = frozenset({18, 19, 20, 21})


def failure_cause(exc: BaseException) -> CloseCause:
    """Why connecting failed: TLS (a certificate refused, no TLS on that port) or not."""
    return CloseCause.TLS_FAILED if isinstance(exc, ssl.SSLError) else CloseCause.UNREACHABLE


class CloseCause(StrEnum):
    """Why a connection ended, as far as the client can tell; drives the reconnect policy."""

    LOST = "connection lost"  # EOF or socket error with no explanation from the server
    UNREACHABLE = "cannot connect"
    TLS_FAILED = "TLS failed"  # a certificate refused, or no TLS: retrying would not help
    IDLE_TIMEOUT = "idle timeout"
    SHUTDOWN = "server shut down"
    SERVER_FULL = "server full"
    QUIT = "you left"


# The notices a server sends right before it closes a connection, and what they mean here.
_CLOSING_NOTICES = {
    NoticeCode.TIMEOUT: CloseCause.IDLE_TIMEOUT,
    NoticeCode.SHUTDOWN: CloseCause.SHUTDOWN,
    NoticeCode.SERVER_FULL: CloseCause.SERVER_FULL,
}


class ServerConnection:
    """One TCP connection to a chatroom server, in JSON mode once :meth:`open` returns."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.cause: CloseCause = CloseCause.LOST
        self.quit_sent = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float = CONNECT_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ) -> ServerConnection:
        """Connect (over TLS with ``tls``, verifying the certificate for ``host``) and switch
        to JSON; raises OSError (ssl.SSLError for TLS) or TimeoutError if that fails."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host, port, limit=READ_LIMIT, ssl=tls, server_hostname=host if tls else None
            ),
            timeout,
        )
        connection = cls(reader, writer)
        try:
            connection.send(c.format_line(c.SetFormat(OutputFormat.JSON)))
            await asyncio.wait_for(connection._skip_to_json(), timeout)
        except BaseException:
            connection.abort()
            raise
        return connection

    async def _skip_to_json(self) -> None:
        # The greeting, history and join line arrive in text mode before the server has
        # read our /format line: they are for nc users, and repeated as JSON afterwards.
        while True:
            line = await self._read_line()
            if line is None:
                raise ConnectionResetError("the server closed the connection while greeting")
            try:
                event = decode_json(line)
            except ProtocolError:
                continue
            if isinstance(event, FormatChanged) and event.format is OutputFormat.JSON:
                return
            if isinstance(event, Notice) and event.code in _CLOSING_NOTICES:
                raise ConnectionRefusedError(event.text)

    async def _read_line(self) -> str | None:
        try:
            raw = await self._reader.readline()
        except ValueError:  # over READ_LIMIT: asyncio already dropped the buffer
            return ""
        except OSError:
            return None
        if not raw.endswith(b"\n"):
            return None  # EOF, possibly after a partial line that can never complete
        return raw.decode("utf-8", errors="replace").rstrip("\r\n")

    async def events(self) -> AsyncIterator[Event | UnknownEvent]:
        """Every event the server sends until the connection ends; then :attr:`cause`."""
        while (line := await self._read_line()) is not None:
            try:
                event = decode_json(line)
            except ProtocolError:
                continue  # a line we cannot read is skipped, as unknown types are
            if isinstance(event, Notice) and event.code in _CLOSING_NOTICES:
                self.cause = _CLOSING_NOTICES[event.code]
            yield event
        if self.quit_sent:
            self.cause = CloseCause.QUIT

    def send(self, line: str) -> None:
        """Queue one text line for the server; never blocks (chat lines are small)."""
        if self._writer.is_closing():
            return
        if command_word(line) == "quit":
            self.quit_sent = True
        self._writer.write(line.encode("utf-8") + b"\n")

    @property
    def is_open(self) -> bool:
        return not self._writer.is_closing()

    async def close(self, *, timeout: float = 1.0) -> None:
        """Flush what is queued (within ``timeout``) and close."""
        if self._writer.is_closing():
            return
        try:
            await asyncio.wait_for(self._writer.drain(), timeout)
            self._writer.close()
            await asyncio.wait_for(self._writer.wait_closed(), timeout)
        except (OSError, TimeoutError):
            self.abort()

    def abort(self) -> None:
        transport = self._writer.transport
        if not transport.is_closing():
            transport.abort()


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait between automatic reconnects: a setting (ClientSettings.reconnect).

    The first wait is ``initial`` seconds, each next one ``factor`` times longer, at most
    ``maximum``, plus up to ``jitter`` (20%) so a restarted server is not hit by everyone
    at once.
    """

    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds before the automatic attempt number ``attempt`` (0 for the first)."""
        base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1 + random.uniform(0, self.jitter))


class ReconnectPolicy:
    """Exponential backoff for automatic reconnects, reset by every successful connection.

    A connection the user ended (``/quit``) or that the server closed for idleness is not
    retried: reconnecting on its own would undo what the user or the room decided. Nor is
    a TLS failure (a certificate refused): trying again would only be refused again.

    ``ReconnectPolicy(backoff)``, or the backoff's fields by name
    (``ReconnectPolicy(initial=1, maximum=5)``).
    """

    MANUAL: ClassVar[frozenset[CloseCause]] = frozenset(
        {CloseCause.IDLE_TIMEOUT, CloseCause.QUIT, CloseCause.TLS_FAILED}
    )

    def __init__(self, backoff: Backoff | None = None, **tuning: float) -> None:
        self.backoff = replace(backoff or Backoff(), **tuning)
        self._attempt = 0

    def connected(self) -> None:
        self._attempt = 0

    def next_delay(self, cause: CloseCause) -> float | None:
        """Seconds to wait before the next attempt, or None to wait for the user."""
        if cause in self.MANUAL:
            return None
        delay = self.backoff.delay(self._attempt)
        self._attempt += 1
        return delay
