"""The line codec: bytes from a client in, decoded lines out. No I/O.

"\\n", "\\r\\n" and a lone "\\r" each end a line (nc sends "\\n", telnet "\\r\\n", some
clients "\\r"). A line ending in "\\r" is complete at once; a "\\n" that follows it in a later
chunk is recognised and skipped rather than read as an empty line.

The buffer never holds more than ``max_line`` bytes of an unfinished line: past that the
line is reported as too long once and its rest is discarded up to the next line end, so
megabytes without a newline cost no more memory than one allowed line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
