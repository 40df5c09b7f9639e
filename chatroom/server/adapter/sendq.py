"""A connection's output on its way to the kernel, known to the byte (:class:`SendQueue`).

The connection hands its transport one write at a time, and holds the rest here while the
transport is backed up (paused: over half of ``--max-sendq``): many small writes to a full
transport cost far more, on uvloop especially, than one large one. What the transport has
not sent yet is always the last ``get_write_buffer_size()`` bytes of what it was handed, so
the queue keeps just enough of the last writes to cut them from: an upgrade carries the
output still unsent to the new process (:meth:`SendQueue.unsent`) without reading asyncio's
private buffer.
"""

from __future__ import annotations

import asyncio
from collections import deque


class SendQueue:
    __slots__ = ("transport", "max_sendq", "paused", "_held", "_held_bytes", "_sent", "_sent_bytes")

    def __init__(self, max_sendq: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.max_sendq = max_sendq
        self.paused = False  # the transport's buffer is over its high-water mark
        self._held: list[bytes] = []  # output held back while paused
        self._held_bytes = 0
        self._sent: deque[bytes] = deque()  # the last writes, as far as the transport holds them
        self._sent_bytes = 0

    def attach(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def behind(self) -> int:
        """Bytes not yet taken by the kernel: in the transport and held here."""
        transport = self.transport
        return (
            transport.get_write_buffer_size() if transport is not None else 0
        ) + self._held_bytes

    def write(self, data: bytes) -> bool:
        """Write, unless more than ``max_sendq`` bytes are already behind: then False.

        It is the backlog *before* this write that counts, so one reply larger than the
        limit (``who`` in a big room) goes to a reader that keeps up, while a reader that
        stopped is still dropped as soon as it is that far behind."""
        if self.behind() > self.max_sendq:
            return False
        if self.paused:
            self._held.append(data)
            self._held_bytes += len(data)
        else:
            self._send(data)
        return True

    def drained(self, send: bool = True) -> None:
        """The transport is under its low-water mark: what was held goes in one write."""
        self.paused = False
        if self._held and send:
            self.flush_held()

    def flush_held(self) -> None:
        if self._held:
            data = b"".join(self._held)
            self.drop()
            self._send(data)

    def drop(self) -> None:
        self._held.clear()
        self._held_bytes = 0

    def unsent(self) -> bytes:
        """Everything not taken by the kernel yet, in order: the transport's part, then ours."""
        buffered = self.transport.get_write_buffer_size() if self.transport is not None else 0
        tail = b"".join(self._sent)[-buffered:] if buffered > 0 and self._sent else b""
        return tail + b"".join(self._held)

    def _send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        buffered = self.transport.get_write_buffer_size()
        sent = self._sent
        if not buffered:  # the usual case: the kernel took it all
            if sent:
                sent.clear()
                self._sent_bytes = 0
            return
        sent.append(data)
        self._sent_bytes += len(data)
        while self._sent_bytes - len(sent[0]) >= buffered:
            self._sent_bytes -= len(sent.popleft())
