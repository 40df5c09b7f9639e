"""The line codec on its own: bytes in, lines out, no sockets.

One table of (wire bytes, lines) serves the whole-input test and the chunk-boundary test,
which feeds every case split at every byte position and byte by byte.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.server.core.codec import LineDecoder, LineTooLong

MAX = 16
TOO_LONG = LineTooLong(MAX)


def decode(chunks: list[bytes], max_line: int = MAX, eof: bool = True) -> list:
    decoder = LineDecoder(max_line)
    out: list = []
    for chunk in chunks:
        out += decoder.feed(chunk)
        assert decoder.buffered <= max_line
    if eof:
        out += decoder.feed_eof()
    return out


# (bytes on the wire, what the decoder yields for them followed by EOF), max_line = MAX
CASES = [
    (b"hello\n", ["hello"]),
    (b"hello\r\n", ["hello"]),
    (b"hello\r", ["hello"]),
    (b"a\nb\r\nc\rd\n", ["a", "b", "c", "d"]),
    (b"\n", [""]),
    (b"\r\n", [""]),
    (b"\n\n", ["", ""]),
    (b"\r\r", ["", ""]),
    (b"\r\n\r\n", ["", ""]),
    (b"\n\r", ["", ""]),  # "\n\r" is two line ends, not one
    (b"a\r\rb\n", ["a", "", "b"]),
    (b"tail", ["tail"]),  # unterminated: completed by EOF
    (b"one\ntail", ["one", "tail"]),
    (b"caf\xc3\xa9\n", ["café"]),
    (b"\xf0\x9f\x98\x80 ok\n", ["\U0001f600 ok"]),
    (b"a\xffb\n", ["a\ufffdb"]),
    (b"\xc3\n", ["\ufffd"]),  # a truncated multibyte sequence
    (b"x" * MAX + b"\n", ["x" * MAX]),
    (b"x" * MAX + b"\r\n", ["x" * MAX]),
    (b"x" * (MAX + 1) + b"\n", [TOO_LONG]),
    (b"x" * (MAX + 1) + b"\r\nok\n", [TOO_LONG, "ok"]),
    (b"x" * (MAX * 5) + b"\nok\n", [TOO_LONG, "ok"]),
    (b"x" * (MAX * 5) + b"\rok\r", [TOO_LONG, "ok"]),
    (b"x" * (MAX + 1), [TOO_LONG]),  # too long and unterminated: reported once
    (
        b"a\n" + b"y" * (MAX + 1) + b"\nb\n" + b"z" * (MAX + 3) + b"\nc",
        ["a", TOO_LONG, "b", TOO_LONG, "c"],
    ),
    ("é".encode() * (MAX // 2) + b"\n", ["é" * (MAX // 2)]),  # the limit counts bytes
    ("é".encode() * (MAX // 2) + b"x\n", [TOO_LONG]),
    # telnet: its commands never reach the room (IAC = 0xFF)
    (b"hi\xff\xf4\xff\xfd\x06\r\n", ["hi"]),  # Ctrl+C: IAC IP, IAC DO TIMING-MARK
    (b"a\xff\xffb\n", ["a\ufffdb"]),  # IAC IAC: a literal 0xFF (not UTF-8: replaced)
    (b"\xff\xfb\x18\xff\xfd\x03ok\r\n", ["ok"]),  # WILL TTYPE, DO SGA
    (b"\xff\xfa\x1f\x00\x50\x00\x0a\xff\xf0ok\n", ["ok"]),  # NAWS 80x10: a "\n" inside
    (b"\xff\xfa\x18\x00xt\xff\xff\r\n\xff\xf0ok\r\n", ["ok"]),  # IAC IAC and CRLF in SB
    (b"\xff\xf6x\xff\xf1\n", ["x"]),  # AYT, NOP
    (b"ok\r\0next\r\0", ["ok", "next"]),  # telnet's CR NUL is one line end
    (b"a\xff\n", ["a\ufffd"]),  # 0xFF before a byte that is no command: kept
    (b"a\r\xff\xf1\nb\n", ["a", "b"]),  # the "\n" of a "\r\n" across a command
]


@pytest.mark.parametrize(("data", "lines"), CASES)
def test_whole(data: bytes, lines: list) -> None:
    assert decode([data]) == lines


@pytest.mark.parametrize(("data", "lines"), CASES)
def test_split_at_every_byte_position(data: bytes, lines: list) -> None:
    for cut in range(len(data) + 1):
        assert decode([data[:cut], data[cut:]]) == lines, f"split at {cut}"


@pytest.mark.parametrize(("data", "lines"), CASES)
def test_byte_by_byte(data: bytes, lines: list) -> None:
    assert decode([data[i : i + 1] for i in range(len(data))]) == lines


def test_lone_cr_completes_the_line_at_once() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"hello\r") == ["hello"]  # no waiting for a "\n" that may follow
    assert decoder.buffered == 0


def test_cr_at_chunk_end_then_lf_in_next_chunk_is_one_line_end() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"hello\r") == ["hello"]
    assert decoder.feed(b"\n") == []  # not an empty line
    assert decoder.feed(b"\nworld\n") == ["", "world"]  # a second "\n" is a line end again


def test_cr_then_lf_after_an_empty_feed() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"hello\r") == ["hello"]
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\nworld\n") == ["world"]


def test_lf_long_after_cr_is_still_swallowed_only_once() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"a\r") == ["a"]
    assert decoder.feed(b"\nb\r") == ["b"]
    assert decoder.feed(b"c\n") == ["c"]  # the "\r" was followed by "c": no "\n" to skip


def test_exactly_max_line_bytes_allowed_in_pieces() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"x" * MAX) == []
    assert decoder.buffered == MAX
    assert decoder.feed(b"\n") == ["x" * MAX]


def test_one_byte_over_is_refused_once_and_the_rest_discarded() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"x" * MAX) == []
    assert decoder.feed(b"y") == [TOO_LONG]
    assert decoder.buffered == 0
    assert decoder.feed(b"more of the same long line" * 3) == []
    assert decoder.feed(b"still\r\n") == []  # the end of the refused line
    assert decoder.feed(b"fine\n") == ["fine"]


def test_megabytes_without_newline_cost_bounded_memory_and_report_once() -> None:
    decoder = LineDecoder(2048)
    reports = []
    chunk = b"A" * 65536
    for _ in range(32):  # 2 MiB
        reports += decoder.feed(chunk)
        assert decoder.buffered <= 2048
    assert reports == [LineTooLong(2048)]
    assert decoder.feed(b"B" * 100 + b"\nnext\n") == ["next"]
    assert decoder.feed_eof() == []


def test_multibyte_character_split_across_chunks() -> None:
    data = "naïve ☃ \U0001f600\n".encode()
    for cut in range(len(data) + 1):
        decoder = LineDecoder(MAX * 4)
        assert decoder.feed(data[:cut]) + decoder.feed(data[cut:]) == ["naïve ☃ \U0001f600"]


def test_invalid_utf8_is_replaced() -> None:
    # (0xFF then a byte that is no telnet command is kept as it came)
    assert decode([b"\xfe\xff bad \xc0\xaf\n"]) == ["\ufffd\ufffd bad \ufffd\ufffd"]


def test_feed_eof_yields_the_unterminated_last_line() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"first\nsecond") == ["first"]
    assert decoder.feed_eof() == ["second"]
    assert decoder.buffered == 0


def test_feed_eof_with_nothing_pending() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed_eof() == []
    assert decoder.feed(b"a\r") == ["a"]
    assert decoder.feed_eof() == []


def test_telnet_options_are_refused_and_timing_mark_answered() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.take_replies() == b""
    # WILL TTYPE, DO SGA, DONT ECHO (already off: no answer), DO TIMING-MARK (Ctrl+C's)
    assert decoder.feed(b"\xff\xfb\x18\xff\xfd\x03\xff\xfe\x01\xff\xfd") == []
    assert decoder.feed(b"\x06") == []  # the option byte in the next chunk
    assert decoder.take_replies() == b"\xff\xfe\x18\xff\xfc\x03\xff\xfb\x06"
    assert decoder.take_replies() == b""  # handed over once


def test_unanswered_replies_are_bounded() -> None:
    decoder = LineDecoder(MAX)
    decoder.feed(b"\xff\xfd\x01" * 10_000)
    assert len(decoder.take_replies()) <= 96 + 3


def test_a_subnegotiation_never_ended_does_not_swallow_input_for_good() -> None:
    decoder = LineDecoder(MAX)
    assert decoder.feed(b"\xff\xfa" + b"z" * 600) == []
    assert decoder.feed(b"y" * 600 + b"\nhello\n") == [TOO_LONG, "hello"]


def test_crlf_is_learned_from_the_line_endings_or_telnet() -> None:
    for data, crlf in [
        (b"a\nb\n", False),
        (b"a\r\n", True),
        (b"a\r", True),
        (b"a\xff\xf1\n", True),  # speaks telnet (NVT lines are CRLF)
        (b"\xfe\xff x\n", False),  # 0xFF that is no command: not telnet
    ]:
        for cut in range(len(data) + 1):
            decoder = LineDecoder(MAX)
            decoder.feed(data[:cut])
            decoder.feed(data[cut:])
            assert decoder.crlf is crlf, (data, cut)


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LineDecoder(0)


# --- properties ---------------------------------------------------------------------------


# Telnet's commands, written the obvious way (RFC 854): IAC IAC, an option, a subnegotiation
# up to IAC SE (or the end), a two-byte command, 0xFF before a byte that is no command (kept),
# a lone IAC at the end.
_TELNET = re.compile(
    rb"\xff(?:\xff|[\xfb-\xfe](?:.|\Z)|\xfa(?:[^\xff]|\xff[^\xf0])*(?:\xff\xf0|\xff?\Z)"
    rb"|[\xf0-\xf9]|([\x00-\xef])|\Z)",
    re.DOTALL,
)


def without_telnet(data: bytes) -> bytes:
    def keep(match: re.Match) -> bytes:
        if match.group() == b"\xff\xff":
            return b"\xff"
        return b"\xff" + match.group(1) if match.group(1) is not None else b""

    return _TELNET.sub(keep, data)


def reference(data: bytes, max_line: int) -> list:
    """What the decoder must yield for ``data`` then EOF, written the obvious way."""
    *lines, tail = re.split(rb"\r\n|\r\0|\r|\n", without_telnet(data))
    if tail:
        lines.append(tail)
    return [
        LineTooLong(max_line) if len(line) > max_line else line.decode("utf-8", "replace")
        for line in lines
    ]


# Pieces that make line ends, split sequences and long lines likely, plus arbitrary bytes.
pieces = st.one_of(
    st.sampled_from(
        [b"\r", b"\n", b"\r\n", b"a", b"xyz", b"\xc3", b"\xa9", b"\xff", b"", b"\x1b["]
        + [b"\0", b"\xfa", b"\xf0", b"\xf4", b"\xfd\x06", b"\xfb", b"\xff\xfa", b"\xff\xf0"]
    ),
    st.binary(max_size=20),
)
chunked = st.lists(
    st.one_of(
        st.sampled_from([b"", b"\r", b"\n", b"a\r", b"\nb"]),
        st.lists(pieces, max_size=6).map(b"".join),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(chunks=chunked, max_line=st.integers(1, 12))
def test_any_chunking_equals_feeding_whole(chunks: list[bytes], max_line: int) -> None:
    data = b"".join(chunks)
    in_pieces = decode(chunks, max_line)  # asserts buffered <= max_line after each feed
    assert in_pieces == decode([data], max_line)
    assert in_pieces == reference(data, max_line)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300), max_line=st.integers(1, 64))
def test_any_bytes_decode_without_error(data: bytes, max_line: int) -> None:
    assert decode([data], max_line) == reference(data, max_line)


# --- held input: push() and pop() decode exactly what feed() does ----------------------------

_chunks = st.lists(st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")), max_size=8)


@given(chunks=_chunks, max_line=st.sampled_from([1, 3, 10, 2048]), eager=st.booleans())
def test_push_and_pop_give_the_lines_feed_gives(chunks, max_line, eager) -> None:
    fed = LineDecoder(max_line)
    expected = [line for chunk in chunks for line in fed.feed(chunk)] + fed.feed_eof()
    held = LineDecoder(max_line)
    got = []
    for chunk in chunks:
        held.push(chunk)
        while eager and (line := held.pop()) is not None:
            got.append(line)
    held.close()
    while (line := held.pop()) is not None:
        got.append(line)
    assert got == expected


def test_what_waits_is_held_as_bytes_not_lines() -> None:
    decoder = LineDecoder(2048)
    decoder.push(b"a\n" * 100_000)
    assert decoder.pop() == "a"
    # Only one slice was decoded into line objects; the rest is still raw bytes.
    assert len(decoder._ready) <= LineDecoder.POP_SLICE // 2
    assert 2 * 100_000 - LineDecoder.POP_SLICE <= decoder.pending < 2 * 100_000
