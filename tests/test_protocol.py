"""The shared protocol module: one table of (event, JSON line) serves writer and reader."""

from __future__ import annotations

import json
import math
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom import protocol as p
from chatroom.protocol import (
    Action,
    Error,
    ErrorCode,
    FormatChanged,
    Join,
    Leave,
    LeaveReason,
    Message,
    Notice,
    NoticeCode,
    OutputFormat,
    Private,
    ProtocolError,
    Rename,
    UnknownEvent,
    Welcome,
    Who,
    WhoEntry,
    chat_line,
    decode_json,
    encode_json,
    encode_json_line,
    name_key,
    name_problem,
    strip_controls,
)

TS = 1700000000.25

# (event, the exact line the server writes for it in JSON mode)
CASES = [
    (
        Welcome(id="10.0.0.1:5000", name="10.0.0.1:5000", idle_timeout=60.0, users=3),
        '{"type":"welcome","id":"10.0.0.1:5000","name":"10.0.0.1:5000","idle_timeout":60.0,"users":3}',
    ),
    (
        Message(seq=7, ts=TS, id="10.0.0.1:5000", name="Duke", text="hello, world: ok"),
        '{"type":"message","seq":7,"ts":1700000000.25,"id":"10.0.0.1:5000","name":"Duke",'
        '"text":"hello, world: ok"}',
    ),
    (
        Message(seq=3, ts=TS, id="a:1", name="Duke", text="old", history=True),
        '{"type":"message","seq":3,"ts":1700000000.25,"id":"a:1","name":"Duke","text":"old",'
        '"history":true}',
    ),
    (
        Message(seq=1, ts=TS, id="a:1", name="Zoë", text='héllo ☃ \U0001f600 "q" \\'),
        '{"type":"message","seq":1,"ts":1700000000.25,"id":"a:1","name":"Zoë",'
        '"text":"héllo ☃ \U0001f600 \\"q\\" \\\\"}',
    ),
    (
        Action(seq=8, ts=TS, id="a:1", name="Duke", text="waves"),
        '{"type":"action","seq":8,"ts":1700000000.25,"id":"a:1","name":"Duke","text":"waves"}',
    ),
    (
        Action(seq=2, ts=TS, id="a:1", name="Duke", text="waved", history=True),
        '{"type":"action","seq":2,"ts":1700000000.25,"id":"a:1","name":"Duke","text":"waved",'
        '"history":true}',
    ),
    (
        Join(seq=9, ts=TS, id="[::1]:4000", name="[::1]:4000"),
        '{"type":"join","seq":9,"ts":1700000000.25,"id":"[::1]:4000","name":"[::1]:4000"}',
    ),
    (
        Leave(seq=10, ts=TS, id="a:1", name="Duke", reason=LeaveReason.QUIT, text="bye all"),
        '{"type":"leave","seq":10,"ts":1700000000.25,"id":"a:1","name":"Duke","reason":"quit",'
        '"text":"bye all"}',
    ),
    (
        Leave(seq=11, ts=TS, id="a:1", name="Duke", reason=LeaveReason.QUIT),
        '{"type":"leave","seq":11,"ts":1700000000.25,"id":"a:1","name":"Duke","reason":"quit"}',
    ),
    *[
        (
            Leave(seq=12, ts=TS, id="a:1", name="Duke", reason=reason),
            '{"type":"leave","seq":12,"ts":1700000000.25,"id":"a:1","name":"Duke",'
            f'"reason":"{reason.value}"}}',
        )
        for reason in LeaveReason
        if reason is not LeaveReason.QUIT
    ],
    (
        Rename(seq=13, ts=TS, id="a:1", old="a:1", new="Duke"),
        '{"type":"rename","seq":13,"ts":1700000000.25,"id":"a:1","old":"a:1","new":"Duke"}',
    ),
    (
        Private(ts=TS, sender="Duke", recipient="Zoë", text="psst"),
        '{"type":"private","ts":1700000000.25,"from":"Duke","to":"Zoë","text":"psst"}',
    ),
    (
        Who(
            users=(WhoEntry(id="a:1", name="Duke", idle=0), WhoEntry(id="b:2", name="b:2", idle=42))
        ),
        '{"type":"who","users":[{"id":"a:1","name":"Duke","idle":0},{"id":"b:2","name":"b:2","idle":42}]}',
    ),
    (Who(users=()), '{"type":"who","users":[]}'),
    *[
        (
            Notice(code=code, text="some text"),
            f'{{"type":"notice","code":"{code.value}","text":"some text"}}',
        )
        for code in NoticeCode
    ],
    *[
        (
            Error(code=code, message="nope"),
            f'{{"type":"error","code":"{code.value}","message":"nope"}}',
        )
        for code in ErrorCode
    ],
    (FormatChanged(format=OutputFormat.JSON), '{"type":"format","format":"json"}'),
    (FormatChanged(format=OutputFormat.TEXT), '{"type":"format","format":"text"}'),
    (
        p.Topic(text="rules: be kind", by="boss"),
        '{"type":"topic","text":"rules: be kind","by":"boss"}',
    ),
    (p.Topic(text=""), '{"type":"topic","text":""}'),
    (
        Leave(
            seq=14, ts=TS, id="b:2", name="spam", reason=LeaveReason.KICKED, text="ads", by="boss"
        ),
        '{"type":"leave","seq":14,"ts":1700000000.25,"id":"b:2","name":"spam","reason":"kicked",'
        '"text":"ads","by":"boss"}',
    ),
    (
        Who(users=(WhoEntry(id="a:1", name="boss", idle=1, op=True),)),
        '{"type":"who","users":[{"id":"a:1","name":"boss","idle":1,"op":true}]}',
    ),
    (p.Ack(id="r1", seq=12), '{"type":"ack","id":"r1","seq":12}'),
    (p.Ack(id=7), '{"type":"ack","id":7}'),
    (
        p.RoomEntered(room="dev", users=2, topic="friday"),
        '{"type":"room","room":"dev","users":2,"topic":"friday"}',
    ),
    (
        p.RoomList(rooms=(p.RoomEntry(room="dev", users=2), p.RoomEntry("main", 5, "hi")), total=9),
        '{"type":"rooms","rooms":[{"room":"dev","users":2},'
        '{"room":"main","users":5,"topic":"hi"}],"total":9}',
    ),
    (
        Join(seq=3, ts=TS, id="a:1", name="ann", room="dev"),
        '{"type":"join","seq":3,"ts":1700000000.25,"id":"a:1","name":"ann","room":"dev"}',
    ),
    (
        p.Error(code=p.ErrorCode.BAD_REQUEST, message="bad", id="r2"),
        '{"type":"error","code":"bad_request","message":"bad","id":"r2"}',
    ),
    (
        Notice(code=NoticeCode.HISTORY, text="2 messages", count=2, seq=9, more=True),
        '{"type":"notice","code":"history","text":"2 messages","count":2,"seq":9,"more":true}',
    ),
    (
        Notice(code=NoticeCode.RATE_LIMITED, text="slow down", retry_after=0.25),
        '{"type":"notice","code":"rate_limited","text":"slow down","retry_after":0.25}',
    ),
]


