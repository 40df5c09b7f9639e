"""The line codec: bytes from a client in, decoded lines out. No I/O.

"\\n", "\\r\\n" and a lone "\\r" each end a line (nc sends "\\n", telnet "\\r\\n", some
clients "\\r"). A line ending in "\\r" is complete at once; a "\\n" that follows it in a later
chunk is recognised and skipped rather than read as an empty line, as is the "\\0" of telnet's
"\\r\\0". :attr:`LineDecoder.crlf` says whether the client ends its lines with "\\r" (or
speaks telnet), so it can be answered in "\\r\\n".

Telnet's commands (RFC 854: IAC, 0xFF, then a command) never reach the room: a
:class:`TelnetFilter` takes them out of the bytes before lines are cut — a telnet user's
Ctrl+C (IAC IP), option negotiation (IAC DO/DONT/WILL/WONT x), subnegotiation (IAC SB ...
IAC SE); IAC IAC is a literal 0xFF. Each option offered is refused (the answers wait in
:meth:`LineDecoder.take_replies`), and IAC DO TIMING-MARK, which telnet sends after Ctrl+C and
until whose answer it discards what it receives, is answered WILL TIMING-MARK, as telnetd
does. Byte 0xFF never occurs in UTF-8, so no text is lost.

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

IAC, SB, SE = 0xFF, 0xFA, 0xF0
WILL, WONT, DO, DONT = 0xFB, 0xFC, 0xFD, 0xFE
TIMING_MARK = 0x06
_DATA, _COMMAND, _OPTION, _SUB, _SUB_IAC = range(5)  # the filter's states


class TelnetFilter:
    """Telnet's in-band commands taken out of a byte stream, across chunk boundaries.

    What it holds is bounded: the state (a few ints) and at most ``REPLIES_MAX`` bytes of
    answers not yet taken (an option asked for past that is not answered). A subnegotiation
    longer than ``SUB_MAX`` bytes is no telnet client's (theirs are a few dozen): it ends
    there, and what follows is data again, so a stray IAC SB cannot swallow a client's
    input for good.
    """

    REPLIES_MAX = 96
    SUB_MAX = 1024

    __slots__ = ("seen", "_state", "_verb", "_sub", "_replies")

    def __init__(self) -> None:
        self.seen = False  # an IAC command came: the client speaks telnet
        self._state = _DATA
        self._verb = 0  # WILL/WONT/DO/DONT awaiting its option byte
        self._sub = 0  # bytes of the subnegotiation so far
        self._replies = bytearray()

    @property
    def idle(self) -> bool:
        """Not inside a command: a chunk with no IAC passes unchanged."""
        return self._state == _DATA

    def take_replies(self) -> bytes:
        """The answers to the options asked for so far (b"" when none), handed over once."""
        replies = bytes(self._replies)
        self._replies.clear()
        return replies

    def feed(self, data: bytes) -> bytes:
        """``data`` without the telnet commands in it (IAC IAC is one 0xFF)."""
        out = bytearray()
        state, i, end = self._state, 0, len(data)
        while i < end:
            if state in (_DATA, _SUB):
                j = data.find(b"\xff", i)
                stop = end if j < 0 else j
                if state == _DATA:
                    out += data[i:stop]
                else:
                    self._sub += stop - i
                    if self._sub > self.SUB_MAX:  # no telnet client's: data again
                        state = _DATA
                        continue
                if j < 0:
                    break
                state, i = (_COMMAND if state == _DATA else _SUB_IAC), j + 1
                continue
            byte = data[i]
            i += 1
            if state == _COMMAND:
                state = _DATA
                if byte == IAC:
                    out.append(IAC)
                elif byte < SE:  # no command: a stray 0xFF, kept as it came
                    out += bytes((IAC, byte))
                elif byte == SB:
                    state, self._sub = _SUB, 0
                    self.seen = True
                elif byte >= WILL:
                    state, self._verb = _OPTION, byte
                    self.seen = True
                else:  # NOP, IP, AYT, BRK, GA...: nothing for the room
                    self.seen = True
            elif state == _OPTION:
                self._answer(self._verb, byte)
                state = _DATA
            else:  # _SUB_IAC: IAC SE ends it; IAC IAC is a 0xFF inside it
                state = _DATA if byte == SE else _SUB
        self._state = state
        return bytes(out)

    def _answer(self, verb: int, option: int) -> None:
        """Refuse every option (DO TIMING-MARK is a sync point: answered WILL, as telnetd
        does); a refusal is never answered (RFC 1143), so no loop."""
        if verb == DO:
            reply = WILL if option == TIMING_MARK else WONT
        elif verb == WILL:
            reply = DONT
        else:
            return
        if len(self._replies) < self.REPLIES_MAX:
            self._replies += bytes((IAC, reply, option))


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
        self._telnet = TelnetFilter()
        # The client ends its lines with "\r" (telnet, PuTTY, Windows nc) or speaks telnet:
        # answer it in "\r\n". Once set it stays.
        self.crlf = False

    def take_replies(self) -> bytes:
        """Telnet answers owed to the client (b"" almost always)."""
        return self._telnet.take_replies()

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
        if b"\xff" in data or not self._telnet.idle:
            data = self._telnet.feed(data)
            if self._telnet.seen:
                self.crlf = True
            if not data:
                return []
        if not (self._buffer or self._discarding or self._skip_lf) and b"\r" not in data:
            return self._feed_lf_lines(data)
        buffer = self._buffer
        start = len(buffer)
        buffer += data
        out: list[str | LineTooLong] = []
        pos = 0
        if self._skip_lf and buffer[start : start + 1] in (b"\n", b"\0"):
            # Only the first new byte can be the "\n" of a "\r\n" split across chunks.
            del buffer[start]
        self._skip_lf = False
        while (match := _LINE_END.search(buffer, pos)) is not None:
            end = match.start()
            self._emit(buffer, pos, end, out)
            pos = end + 1
            if buffer[end] == 0x0D:  # "\r": swallow a directly following "\n" (or "\0")
                self.crlf = True
                if pos == len(buffer):
                    self._skip_lf = True
                elif buffer[pos] in (0x0A, 0x00):
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
