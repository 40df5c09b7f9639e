"""Chat and the commands around it: seq, who, /me, /help, odd lines; the room module itself.

The room is called directly, on the wire of :mod:`tests.room_helpers`; no sockets.
"""

from __future__ import annotations

import pytest

from chatroom.protocol import Action, Error, ErrorCode, Message, Notice, NoticeCode, Who, WhoEntry
from chatroom.protocol.commands import HELP_TEXT
from chatroom.server.core import room as room_module
from chatroom.server.core.codec import LineTooLong
from chatroom.server.core.room import Room
from chatroom.server.core.text_format import render_text
from tests.room_helpers import T0, broadcast_events, only_to, room_with

# --- chat and seq ----------------------------------------------------------------------------


def test_chat_goes_to_everyone_including_the_sender() -> None:
    sim = room_with(3)
    seq = sim.room.seq
    sim.now += 5
    outs = sim.send(2, "hello there")
    assert len(outs) == 1
    assert outs[0].recipients == {1, 2, 3}
    assert outs[0].events == (
        Message(
            seq=seq + 1, ts=T0 + 5, id=sim.id(2), name=sim.id(2), text="hello there", room="main"
        ),
    )
    assert outs[0].payload == f"<{sim.id(2)}> hello there\n".encode()


# (line, is it a broadcast) from connection 1 in a room of 2, in this order
SEQ_STEPS = [
    ("hi", True),
    ("/me waves", True),
    ("rename|Duke", True),
    ("rename|Duke", False),  # already Duke: a notice
    ("rename|DUKE", True),
    ("who", False),
    ("/who", False),
    ("/names", False),
    ("/msg 127.0.0.1:5002 psst", False),
    ("/help", False),
    ("/bogus", False),
    ("rename|bad name", False),
    ("/nick", False),
    ("/format json", False),
    ("/format text", False),
    ("/format xml", False),
    ("", False),
    ("   ", False),
    ("\x1b[31m", False),
    (LineTooLong(2048), False),
    ("//slash", True),
    ("/quit bye", True),
]


def test_seq_rises_by_exactly_one_per_broadcast_event() -> None:
    sim = room_with(2)
    assert sim.room.seq == 2  # two joins
    for line, is_broadcast in SEQ_STEPS:
        before = sim.room.seq
        outs = sim.send(1, line)
        seqs = {e.seq for e in broadcast_events(outs) if not getattr(e, "history", False)}
        if is_broadcast:
            assert seqs == {before + 1}, line
            assert sim.room.seq == before + 1, line
        else:
            assert seqs == set(), line
            assert sim.room.seq == before, line
    sim.connect(3)
    assert sim.room.seq == before + 2
    sim.disconnect(3)
    assert sim.room.seq == before + 3


# --- who -------------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["who", "/who", "/names", "  who ", "/WHO", "/names  "])
def test_who_to_the_requester_only(line: str) -> None:
    sim = room_with(3)
    sim.send(3, "rename|Zoë")
    sim.now += 7
    sim.send(2, "")  # activity, not a line anyone sees
    sim.now += 2
    sim.inbox.clear()
    events = only_to(sim.send(2, line), 2)
    assert len(events) == 1 and isinstance(events[0], Who)
    assert set(events[0].users) == {
        WhoEntry(id=sim.id(1), name=sim.id(1), idle=9),
        WhoEntry(id=sim.id(2), name=sim.id(2), idle=0),  # this line counts as activity
        WhoEntry(id=sim.id(3), name="Zoë", idle=9),
    }
    assert len(events[0].users) == 3
    assert sim.take(2)  # the reply was delivered
    assert sim.inbox[1] == sim.inbox[3] == []


def test_who_text_shows_count_ids_and_names() -> None:
    sim = room_with(2)
    sim.send(2, "rename|Duke")
    (out,) = sim.send(1, "who")
    text = out.payload.decode()
    assert text.startswith("Online users (2):\n")
    assert "Duke" in text and sim.id(2) in text and sim.id(1) in text


# --- /me, /help ------------------------------------------------------------------------------


def test_me_is_an_action_for_everyone() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    (out,) = sim.send(1, "/me waves \x1b[5mhello")
    assert out.recipients == {1, 2}
    assert out.events == (
        Action(seq=sim.room.seq, ts=T0, id=sim.id(1), name="Duke", text="waves hello", room="main"),
    )
    assert out.payload == b"* Duke waves hello\n"


@pytest.mark.parametrize("line", ["/me", "/me   ", "/me \x1b[0m"])
def test_me_without_text(line: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    assert sim.room.seq == seq


def test_help_lists_every_command() -> None:
    sim = room_with(2)
    events = only_to(sim.send(1, "/help"), 1)
    assert events == [Notice(code=NoticeCode.HELP, text=HELP_TEXT)]
    for command in [
        "who",
        "/who",
        "/names",
        "rename|",
        "/nick",
        "/msg",
        "/me",
        "/quit",
        "/format",
        "/ping",
        "/help",
        "//",
    ]:
        assert command in HELP_TEXT
    assert sim.inbox[2] == []


@pytest.mark.parametrize(
    ("line", "text"),
    [("/ping", "pong"), ("/PING  ", "pong"), ("/ping are you there", "pong are you there"),
     ("/ping \x1b[31mx", "pong x")],
)  # fmt: skip
def test_ping_is_answered_to_the_sender_alone_and_counts_as_activity(line: str, text: str) -> None:
    sim = room_with(2, idle_timeout=60)
    seq = sim.room.seq
    sim.now += 50
    outs = sim.send(1, line)
    assert only_to(outs, 1) == [Notice(code=NoticeCode.PONG, text=text)]
    assert [out.payload for out in outs] == [f"*** {text}\n".encode()]
    assert sim.room.seq == seq  # nothing broadcast, nothing in the history
    assert sim.inbox[2] == []
    sim.now += 15  # 65 s after joining, 15 s after the ping
    assert sim.idle_check(1) == []
    assert 1 in sim.room


# --- unknown commands, slashes, empty lines, escapes, long lines -----------------------------


@pytest.mark.parametrize(
    "line", ["/bogus", "/bogus with args", "/whom", "/ ", "/", "/\x1b[31mx", "/msgs a b", "/me2 x"]
)
def test_unknown_command_is_an_error_and_not_broadcast(line: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.UNKNOWN_COMMAND)]
    assert "\x1b" not in events[0].message
    assert sim.room.seq == seq
    assert sim.inbox[2] == []