@pytest.mark.parametrize(("event", "line"), CASES)
def test_encode(event: p.Event, line: str) -> None:
    assert encode_json(event) == line


@pytest.mark.parametrize(("event", "line"), CASES)
def test_decode(event: p.Event, line: str) -> None:
    decoded = decode_json(line)
    assert decoded == event
    assert type(decoded) is type(event)


@pytest.mark.parametrize(("event", "line"), CASES)
def test_decode_ignores_key_order_and_spacing(event: p.Event, line: str) -> None:
    data = json.loads(line)
    reordered = dict(reversed(list(data.items())))
    assert decode_json(json.dumps(reordered, indent=2)) == event


def test_every_event_type_is_in_the_table() -> None:
    assert {type(event) for event, _ in CASES} == set(p.Event.__args__)


def test_history_and_text_are_left_out_when_unset() -> None:
    assert "history" not in json.loads(encode_json(Message(1, TS, "a:1", "n", "t")))
    assert "text" not in json.loads(encode_json(Leave(1, TS, "a:1", "n", LeaveReason.EOF)))
    # an empty quit text is still a text: only None is left out
    assert json.loads(encode_json(Leave(1, TS, "a:1", "n", LeaveReason.QUIT, "")))["text"] == ""


def test_decode_integer_ts_and_timeout() -> None:
    event = decode_json('{"type":"join","seq":1,"ts":1700000000,"id":"a:1","name":"n"}')
    assert event == Join(seq=1, ts=1700000000.0, id="a:1", name="n")
    assert isinstance(event.ts, float)


