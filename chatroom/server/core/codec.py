"""The line codec: bytes from a client in, decoded lines out. No I/O.

"\\n", "\\r\\n" and a lone "\\r" each end a line (nc sends "\\n", telnet "\\r\\n", some
clients "\\r"). A line ending in "\\r" is complete at once; a "\\n" that follows it in a later
chunk is recognised and skipped rather than read as an empty line.

The buffer never holds more than ``max_line`` bytes of an unfinished line: past that the
line is reported as too long once and its rest is discarded up to the next line end, so
megabytes without a newline cost no more memory than one allowed line.

Two ways to use it: :meth:`LineDecoder.feed` decodes a chunk into all the lines it
completes; :meth:`LineDecoder.push` keeps received bytes as they are and :meth:`LineDecoder.pop`
decodes them a line at a time, so input that must wait (flood control, a full send queue)
is held as raw bytes — ``pending`` of them, which the caller bounds — not as thousands of
line objects.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from chatroom.protocol.commands import Command, TooLong, parse

_LINE_END = re.compile(rb"[\r\n]")


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than the limit arrived; it was dropped."""

    limit: int


class LineDecoder:
    def __init__(self, max_line: int) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.max_line = max_line
        self._buffer = bytearray()
        self._discarding = False  # inside a too-long line already reported
        self._skip_lf = False  # the previous chunk ended in "\r"
        self._raw = bytearray()  # pushed, not decoded yet
        self._ready: deque[str | LineTooLong] = deque()  # decoded, not popped yet
        self._closed = False  # push()/pop(): the peer will send nothing more

    # --- held input: push() and pop() -----------------------------------------------------

    # Bytes decoded at a time by pop(): small, so what waits stays raw (bounded by the caller)
    # rather than becoming many line objects, and large enough for feed()'s fast path.
    POP_SLICE = 1024

    @property
    def pending(self) -> int:
        """Bytes received and not yet popped as lines (a rough bound of what is held)."""
        return (
            len(self._raw)
            + len(self._buffer)
            + sum(len(line) if isinstance(line, str) else 1 for line in self._ready)
        )

    def push(self, data: bytes) -> None:
        """Hold received bytes; :meth:`pop` decodes them."""
        self._raw += data

    def close(self) -> None:
        """The peer closed: once the held bytes are popped, an unterminated last line is one."""
        self._closed = True

    def pop(self) -> str | LineTooLong | None:
        """The next line (or too-long report) from the held bytes; None until one is complete."""
        raw, ready = self._raw, self._ready
        while not ready:
            if not raw:
                if not self._closed:
                    return None
                self._closed = False
                ready.extend(self.feed_eof())
                if not ready:
                    return None
                break
            cut = raw.rfind(b"\n", 0, self.POP_SLICE)
            if cut < 0:
                match = _LINE_END.search(raw)
                cut = match.start() if match is not None else len(raw) - 1
            chunk = bytes(raw[: cut + 1])
            del raw[: cut + 1]
            ready.extend(self.feed(chunk))
        return ready.popleft()

    # --- decoding a chunk at once -----------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes held for a line not yet ended."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[str | LineTooLong]:
        """Add received bytes; return the lines (and too-long reports) they complete."""
        if not data:  # nothing new: keep waiting for a "\n" that may follow a "\r"
            return []
        if not (self._buffer or self._discarding or self._skip_lf) and b"\r" not in data:
            return self._feed_lf_lines(data)
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        out: list[str | LineTooLong] = []
        pos = 0
        if self._skip_lf and buffer[start : start + 1] == b"\n":
            # Only the first new byte can be the "\n" of a "\r\n" split across chunks.
            del buffer[start]
        self._skip_lf = False
        while (match := _LINE_END.search(buffer, pos)) is not None:
            end = match.start()
            self._emit(buffer, pos, end, out)
            pos = end + 1
            if buffer[end] == 0x0D:  # "\r": swallow a directly following "\n"
                if pos == len(buffer):
                    self._skip_lf = True
                elif buffer[pos] == 0x0A:
                    pos += 1
        del buffer[:pos]
        if len(buffer) > self.max_line:
            if not self._discarding:
                out.append(LineTooLong(self.max_line))
                self._discarding = True
            buffer.clear()
        return out

    def _feed_lf_lines(self, data: bytes) -> list[str | LineTooLong]:
        """The common case, whole "\n" lines and nothing pending: one split, no scanning."""
        *lines, rest = data.split(b"\n")
        limit = self.max_line
        out: list[str | LineTooLong] = [
            line.decode("utf-8", "replace") if len(line) <= limit else LineTooLong(limit)
            for line in lines
        ]
        if len(rest) > limit:
            out.append(LineTooLong(limit))
            self._discarding = True
        elif rest:
            self._buffer += rest
        return out

    def feed_eof(self) -> list[str | LineTooLong]:
        """The peer closed: an unterminated last line still counts as a line."""
        out: list[str | LineTooLong] = []
        if self._buffer:
            self._emit(self._buffer, 0, len(self._buffer), out)
            self._buffer.clear()
        self._discarding = False
        return out

    def _emit(self, buffer: bytearray, start: int, end: int, out: list) -> None:
        if self._discarding:  # the tail of a line already reported as too long
            self._discarding = False
        elif end - start > self.max_line:
            out.append(LineTooLong(self.max_line))
        else:
            out.append(buffer[start:end].decode("utf-8", "replace"))


def command_of(line: str | LineTooLong) -> Command:
    """The command a decoded line asks for: one over ``max_line`` is :class:`TooLong`."""
    if isinstance(line, LineTooLong):
        return TooLong(line.limit)
    return parse(line)
