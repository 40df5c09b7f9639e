"""TLS over an accepted connection's plain transport, done here with :class:`ssl.MemoryBIO`.

Why not the event loop's own TLS (``connect_accepted_socket(ssl=...)``): asyncio's and
uvloop's TLS layers take a peer's ``close_notify`` as the end of the whole connection. They
start their own shutdown at once, drop whatever the protocol writes afterwards, and warn
"returning true from eof_received() has no effect when using ssl". A TLS client that ends
its sending side (``close_notify``) and reads on would lose its replies, where on the
plaintext port a half-closed client gets everything it is owed. Here a ``close_notify`` is
the same end of input as a FIN: the connection hears ``eof_received``, and what it writes
afterwards is still sent, encrypted, until it closes (then our own ``close_notify``).

:class:`TlsStream` is the protocol of the plain transport and, once the handshake is done,
the transport its inner protocol (the room's connection) sees: the same calls (``write``,
flow control, ``pause_reading``, ``close``, ``abort``, ``get_extra_info``) with the
plaintext in and out. Before the handshake it holds no TLS state at all: the
:class:`ssl.SSLObject` is made when the first bytes arrive, so a socket that connects and
sends nothing costs a socket and this object. The handshake is bounded by ``timeout``;
however it ends, ``done`` hears once (None: it succeeded, or the exception).

Bounded input: while the inner protocol has paused reading, the plain transport is paused
too, and what it had read waits in the incoming BIO (at most one read of the loop's).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

# What a TLS read may raise besides SSLWantReadError: the peer broke the protocol.
_FATAL = (ssl.SSLError, ssl.CertificateError)


class TlsStream(asyncio.Protocol):
    """One server-side TLS connection over ``raw`` (the loop's plain transport)."""

    __slots__ = (
        "_context",
        "_loop",
        "_make_inner",
        "_done",
        "_first",
        "_raw",
        "_timer",
        "_incoming",
        "_outgoing",
        "_sslobj",
        "_inner",
        "_paused",
        "_raw_eof",
        "_eof",
        "_closing",
        "_read_scheduled",
    )

    def __init__(
        self,
        context: ssl.SSLContext,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        make_inner: Callable[[], asyncio.BufferedProtocol],
        done: Callable[[BaseException | None], None],
        first: bytes = b"",
    ) -> None:
        self._context = context
        self._loop = loop
        self._make_inner: Callable[[], asyncio.BufferedProtocol] | None = make_inner
        self._done: Callable[[BaseException | None], None] | None = done
        self._first = first  # read before us (past a PROXY header): the handshake's start
        self._raw: Any = None  # the loop's transport (uvloop's is not an asyncio.Transport)
        self._timer: asyncio.TimerHandle | None = loop.call_later(timeout, self._timed_out)
        self._incoming: ssl.MemoryBIO | None = None
        self._outgoing: ssl.MemoryBIO | None = None
        self._sslobj: ssl.SSLObject | None = None
        self._inner: asyncio.BufferedProtocol | None = None
        self._paused = False  # the inner protocol paused reading
        self._raw_eof = False  # the peer's FIN came (with or without close_notify)
        self._eof = False  # the inner protocol has been told the input ended
        self._closing = False
        self._read_scheduled = False

    # --- the plain transport's protocol ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = transport
        if self._first:
            first, self._first = self._first, b""
            self.data_received(first)

    def data_received(self, data: bytes) -> None:
        if self._closing or self._eof:
            # Nothing may follow a close_notify: what does is dropped, not held (a peer
            # sending on after it would otherwise fill the incoming BIO while we drain).
            return
        if self._sslobj is None:
            self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            self._sslobj = self._context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._incoming.write(data)  # type: ignore[union-attr]
        if self._inner is None:
            self._handshake()
        else:
            self._read()

    def eof_received(self) -> bool:
        if self._inner is None:  # closed in the middle of its handshake
            self._fail(ConnectionResetError("closed by the peer during the handshake"))
            return False
        # Without a close_notify (a truncated stream) it is an end of input all the same:
        # what came before it is handled, and the replies go out, as on the plaintext port.
        self._raw_eof = True
        self._read()
        return True  # keep our sending side open: what we owe is still to be written

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self._closing = True
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)
        else:
            self._fail(exc or ConnectionResetError("connection lost during the handshake"))
        self._sslobj = self._incoming = self._outgoing = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    # --- the handshake ----------------------------------------------------------------------

    def _handshake(self) -> None:
        try:
            self._sslobj.do_handshake()  # type: ignore[union-attr]
        except ssl.SSLWantReadError:
            self._flush()
            return
        except _FATAL as exc:
            self._flush()  # the alert that says why, if there is one
            self._fail(exc)
            self._raw.close()
            return
        self._flush()
        self._cancel_timer()
        self._report(None)
        make_inner, self._make_inner = self._make_inner, None
        assert make_inner is not None
        self._inner = make_inner()
        self._inner.connection_made(self)  # type: ignore[arg-type]
        self._read()  # the first lines may have come with the handshake's end

    def _timed_out(self) -> None:
        self._timer = None
        self._fail(TimeoutError("handshake not finished in time"))
        if self._raw is not None:
            self._raw.abort()

    def _fail(self, exc: BaseException) -> None:
        """The handshake did not complete (the connection is being closed)."""
        self._closing = True
        self._cancel_timer()
        self._make_inner = None
        self._report(exc)

    def _report(self, exc: BaseException | None) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(exc)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- plaintext in ---------------------------------------------------------------------------

    def _read(self) -> None:
        """Hand the inner protocol what can be decrypted, while it reads."""
        self._read_scheduled = False
        sslobj = self._sslobj
        while not (self._paused or self._eof or self._closing) and self._inner is not None:
            buffer = self._inner.get_buffer(-1)
            try:
                count = sslobj.read(len(buffer), buffer)  # type: ignore[union-attr]
            except ssl.SSLWantReadError:
                if not self._raw_eof:
                    break
                count = 0  # the stream ended without a close_notify: an end all the same
            except ssl.SSLZeroReturnError:
                count = 0
            except _FATAL:  # a fatal alert, a bad record, a renegotiation refused...
                self._flush()
                self.abort()
                return
            if count == 0:  # the peer's close_notify (or FIN): its input has ended
                self._eof = True
                self._flush()
                if not self._inner.eof_received():
                    self.close()
                return
            self._inner.buffer_updated(count)
        self._flush()  # a read may have something to answer (a key update, an alert)

    # --- the transport the inner protocol sees ----------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._sslobj is None:
            return
        try:
            self._sslobj.write(data)
        except _FATAL:
            self.abort()
            return
        self._flush()

    def _flush(self) -> None:
        outgoing = self._outgoing
        if outgoing is not None and outgoing.pending and not self._raw.is_closing():
            self._raw.write(outgoing.read())

    def get_write_buffer_size(self) -> int:
        return int(self._raw.get_write_buffer_size())

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        if not self._paused:
            self._paused = True
            if not self._raw_eof:
                self._raw.pause_reading()

    def resume_reading(self) -> None:
        if self._paused:
            self._paused = False
            if not (self._raw_eof or self._closing):
                self._raw.resume_reading()
            if not self._read_scheduled:  # what already waits in the incoming BIO
                self._read_scheduled = True
                self._loop.call_soon(self._read)

    def is_reading(self) -> bool:
        return not self._paused

    def is_closing(self) -> bool:
        return self._closing or bool(self._raw.is_closing())

    def close(self) -> None:
        """Our ``close_notify`` after what is queued, then the plain transport's close
        (which writes what it holds first). Idempotent."""
        if self._closing:
            return
        self._closing = True
        if self._sslobj is not None:
            try:
                self._sslobj.unwrap()
            except (ssl.SSLWantReadError, *_FATAL):
                pass  # sent; not waiting for the peer's
            self._flush()
        self._raw.close()

    def abort(self) -> None:
        self._closing = True
        self._raw.abort()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        sslobj = self._sslobj
        if name == "ssl_object":
            return sslobj
        if name == "peercert":
            return sslobj.getpeercert() if sslobj is not None else default
        if name == "cipher":
            return sslobj.cipher() if sslobj is not None else default
        return self._raw.get_extra_info(name, default)