def test_decode_history_only_when_true() -> None:
    base = '{"type":"message","seq":1,"ts":1.5,"id":"a:1","name":"n","text":"t","history":%s}'
    assert decode_json(base % "true").history is True
    assert decode_json(base % "false").history is False
    assert decode_json(base % '"yes"').history is False


GARBAGE = [
    "",
    "   ",
    "not json",
    "{",
    "[]",
    "123",
    '"message"',
    "null",
    "{}",
    '{"type":1}',
    '{"type":null}',
    '{"type":"message"}',
    '{"type":"message","seq":"1","ts":1,"id":"a","name":"n","text":"t"}',
    '{"type":"message","seq":true,"ts":1,"id":"a","name":"n","text":"t"}',
    '{"type":"message","seq":1,"ts":"now","id":"a","name":"n","text":"t"}',
    '{"type":"message","seq":1,"ts":1,"id":"a","name":"n","text":null}',
    '{"type":"welcome","id":"a","name":"n","idle_timeout":60,"users":1.5}',
    '{"type":"leave","seq":1,"ts":1,"id":"a","name":"n"}',
    '{"type":"private","ts":1,"sender":"a","recipient":"b","text":"t"}',  # wire names are from/to
    '{"type":"who"}',
    '{"type":"who","users":{}}',
    '{"type":"who","users":[{"id":"a","name":"n"}]}',
    '{"type":"format","format":"xml"}',
    '{"type":"notice","code":"info"}',
    '{"type":"error","message":"m"}',
    # hostile input must not escape as another exception type
    pytest.param("[" * 100_000, id="deep-nesting"),
    pytest.param(
        '{"type":"welcome","id":"a","name":"n","idle_timeout":' + "9" * 400 + ',"users":1}',
        id="huge-int-timeout",
    ),
    pytest.param(
        '{"type":"join","seq":1,"ts":' + "9" * 400 + ',"id":"a","name":"n"}', id="huge-int-ts"
    ),
]


@pytest.mark.parametrize("line", GARBAGE)
def test_garbage_raises_protocol_error(line: str) -> None:
    with pytest.raises(ProtocolError):
        decode_json(line)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)


@pytest.mark.parametrize(
    "line",
    [
        '{"type":"typing","who":"Duke"}',
        '{"type":"notice","code":"brand_new","text":"t"}',
        '{"type":"error","code":"brand_new","message":"m"}',
    ],
)
def test_unknown_types_and_codes_give_unknown_event(line: str) -> None:
    event = decode_json(line)
    assert isinstance(event, UnknownEvent)
    assert event.data == json.loads(line)
    assert event.type == json.loads(line)["type"]


# --- hypothesis: every event survives the round trip, on one line -------------------------

texts = st.text(max_size=30)
ts = st.floats(min_value=0, max_value=4e9, allow_nan=False)
seqs = st.integers(min_value=1, max_value=2**53)
events = st.one_of(
    st.builds(Welcome, id=texts, name=texts, idle_timeout=ts, users=st.integers(0, 10**6)),
    st.builds(Message, seq=seqs, ts=ts, id=texts, name=texts, text=texts, history=st.booleans()),
    st.builds(Action, seq=seqs, ts=ts, id=texts, name=texts, text=texts, history=st.booleans()),
    st.builds(Join, seq=seqs, ts=ts, id=texts, name=texts),
    st.builds(
        Leave,
        seq=seqs,
        ts=ts,
        id=texts,
        name=texts,
        reason=st.sampled_from(LeaveReason),
        text=st.none() | texts,
    ),
    st.builds(Rename, seq=seqs, ts=ts, id=texts, old=texts, new=texts),
    st.builds(Private, ts=ts, sender=texts, recipient=texts, text=texts),
    st.builds(
        Who,
        users=st.lists(
            st.builds(WhoEntry, id=texts, name=texts, idle=st.integers(0, 10**9)), max_size=4
        ).map(tuple),
    ),
    st.builds(Notice, code=st.sampled_from(NoticeCode), text=texts),
    st.builds(Error, code=st.sampled_from(ErrorCode), message=texts),
    st.builds(FormatChanged, format=st.sampled_from(OutputFormat)),
)