@pytest.mark.parametrize(
    ("line", "text"), [("//text", "/text"), ("//", "/"), ("//who", "/who"), ("///x", "//x")]
)
def test_double_slash_is_chat(line: str, text: str) -> None:
    sim = room_with(2)
    (out,) = sim.send(1, line)
    assert out.recipients == {1, 2}
    assert out.events == (
        Message(seq=sim.room.seq, ts=T0, id=sim.id(1), name=sim.id(1), text=text, room="main"),
    )


@pytest.mark.parametrize("line", ["", " ", "\t", "   \t  ", "\x1b[31m", "\x07", "\x1b]0;t\x07"])
def test_empty_lines_are_not_broadcast_but_count_as_activity(line: str) -> None:
    sim = room_with(2, idle_timeout=60)
    seq = sim.room.seq
    sim.now += 50
    assert sim.send(1, line) == []
    assert sim.room.seq == seq
    sim.now += 15  # 65 s after joining, 15 s after the empty line
    assert sim.idle_check(1) == []
    assert 1 in sim.room
    assert {u.id: u.idle for u in sim.room.who(sim.now).users}[sim.id(1)] == 15


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("\x1b[31mred\x1b[0m", "red"),
        ("\x1b]0;new title\x07hi", "hi"),
        ("\x1b]2;t\x1b\\hi", "hi"),
        ("a\x9b2Jb", "ab"),
        ("ring\x07\x07", "ring"),
        ("del\x7f c1\x85", "del c1"),
        ("tab\tkept ünïcödé ☃", "tab\tkept ünïcödé ☃"),
        ("trailing esc\x1b", "trailing esc"),
    ],
)
def test_escapes_are_stripped_from_chat(line: str, text: str) -> None:
    sim = room_with(2)
    (out,) = sim.send(1, line)
    assert out.events[0].text == text
    assert out.payload == f"<{sim.id(1)}> {text}\n".encode()


@pytest.mark.parametrize("command", ["", "/me ", "/quit "])
def test_a_line_separator_cannot_forge_a_second_line(command: str) -> None:
    sim = room_with(2)
    (out,) = sim.send(1, f"{command}hi\u2028<admin> fake\u200b\u200e")
    assert 2 in out.recipients
    assert out.events[0].text == "hi<admin> fake"
    assert "\u2028" not in out.payload.decode()
    assert out.payload.decode().splitlines(keepends=True) == [out.payload.decode()]


def test_a_too_long_line_is_an_error_to_the_sender() -> None:
    sim = room_with(2, idle_timeout=60)
    seq = sim.room.seq
    sim.now += 55
    events = only_to(sim.send(1, LineTooLong(2048)), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.LINE_TOO_LONG)]
    assert "2048" in events[0].message
    assert sim.room.seq == seq
    assert sim.room.next_idle_check(1) == sim.now + 50  # it counted as activity


def test_lines_from_a_connection_not_in_the_room_go_nowhere() -> None:
    sim = room_with(1)
    assert sim.send(99, "hello") == []
    sim.send(1, "/quit")
    assert sim.send(1, "still here?") == []


# --- the room module -------------------------------------------------------------------------


def test_the_room_module_documents_that_it_needs_no_lock() -> None:
    assert "lock" in (Room.__doc__ or "") and "event loop" in (Room.__doc__ or "")
    assert room_module.__doc__ and "No I/O" in room_module.__doc__


def test_who_of_a_big_room_is_capped_and_says_how_many_more() -> None:
    sim = room_with(12, who_max=5)
    (out,) = sim.send(1, "who")
    (event,) = out.events
    assert [u.id for u in event.users] == [sim.id(n) for n in range(1, 6)]
    assert event.total == 12
    text = render_text(event)
    assert text.startswith("Online users (12):\n") and "... and 7 more" in text


def test_who_text_lists_the_names_containing_it() -> None:
    sim = room_with(4)
    sim.send(2, "/nick Annie")
    sim.send(3, "/nick joANNa")
    (out,) = sim.send(1, "/who ann")
    (event,) = out.events
    assert sorted(u.name for u in event.users) == ["Annie", "joANNa"]
    assert event.total is None  # all of them are listed


def test_who_is_counted_against_flood_control_by_its_size() -> None:
    sim = room_with(12, who_users_per_line=5)
    sim.send(1, "who")
    assert sim.wire.charged == {1: 2}  # 12 users listed: two more lines' worth
    sim.send(1, "/who 127")
    assert sim.wire.charged == {1: 4}


def test_a_who_reply_is_reused_until_someone_joins_leaves_or_renames() -> None:
    sim = room_with(3)
    (first,) = sim.send(1, "who")
    (again,) = sim.send(2, "who")
    assert again.payload is first.payload  # encoded once
    sim.now += 1
    (later,) = sim.send(2, "who")
    assert later.payload is not first.payload  # idle times moved on a second
    sim.send(3, "/nick Zed")
    (renamed,) = sim.send(2, "who")
    assert b"Zed" in renamed.payload
