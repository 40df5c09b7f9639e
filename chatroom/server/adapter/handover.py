"""The handover's wire: what the old server process and the new one say over their socketpair.

Every message is a fixed header (``CRHO``, the protocol version, the kind, the payload's
length) and a payload. Both ends work in lockstep, each waiting for the other's answer, with
a deadline on every wait (:class:`HandoverFailed` when it passes, or the peer went away):

    new → old   HELLO    {pid}: it has started and read its flags; the old one freezes
    old → new   OFFER    {fds, size}: how many descriptors and how many bytes of state
    old → new   STATE    the state (core/snapshot.py's bytes, the adapter's objects inside)
    new → old   READY    or REFUSED {reason}: the format, the shape, RLIMIT_NOFILE
    old → new   FDS      {count} with up to ``batch`` descriptors (SCM_RIGHTS); new → old ACK
    new → old   TAKEN    every connection is rebuilt, reading paused
    old → new   COMMIT   the old one exits now; or ABORT: it goes on, the new one exits

The decision is the old process's alone: the new one serves only after COMMIT, and the old
one exits only after sending it, so the two never serve at once.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

VERSION = 1
ENV = "CHATROOM_HANDOVER_FD"  # set for the new process: its end of the socketpair
_HEADER = struct.Struct("!4sHBI")  # magic, version, kind, payload length
_MAGIC = b"CRHO"
HELLO, OFFER, STATE, READY, REFUSED, FDS, ACK, TAKEN, COMMIT, ABORT = range(1, 11)
FDS_SIZE = 16  # an FDS message's payload: the count, padded (one recvmsg reads it whole)
MAX_CONTROL = 1 << 16  # a control message's payload, at most (STATE has its own size)


class HandoverFailed(Exception):
    """The handover cannot go on: the message says why, in one line."""


class Channel:
    """One end of the socketpair, blocking, every wait bounded by the deadline given."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        sock.setblocking(True)

    def close(self) -> None:
        self.sock.close()

    # --- sending ---

    def send(self, kind: int, payload: bytes | dict[str, Any] = b"") -> None:
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        try:
            self.sock.sendall(_HEADER.pack(_MAGIC, VERSION, kind, len(data)) + data)
        except OSError as exc:
            raise HandoverFailed(f"the other process went away ({exc.strerror})") from None

    def send_fds(self, fds: list[int]) -> None:
        payload = str(len(fds)).encode().ljust(FDS_SIZE)
        header = _HEADER.pack(_MAGIC, VERSION, FDS, FDS_SIZE)
        try:
            socket.send_fds(self.sock, [header + payload], fds)
        except OSError as exc:
            raise HandoverFailed(f"passing descriptors failed ({exc.strerror})") from None

    # --- receiving ---

    def receive(self, deadline: float, *expected: int) -> tuple[int, bytes]:
        """The next message, one of ``expected`` kinds (ABORT and REFUSED end it)."""
        kind, size = self._header(deadline)
        if size > MAX_CONTROL and kind != STATE:
            raise HandoverFailed(f"a message of {size} bytes: not the handover protocol")
        payload = self._exactly(size, deadline)
        if kind == REFUSED and REFUSED not in expected:
            raise HandoverFailed(f"the new process refused: {json.loads(payload)['reason']}")
        if kind == ABORT:
            raise HandoverFailed("the old process called the handover off")
        if kind not in expected:
            raise HandoverFailed(f"message {kind} where {expected} was expected")
        return kind, payload

    def receive_json(self, deadline: float, kind: int) -> dict[str, Any]:
        return json.loads(self.receive(deadline, kind)[1])

    def receive_fds(self, deadline: float, most: int) -> list[int]:
        """One FDS message and the descriptors it carries."""
        size = _HEADER.size + FDS_SIZE
        self._wait(deadline)
        try:
            data, fds, _, _ = socket.recv_fds(self.sock, size, most)
        except TimeoutError:
            raise HandoverFailed("the other process did not answer in time") from None
        except OSError as exc:
            raise HandoverFailed(f"receiving descriptors failed ({exc.strerror})") from None
        if len(data) < size:
            data += self._exactly(size - len(data), deadline)
        magic, version, kind, _ = _HEADER.unpack(data[: _HEADER.size])
        count = int(data[_HEADER.size :].strip() or b"0")
        if (magic, version, kind) != (_MAGIC, VERSION, FDS) or count != len(fds):
            raise HandoverFailed(f"a batch of {len(fds)} descriptors said {count}")
        return fds

    def _header(self, deadline: float) -> tuple[int, int]:
        magic, version, kind, size = _HEADER.unpack(self._exactly(_HEADER.size, deadline))
        if magic != _MAGIC:
            raise HandoverFailed("not the handover protocol")
        if version != VERSION:
            raise HandoverFailed(f"handover protocol {version}, this version speaks {VERSION}")
        return kind, size

    def _exactly(self, size: int, deadline: float) -> bytes:
        chunks, left = [], size
        while left:
            self._wait(deadline)
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except TimeoutError:
                raise HandoverFailed("the other process did not answer in time") from None
            except OSError as exc:
                raise HandoverFailed(f"the other process went away ({exc.strerror})") from None
            if not chunk:
                raise HandoverFailed("the other process went away (it exited or crashed)")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _wait(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise HandoverFailed("the other process did not answer in time")
        self.sock.settimeout(left)