@settings(max_examples=200, deadline=None)
@given(event=events)
def test_round_trip(event: p.Event) -> None:
    line = encode_json(event)
    assert "\n" not in line and "\r" not in line  # one event, one line
    assert decode_json(line) == event
    assert list(json.loads(line))[0] == "type"


@settings(max_examples=200, deadline=None)
@given(
    line=st.text(max_size=60)
    | st.builds(
        lambda d: json.dumps(d),
        st.dictionaries(
            st.sampled_from(
                ["type", "seq", "ts", "id", "name", "text", "users", "code", "reason", "format"]
            ),
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats()
            | st.text(max_size=5)
            | st.sampled_from(
                ["welcome", "message", "leave", "who", "notice", "error", "format", "quit"]
            )
            | st.lists(
                st.dictionaries(
                    st.sampled_from(["id", "name", "idle"]), st.integers() | st.text(max_size=3)
                ),
                max_size=2,
            ),
        ),
    )
)
def test_decode_any_line_gives_an_event_or_protocol_error(line: str) -> None:
    try:
        event = decode_json(line)
    except ProtocolError:
        return
    assert isinstance(event, (UnknownEvent, *p.Event.__args__))


# --- names ----------------------------------------------------------------------------------

NAMES = [
    ("Duke", True),
    ("d", True),
    ("a" * 32, True),
    ("a" * 33, False),
    ("é" * 32, True),  # the limit counts characters, not bytes
    ("", False),
    ("Du ke", False),
    (" Duke", False),
    ("Duke\t", False),
    ("Du\nke", False),
    ("Du\u00a0ke", False),  # no-break space
    ("Du\u3000ke", False),  # ideographic space
    ("Du\x00ke", False),
    ("Du\x07ke", False),
    ("\x1b[31mDuke", False),
    ("Duke\x7f", False),
    ("Du\x85ke", False),
    ("Du\x9bke", False),
    ("Du|ke", False),
    ("rename|x", False),
    ("Du:ke", False),
    ("10.0.0.1:5000", False),  # nobody can pose as an address
    ("Du\u200bke", False),  # zero-width space
    ("Du\u200dke", False),  # zero-width joiner
    ("\ufeffDuke", False),  # byte order mark
    ("Du\u202eke", False),  # right-to-left override
    ("Zoë", True),
    ("Дюк", True),
    ("名前", True),
    ("ΣΊΣΥΦΟΣ", True),
    ("d-u_k.e[1]!", True),
    ("\U0001f600", True),
]


@pytest.mark.parametrize(("name", "ok"), NAMES)
def test_name_problem(name: str, ok: bool) -> None:
    problem = name_problem(name)
    if ok:
        assert problem is None
    else:
        assert isinstance(problem, str) and problem


def test_name_key_is_case_insensitive() -> None:
    assert name_key("Duke") == name_key("DUKE") == name_key("duke")
    assert name_key("Straße") == name_key("STRASSE")
    assert name_key("Duke") != name_key("Duke2")


# --- strip_controls -------------------------------------------------------------------------

STRIP = [
    ("plain text", "plain text"),
    ("", ""),
    ("tab\tkept", "tab\tkept"),
    ("héllo ☃ 名前 \U0001f600 Дюк", "héllo ☃ 名前 \U0001f600 Дюк"),
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x1b[1;31;42mX\x1b[m", "X"),
    ("\x1b[2J\x1b[Hwiped", "wiped"),
    ("\x1b[?25lhidden cursor", "hidden cursor"),
    ("\x1b]0;evil title\x07after", "after"),  # OSC ended by BEL
    ("\x1b]2;evil title\x1b\\after", "after"),  # OSC ended by ST
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink
    ("\x1bPq#0;2;0;0;0\x1b\\dcs", "dcs"),  # DCS string
    ("a\x1b7b\x1b8c", "abc"),  # save/restore cursor
    ("lone escape\x1b", "lone escape"),
    ("\x1b", ""),
    ("\x9b31mX", "X"),  # 8-bit CSI
    ("\x9d0;t\x9cY", "Y"),  # 8-bit OSC and ST
    ("a\x85b\x80c\x99d", "abcd"),  # C1
    ("a\x9fapc string\x9cb", "ab"),  # 8-bit APC up to its ST
    ("a\x00b\x07c\x08d\x7fe", "abcde"),  # C0 and DEL
    ("ding\x07\x07\x07", "ding"),
    ("line\nbreak\rreturn\x0bv\x0cf", "linebreakreturnvf"),
    ("abc\u202edcba\u202c", "abcdcba"),  # right-to-left override cannot reorder the line
    ("\u2067isolate\u2069", "isolate"),
    (
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
        "family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    ),
]


@pytest.mark.parametrize(("text", "clean"), STRIP)
def test_strip_controls(text: str, clean: str) -> None:
    assert strip_controls(text) == clean


# A subdivision flag: black flag, 3-7 tag letters or digits (a CLDR subdivision id), cancel tag
FLAG = re.compile("\U0001f3f4[\U000e0030-\U000e0039\U000e0061-\U000e007a]{3,7}\U000e007f")
SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"

# Invisible characters that can forge a line or hide text: each is removed (docs/PROTOCOL.md)
REMOVED = [
    "\u2028",  # line separator: str.splitlines() breaks the line there
    "\u2029",  # paragraph separator: likewise
    "\x85",  # next line (C1): likewise
    "\u00ad",  # soft hyphen: invisible except at a line break
    "\u180e",  # Mongolian vowel separator: invisible
    "\u200b",  # zero-width space
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u061c",  # Arabic letter mark
    "\u202a",  # bidi embedding
    "\u202e",  # bidi override
    "\u2066",  # bidi isolate
    "\u2069",  # pop directional isolate
    "\u2060",  # word joiner
    "\u2061",  # function application (invisible operator)
    "\u2064",  # invisible plus
    "\u206a",  # deprecated format characters
    "\u206f",
    "\ufeff",  # zero-width no-break space / byte order mark
    "\ufff9",  # interlinear annotation anchor
    "\ufffa",
    "\ufffb",
    "\U000e0001",  # language tag
    "\U000e0041",  # tag A: invisible ASCII, outside a flag
    "\U000e007f",  # cancel tag, outside a flag
]


@pytest.mark.parametrize("char", REMOVED, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_and_line_breaking_characters_are_removed(char: str) -> None:
    assert strip_controls(f"hi{char}<admin> fake") == "hi<admin> fake"
    assert strip_controls(char * 3) == ""


# (text, clean): what is kept, and the NFC form every text is put in
KEPT = [
    ("family \U0001f468\u200d\U0001f469\u200d\U0001f467", None),  # ZWJ emoji sequence
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0645", None),  # Persian with ZWNJ
    ("\u0915\u094d\u200d\u0937", None),  # Devanagari with ZWJ
    ("\u2764\ufe0f \u2603\ufe0e", None),  # variation selectors: emoji/text presentation
    ("\u845b\U000e0100", None),  # ideographic variation selector
    ("flag " + SCOTLAND, None),  # a flag tag sequence keeps its tags
    ("\U0001f1eb\U0001f1f7", None),  # regional indicators (flag of France)
    ("cafe\u0301", "caf\u00e9"),  # combining accent composed (NFC)
    ("\u212b", "\u00c5"),  # angstrom sign: its NFC form
    ("\u1100\u1161", "\uac00"),  # Hangul jamo composed
    ("e\u200b\u0301", "\u00e9"),  # composed after the zero-width space is gone
    ("\U0001f3f4\U000e0041\U000e0042", "\U0001f3f4"),  # not a flag: tags go
    ("\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074", "\U0001f3f4"),  # no end
]


@pytest.mark.parametrize(("text", "clean"), KEPT)
def test_what_is_kept_and_normalised(text: str, clean: str | None) -> None:
    assert strip_controls(text) == (text if clean is None else clean)


def is_forbidden(char: str) -> bool:
    code = ord(char)
    return (
        (code < 0x20 and char != "\t")
        or 0x7F <= code <= 0x9F
        or 0x202A <= code <= 0x202E  # bidi embeddings and overrides
        or 0x2066 <= code <= 0x2069  # bidi isolates
        or char in "\u2028\u2029\u00ad\u180e\u200b\u200e\u200f\u061c\ufeff\ufff9\ufffa\ufffb"
        or 0x2060 <= code <= 0x2064
        or 0x206A <= code <= 0x206F
        or 0xE0000 <= code <= 0xE007F  # tags (kept only inside a flag, never generated here)
    )


escape_text = st.lists(
    st.sampled_from(
        [
            "\x1b",
            "[",
            "]",
            "\\",
            "\x07",
            "\x9b",
            "\x9c",
            "\x9d",
            "\x90",
            "P",
            "31",
            ";",
            "m",
            "0",
            "\t",
            "a",
            "é",
            " ",
            "\x00",
            "\x7f",
            "\x85",
            "\n",
            "\r",
            "\u2028",
            "\u200b",
            "\u200d",
            "\U0001f3f4",
            "\U000e0067",
            "\U000e007f",
            "e",
            "\u0301",
            SCOTLAND,
        ]
    )
    | st.text(max_size=5),
    max_size=20,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=escape_text | st.text())
def test_strip_controls_leaves_no_control_and_is_idempotent(text: str) -> None:
    clean = strip_controls(text)
    assert not any(is_forbidden(c) for c in FLAG.sub("", clean))
    assert unicodedata.is_normalized("NFC", clean)
    assert strip_controls(clean) == clean


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_strip_controls_keeps_text_without_controls(text: str) -> None:
    text = "".join(c for c in text if not is_forbidden(c))
    assert strip_controls(text) == unicodedata.normalize("NFC", text)


# --- chat_line ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [("hi", "hi"), ("/me", "//me"), ("//x", "///x"), ("/", "//"), ("a/b", "a/b"), ("", "")],
)
def test_chat_line(text: str, line: str) -> None:
    assert chat_line(text) == line


def test_leave_with_a_reason_this_version_does_not_know_still_decodes() -> None:
    line = '{"type":"leave","seq":1,"ts":1,"id":"a","name":"n","reason":"exploded"}'
    event = decode_json(line)
    assert isinstance(event, Leave) and event.reason == "exploded" and event.name == "n"


@given(events)
def test_encode_json_is_the_compact_encoding_of_the_wire_dict(event: object) -> None:
    # encode_json is msgspec's encoder (the standard library's for floats it writes
    # differently); it must write what the standard library writes, for every type.
    assert encode_json(event) == json.dumps(
        p.to_wire_dict(event), separators=(",", ":"), ensure_ascii=False
    )


# --- floats: written as Python's repr writes them, whatever the value ---------------------

FLOATS = [0.0, -0.0, 1e-05, 9.9e-05, 0.0001, 1e16, 1e22, 1.5e300, 5e-324, -1.5, 60, 2**70]


@pytest.mark.parametrize("value", [*FLOATS, math.nan, math.inf, -math.inf])
def test_floats_are_written_as_the_standard_library_writes_them(value: float) -> None:
    for event in (
        Join(seq=1, ts=value, id="a", name="n"),
        Welcome(id="a", name="n", idle_timeout=value, users=1),
    ):
        line = encode_json(event)
        assert line == json.dumps(p.to_wire_dict(event), separators=(",", ":"), ensure_ascii=False)
        if math.isfinite(value):
            assert f":{value!r}," in line


@settings(max_examples=300, deadline=None)
@given(ts=st.floats(), seq=st.integers())
def test_any_number_is_written_as_the_standard_library_writes_it(ts: float, seq: int) -> None:
    event = Leave(seq=seq, ts=ts, id="a", name="n", reason=LeaveReason.EOF)
    assert encode_json(event) == json.dumps(
        p.to_wire_dict(event), separators=(",", ":"), ensure_ascii=False
    )


# --- what decoding has always forgiven ----------------------------------------------------


def test_bad_optional_fields_count_as_unset() -> None:
    line = '{"type":"leave","seq":1,"ts":1,"id":"a","name":"n","reason":"eof","text":5}'
    assert decode_json(line) == Leave(1, 1.0, "a", "n", LeaveReason.EOF)
    line = '{"type":"action","seq":1,"ts":1,"id":"a","name":"n","text":"t","history":1}'
    assert decode_json(line) == Action(1, 1.0, "a", "n", "t")


def test_who_entries_that_are_not_objects_are_skipped() -> None:
    line = '{"type":"who","users":[1,{"id":"a","name":"n","idle":3},null,"x",[]]}'
    assert decode_json(line) == Who(users=(WhoEntry(id="a", name="n", idle=3),))


def test_an_unknown_code_is_still_checked_for_the_rest() -> None:
    with pytest.raises(ProtocolError):
        decode_json('{"type":"notice","code":"brand_new"}')
    with pytest.raises(ProtocolError):
        decode_json('{"type":"error","code":"brand_new","message":7}')


def test_what_pythons_json_reads_still_decodes() -> None:
    # NaN and Infinity are not JSON, but the standard library reads them, and always did.
    event = decode_json('{"type":"join","seq":1,"ts":NaN,"id":"a","name":"n","x":Infinity}')
    assert isinstance(event, Join) and math.isnan(event.ts)


def test_from_wire_dict_takes_a_decoded_object() -> None:
    data = {"text": "t", "to": "b", "from": "a", "ts": 2, "type": "private", "to_id": "b:1"}
    assert p.from_wire_dict(data) == Private(ts=2.0, sender="a", recipient="b", text="t")
    assert p.from_wire_dict({"type": "typing"}) == UnknownEvent("typing", {"type": "typing"})
    with pytest.raises(ProtocolError):
        p.from_wire_dict(["type", "join"])


# --- the event classes: what the rest of the code relies on -------------------------------


@pytest.mark.parametrize(("event", "line"), CASES)
def test_events_are_frozen_values_with_their_type(event: p.Event, line: str) -> None:
    again = decode_json(line)
    assert again is not event and hash(again) == hash(event)
    assert event.type == type(event).type == json.loads(line)["type"]
    first = type(event).__struct_fields__[0]
    with pytest.raises(AttributeError):
        setattr(event, first, getattr(event, first))


def test_replace_copies_with_changes() -> None:
    message = Message(seq=3, ts=TS, id="a:1", name="Duke", text="old")
    assert p.replace(message, history=True) == Message(3, TS, "a:1", "Duke", "old", True)
    assert message.history is False
    assert p.replace(message, seq=9).seq == 9


def test_events_match_class_patterns() -> None:
    match decode_json(CASES[1][1]):
        case Message(name=name, text=text, history=False):
            assert (name, text) == ("Duke", "hello, world: ok")
        case _:
            pytest.fail("no match")
    match Private(TS, "Duke", "Zoë", "psst"):
        case Private(ts, sender, recipient):
            assert (ts, sender, recipient) == (TS, "Duke", "Zoë")


def test_a_known_leave_reason_is_the_enum_member() -> None:
    assert Leave(1, TS, "a", "n", "quit").reason is LeaveReason.QUIT
    line = '{"type":"leave","seq":1,"ts":1,"id":"a","name":"n","reason":"slow"}'
    assert decode_json(line).reason is LeaveReason.SLOW


@pytest.mark.parametrize("ts", [1764562083.123456, 1e20, 0.00001, 0.5])
def test_the_server_s_line_is_encode_json_and_a_newline(ts) -> None:
    for event in (
        Message(seq=1, ts=ts, id="1.2.3.4:5", name="ännä", text='a "q" ✓'),
        Leave(seq=2, ts=ts, id="x", name="y", reason=LeaveReason.QUIT, text="bye"),
    ):
        assert encode_json_line(event) == (encode_json(event) + "\n").encode()
