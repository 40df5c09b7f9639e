"""The room's rules, called directly: events in with the time, actions out. No sockets.

``Sim`` plays the part of the asyncio adapter: it carries out the room's actions, checks
that every payload is exactly the encoding of its events in the recipient's format, and
keeps what each connection received.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

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
    Rename,
    Welcome,
    Who,
    WhoEntry,
    decode_json,
    encode_json,
    name_key,
    name_problem,
)
from chatroom.server import room as room_module
from chatroom.server.actions import Admitted, Close, Deliver, Left, Renamed, TurnedAway, encode
from chatroom.server.addresses import peer_id
from chatroom.server.codec import LineTooLong
from chatroom.server.commands import HELP_TEXT
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.room import Room

TEXT, JSON = OutputFormat.TEXT, OutputFormat.JSON
LOCAL = "127.0.0.1"
REMOTE = "203.0.113.5"  # TEST-NET-3: not loopback
BROADCAST_TYPES = (Message, Action, Join, Leave, Rename)
T0 = 1_700_000_000.0


@dataclass(frozen=True)
class Out:
    """One write the adapter makes: ``payload`` (encoding ``events``) to ``recipients``."""

    recipients: frozenset[int]
    payload: bytes
    events: tuple[p.Event, ...]


class Wire:
    """What the adapter does with the room's actions, checked on the way.

    Direct writes (``Deliver``) name their recipients; a ``Broadcast`` goes to whoever is
    subscribed to its format at that point. Every payload must be exactly the encoding of
    its events in the format of each connection it reaches.
    """

    def __init__(self) -> None:
        self.formats: dict[int, OutputFormat] = {}  # as told by FormatChanged; text before
        self.subscribed: dict[int, OutputFormat] = {}

    def expand(self, actions: list) -> tuple[list[Out], list[int]]:
        outs: list[Out] = []
        closed: list[int] = []
        for action in actions:
            kind = type(action).__name__
            if isinstance(action, Admitted | TurnedAway | Renamed | Left):
                continue  # reports, for the adapter's log
            if isinstance(action, Close):
                closed.append(action.conn)
                continue
            if kind == "Subscribe":
                self.subscribed[action.conn] = action.fmt
                continue
            if kind == "Unsubscribe":
                assert action.conn in self.subscribed, "unsubscribed but never subscribed"
                del self.subscribed[action.conn]
                continue
            if isinstance(action, Deliver):
                recipients = frozenset(action.recipients)
                assert len(recipients) == len(action.recipients), "a recipient listed twice"
            else:
                assert kind == "Broadcast", action
                recipients = frozenset(c for c, f in self.subscribed.items() if f is action.fmt)
            assert recipients, f"written to nobody: {action}"
            for event in action.events:
                if isinstance(event, FormatChanged):
                    for conn in recipients:
                        self.formats[conn] = event.format
            formats = {self.formats.get(conn, TEXT) for conn in recipients}
            assert len(formats) == 1, f"one payload for several formats: {action}"
            fmt = formats.pop()
            if kind == "Broadcast":
                assert fmt is action.fmt
            assert action.payload == b"".join(encode(e, fmt) for e in action.events)
            if fmt is TEXT:
                assert b"\x1b" not in action.payload and b"\r" not in action.payload
            outs.append(Out(recipients, action.payload, tuple(action.events)))
        return outs, closed


class Sim:
    def __init__(self, **rules: object) -> None:
        self.room = Room(RoomRules.from_config(ServerConfig(**rules)))
        self.now = T0
        self.inbox: dict[int, list[p.Event]] = defaultdict(list)
        self.closed: list[int] = []
        self.wire = Wire()

    def id(self, conn: int) -> str:
        return peer_id(LOCAL, 5000 + conn)

    def connect(self, conn: int, host: str = LOCAL, port: int | None = None) -> list[Out]:
        port = 5000 + conn if port is None else port
        return self.apply(self.room.connect(conn, host, port, self.now))

    def send(self, conn: int, line: str | LineTooLong) -> list[Out]:
        return self.apply(self.room.receive(conn, line, self.now))

    def disconnect(self, conn: int, reason: LeaveReason = LeaveReason.EOF) -> list[Out]:
        return self.apply(self.room.disconnect(conn, reason, self.now))

    def idle_check(self, conn: int) -> list[Out]:
        return self.apply(self.room.idle_check(conn, self.now))

    def apply(self, actions: list) -> list[Out]:
        """Carry out ``actions``; return the writes (Close is recorded in ``closed``)."""
        outs, closed = self.wire.expand(actions)
        for out in outs:
            for conn in out.recipients:
                self.inbox[conn] += out.events
        self.closed += closed
        # broadcasts reach exactly the connections in the room
        assert all(conn in self.room for conn in self.wire.subscribed)
        assert len(self.wire.subscribed) == len(self.room)
        return outs

    def take(self, conn: int) -> list[p.Event]:
        events, self.inbox[conn] = self.inbox[conn], []
        return events


def room_with(n: int, **rules: object) -> Sim:
    """A room with connections 1..n joined, inboxes emptied."""
    sim = Sim(**rules)
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def only_to(outs: list[Out], conn: int) -> list[p.Event]:
    """The events of ``outs``, asserting they all go to ``conn`` alone."""
    assert outs, "expected a reply"
    for out in outs:
        assert out.recipients == {conn}
    return [e for out in outs for e in out.events]


def broadcast_events(outs: list[Out]) -> list[p.Event]:
    return [e for o in outs for e in o.events if isinstance(e, BROADCAST_TYPES)]


# --- joining ---------------------------------------------------------------------------------


def test_join_welcome_then_history_then_join_to_everyone() -> None:
    sim = Sim(history=2, idle_timeout=60)
    sim.connect(1)
    sim.send(1, "one")
    sim.send(1, "two")
    sim.send(1, "/me three")
    assert sim.room.seq == 4
    sim.take(1)
    outs = sim.connect(2)

    greeting, *rest = outs
    assert greeting.recipients == {2}
    assert greeting.events == (
        Welcome(id=sim.id(2), name=sim.id(2), idle_timeout=60, users=2),
        Message(seq=3, ts=T0, id=sim.id(1), name=sim.id(1), text="two", history=True),
        Action(seq=4, ts=T0, id=sim.id(1), name=sim.id(1), text="three", history=True),
    )
    assert [o.events for o in rest] == [(Join(seq=5, ts=T0, id=sim.id(2), name=sim.id(2)),)]
    assert rest[0].recipients == {1, 2}
    assert rest[0].payload == f"*** {sim.id(2)} joined\n".encode()
    assert b"[history " in greeting.payload and f"<{sim.id(1)}> two\n".encode() in greeting.payload
    assert b"one" not in greeting.payload


def test_first_user_gets_welcome_and_own_join() -> None:
    sim = Sim()
    outs = sim.connect(1)
    assert sim.take(1) == [
        Welcome(id=sim.id(1), name=sim.id(1), idle_timeout=60, users=1),
        Join(seq=1, ts=T0, id=sim.id(1), name=sim.id(1)),
    ]
    assert len(outs) == 2


def test_history_zero_replays_nothing() -> None:
    sim = room_with(1, history=0)
    sim.send(1, "hello")
    sim.connect(2)
    assert [type(e) for e in sim.take(2)] == [Welcome, Join]


def test_ipv6_id() -> None:
    sim = Sim()
    sim.connect(1, host="2001:db8::1", port=4000)
    assert sim.room.name_of(1) == "[2001:db8::1]:4000"


def test_connecting_the_same_conn_twice_is_a_bug() -> None:
    sim = room_with(1)
    with pytest.raises(ValueError):
        sim.connect(1)


# --- chat and seq ----------------------------------------------------------------------------


def test_chat_goes_to_everyone_including_the_sender() -> None:
    sim = room_with(3)
    seq = sim.room.seq
    sim.now += 5
    outs = sim.send(2, "hello there")
    assert len(outs) == 1
    assert outs[0].recipients == {1, 2, 3}
    assert outs[0].events == (
        Message(seq=seq + 1, ts=T0 + 5, id=sim.id(2), name=sim.id(2), text="hello there"),
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


# --- rename ----------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["rename|Duke", "/nick Duke", "rename| Duke ", "/NICK   Duke"])
def test_rename_is_broadcast(line: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    outs = sim.send(1, line)
    assert len(outs) == 1 and outs[0].recipients == {1, 2}
    assert outs[0].events == (Rename(seq=seq + 1, ts=T0, id=sim.id(1), old=sim.id(1), new="Duke"),)
    assert outs[0].payload == f"*** {sim.id(1)} is now Duke\n".encode()
    assert sim.room.name_of(1) == "Duke"
    (chat,) = sim.send(1, "hi")
    assert chat.events[0].name == "Duke" and chat.events[0].id == sim.id(1)


BAD_NAMES = [
    "two words",
    "a" * 33,
    "Du\x1bke",
    "\x1b[31mDuke",
    "Du\x00ke",
    "Du\x07ke",
    "Du\x7fke",
    "Du\x85ke",
    "Du\x9bke",
    "a|b",
    "a:b",
    "Du\u200bke",
]


@pytest.mark.parametrize("form", ["rename|{}", "/nick {}"])
@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_name_is_refused_and_the_name_stays(form: str, name: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    events = only_to(sim.send(1, form.format(name)), 1)
    assert [type(e) for e in events] == [Error]
    assert events[0].code is ErrorCode.NAME_INVALID
    assert sim.room.name_of(1) == sim.id(1)
    assert sim.room.seq == seq


def test_empty_names() -> None:
    sim = room_with(1)
    assert only_to(sim.send(1, "rename|"), 1)[0].code is ErrorCode.NAME_INVALID
    assert only_to(sim.send(1, "/nick"), 1)[0].code is ErrorCode.BAD_USAGE
    assert only_to(sim.send(1, "/nick   "), 1)[0].code is ErrorCode.BAD_USAGE
    assert sim.room.name_of(1) == sim.id(1)


def test_a_taken_name_is_refused_whatever_its_case() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.send(3, "/nick Straße")
    seq = sim.room.seq
    for attempt in ["Duke", "duke", "DUKE", "dUkE", "STRASSE", "strasse"]:
        for line in [f"rename|{attempt}", f"/nick {attempt}"]:
            events = only_to(sim.send(2, line), 2)
            assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.NAME_TAKEN)]
    assert sim.room.name_of(2) == sim.id(2)
    assert sim.room.seq == seq


def test_rename_to_own_name_in_another_case() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    (out,) = sim.send(1, "rename|DUKE")
    assert out.recipients == {1, 2}
    assert out.events[0] == Rename(seq=sim.room.seq, ts=T0, id=sim.id(1), old="Duke", new="DUKE")
    assert sim.room.name_of(1) == "DUKE"
    assert only_to(sim.send(2, "rename|duke"), 2)[0].code is ErrorCode.NAME_TAKEN


def test_rename_to_the_same_name_is_only_a_notice() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    seq = sim.room.seq
    events = only_to(sim.send(1, "/nick Duke"), 1)
    assert [type(e) for e in events] == [Notice]
    assert sim.room.seq == seq


def test_a_name_is_free_again_after_a_rename_or_a_leave() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.send(1, "rename|Earl")
    assert broadcast_events(sim.send(2, "rename|duke"))[0].new == "duke"
    sim.send(1, "/quit")
    assert broadcast_events(sim.send(3, "rename|EARL"))[0].new == "EARL"


def test_nobody_can_take_an_address_name() -> None:
    sim = room_with(2)
    events = only_to(sim.send(2, f"rename|{sim.id(1)}"), 2)
    assert events[0].code is ErrorCode.NAME_INVALID


# --- private messages ------------------------------------------------------------------------


def test_private_message_to_sender_and_receiver_only() -> None:
    sim = room_with(3)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    seq = sim.room.seq
    outs = sim.send(1, "/msg zoë psst, a secret")  # names match without regard to case
    private = Private(ts=T0, sender=sim.id(1), recipient="Zoë", text="psst, a secret")
    assert sim.take(1) == [private]
    assert sim.take(2) == [private]
    assert sim.inbox[3] == []
    assert set().union(*(o.recipients for o in outs)) == {1, 2}
    assert outs[0].payload == f"[private] {sim.id(1)} -> Zoë: psst, a secret\n".encode()
    assert sim.room.seq == seq


def test_private_message_by_address_name_and_to_oneself() -> None:
    sim = room_with(2)
    outs = sim.send(1, f"/msg {sim.id(2)} hi")
    assert {c for o in outs for c in o.recipients} == {1, 2}
    outs = sim.send(1, f"/msg {sim.id(1)} note to self")
    assert len(outs) == 1 and outs[0].recipients == {1}  # once, not twice


def test_private_message_to_unknown_user() -> None:
    sim = room_with(2)
    events = only_to(sim.send(1, "/msg nobody hello"), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.UNKNOWN_USER)]
    assert sim.inbox[2] == []


@pytest.mark.parametrize(
    "line",
    ["/msg", "/msg   ", "/msg Zoë", "/msg Zoë    ", "/msg Zoë \x1b[31m", "/msg Zoë \x07\x07"],
)
def test_private_message_bad_usage(line: str) -> None:
    sim = room_with(2)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    assert sim.inbox[2] == []


def test_private_message_text_is_cleaned() -> None:
    sim = room_with(2)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    sim.send(1, "/msg Zoë \x1b]0;pwned\x07hi \x1b[1mthere\x1b[0m")
    assert sim.take(2)[0].text == "hi there"


# --- /me, /quit, /help ------------------------------------------------------------------------


def test_me_is_an_action_for_everyone() -> None:
    sim = room_with(2)
    sim.send(1, "rename|Duke")
    (out,) = sim.send(1, "/me waves \x1b[5mhello")
    assert out.recipients == {1, 2}
    assert out.events == (
        Action(seq=sim.room.seq, ts=T0, id=sim.id(1), name="Duke", text="waves hello"),
    )
    assert out.payload == b"* Duke waves hello\n"


@pytest.mark.parametrize("line", ["/me", "/me   ", "/me \x1b[0m"])
def test_me_without_text(line: str) -> None:
    sim = room_with(2)
    seq = sim.room.seq
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    assert sim.room.seq == seq


def test_quit_with_a_reason() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.inbox.clear()
    outs = sim.send(1, "/quit gotta \x1b[31mgo ")
    leave = Leave(
        seq=sim.room.seq, ts=T0, id=sim.id(1), name="Duke", reason=LeaveReason.QUIT, text="gotta go"
    )
    assert [o.events for o in outs] == [(leave,)]
    assert outs[0].recipients == {2, 3}
    assert outs[0].payload == b"*** Duke left (quit: gotta go)\n"
    assert sim.closed == [1]
    assert 1 not in sim.room
    assert {u.id for u in sim.room.who(sim.now).users} == {sim.id(2), sim.id(3)}
    assert sim.inbox[1] == []


def test_quit_without_a_reason_and_the_close_comes_last() -> None:
    sim = room_with(2)
    actions = sim.room.receive(1, "/quit", sim.now)
    assert actions[-1] == Close(1)
    outs = sim.apply(actions)
    assert outs[0].events[0].text is None
    assert outs[0].payload == f"*** {sim.id(1)} left\n".encode()


def test_the_last_user_quitting_gets_only_closed() -> None:
    sim = room_with(1)
    assert sim.send(1, "/quit") == []
    assert sim.closed == [1]
    assert len(sim.room) == 0


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
        "/help",
        "//",
    ]:
        assert command in HELP_TEXT
    assert sim.inbox[2] == []


# --- output format ---------------------------------------------------------------------------


def test_format_json_then_welcome_then_history_and_later_events_in_json() -> None:
    sim = room_with(2, history=5)
    sim.send(1, "earlier")
    sim.inbox.clear()
    outs = sim.send(2, "/format json")
    events = only_to(outs, 2)
    assert events[0] == FormatChanged(format=JSON)
    assert events[1] == Welcome(id=sim.id(2), name=sim.id(2), idle_timeout=60, users=2)
    assert events[2:] == [
        Message(seq=3, ts=T0, id=sim.id(1), name=sim.id(1), text="earlier", history=True)
    ]
    payload = b"".join(o.payload for o in outs)
    assert payload.startswith(b'{"type":"format","format":"json"}\n')
    assert [decode_json(line) for line in payload.decode().splitlines()] == events

    outs = sim.send(1, "later")
    by_recipients = {o.recipients: o.payload for o in outs}
    message = broadcast_events(outs)[0]
    assert by_recipients == {
        frozenset({1}): f"<{sim.id(1)}> later\n".encode(),
        frozenset({2}): (encode_json(message) + "\n").encode(),
    }
    (error,) = sim.send(2, "/bogus")
    assert decode_json(error.payload.decode()).code is ErrorCode.UNKNOWN_COMMAND


def test_format_is_case_insensitive_and_switches_back() -> None:
    sim = room_with(1)
    sim.send(1, "/format JSON")
    (out,) = sim.send(1, "hi")
    assert out.payload.startswith(b'{"type":"message"')
    outs = sim.send(1, "/format text")
    assert outs[0].payload == b"*** output format is now text\n"
    (out,) = sim.send(1, "hi")
    assert out.payload == f"<{sim.id(1)}> hi\n".encode()


@pytest.mark.parametrize("line", ["/format xml", "/format", "/format json please"])
def test_bad_format(line: str) -> None:
    sim = room_with(1)
    events = only_to(sim.send(1, line), 1)
    assert [(type(e), e.code) for e in events] == [(Error, ErrorCode.BAD_USAGE)]
    (out,) = sim.send(1, "still text")
    assert out.payload == f"<{sim.id(1)}> still text\n".encode()


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
        Message(seq=sim.room.seq, ts=T0, id=sim.id(1), name=sim.id(1), text=text),
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


# --- idle timeout ----------------------------------------------------------------------------


def test_idle_warning_then_kick() -> None:
    sim = room_with(3, idle_timeout=60)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    joined = sim.now
    assert sim.room.next_idle_check(2) == joined + 50

    sim.now = joined + 49.9
    assert sim.idle_check(2) == []
    sim.now = joined + 50
    events = only_to(sim.idle_check(2), 2)
    assert [(type(e), e.code) for e in events] == [(Notice, NoticeCode.IDLE_WARNING)]
    assert "10" in events[0].text
    assert sim.room.next_idle_check(2) == joined + 60
    sim.now = joined + 55
    assert sim.idle_check(2) == []  # warned once, not again

    seq = sim.room.seq
    sim.now = joined + 60
    sim.take(2)
    actions = sim.room.idle_check(2, sim.now)
    assert actions[-1] == Close(2)
    outs = sim.apply(actions)
    assert sim.take(2) == [
        Notice(code=NoticeCode.TIMEOUT, text="disconnected: no line from you for 60s")
    ]
    leave = Leave(seq=seq + 1, ts=sim.now, id=sim.id(2), name="Zoë", reason=LeaveReason.TIMEOUT)
    assert [o.events for o in outs if o.recipients == {1, 3}] == [(leave,)]
    assert b"*** Zo\xc3\xab timed out\n" in [o.payload for o in outs]
    assert sim.closed == [2]
    assert 2 not in sim.room
    assert sim.room.next_idle_check(2) is None
    assert sim.idle_check(2) == []


def test_activity_resets_the_idle_timer_and_the_warning() -> None:
    sim = room_with(1, idle_timeout=60)
    sim.now += 50
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING
    sim.now += 5
    sim.send(1, "I'm here")
    assert sim.room.next_idle_check(1) == sim.now + 50
    sim.now += 9
    assert sim.idle_check(1) == []  # 64 s after joining, 9 s after the line
    sim.now += 41
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING  # warned again
    sim.now += 10
    assert sim.apply(sim.room.idle_check(1, sim.now)) and sim.closed == [1]


@pytest.mark.parametrize("timeout", [20, 15, 5])
def test_no_warning_when_the_timeout_is_20s_or_less(timeout: float) -> None:
    sim = room_with(1, idle_timeout=timeout)
    assert sim.room.next_idle_check(1) == sim.now + timeout
    start = sim.now
    while sim.now < start + timeout - 0.5:
        sim.now += 0.5
        assert sim.idle_check(1) == []
    sim.now = start + timeout
    assert [e.code for e in sim.take(1)] == []
    sim.idle_check(1)
    assert [e.code for e in sim.take(1)] == [NoticeCode.TIMEOUT]
    assert sim.closed == [1]


def test_warning_when_the_timeout_is_just_over_20s() -> None:
    sim = room_with(1, idle_timeout=21)
    assert sim.room.next_idle_check(1) == sim.now + 11
    sim.now += 11
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING


def test_idle_timeout_zero_disables_it() -> None:
    sim = room_with(1, idle_timeout=0)
    assert sim.room.next_idle_check(1) is None
    sim.now += 10**7
    assert sim.idle_check(1) == []
    assert 1 in sim.room
    assert sim.take(1) == []
    sim.connect(2)
    assert sim.take(2)[0].idle_timeout == 0
    assert b"no idle timeout" in sim.apply(sim.room.receive(2, "/format text", sim.now))[1].payload


# --- admission -------------------------------------------------------------------------------


def test_max_clients() -> None:
    sim = room_with(2, max_clients=2)
    seq = sim.room.seq
    actions = sim.room.connect(3, LOCAL, 5003, sim.now)
    assert actions[-1] == Close(3)
    outs = sim.apply(actions)
    assert [o.recipients for o in outs] == [frozenset({3})]
    assert [(type(e), e.code) for e in outs[0].events] == [(Notice, NoticeCode.SERVER_FULL)]
    assert outs[0].payload.startswith(b"*** server full")
    assert 3 not in sim.room and len(sim.room) == 2
    assert sim.room.seq == seq
    assert sim.inbox[1] == []
    assert sim.send(3, "hello?") == []
    sim.disconnect(1)
    sim.connect(4)
    assert 4 in sim.room


def test_connections_per_ip_are_capped_but_loopback_is_exempt() -> None:
    sim = Sim(max_per_ip=2)
    sim.connect(1, host=REMOTE)
    sim.connect(2, host=REMOTE)
    outs = sim.connect(3, host=REMOTE)
    assert 3 not in sim.room and sim.closed == [3]
    assert outs[0].events[0].code is NoticeCode.SERVER_FULL
    sim.connect(4, host="198.51.100.7")  # another address is fine
    assert 4 in sim.room
    for conn, host in enumerate(
        [
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1",
            "::1",
            "::1",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:127.0.0.1",
            "127.1.2.3",
        ],
        start=10,
    ):
        sim.connect(conn, host=host)
        assert conn in sim.room, host
    sim.disconnect(1)
    sim.connect(5, host=REMOTE)  # a slot from that address was freed
    assert 5 in sim.room
    sim.connect(6, host=REMOTE)
    assert 6 not in sim.room


def test_per_ip_cap_is_counted_by_address_not_by_port() -> None:
    sim = Sim(max_per_ip=1)
    sim.connect(1, host=REMOTE, port=1000)
    sim.connect(2, host=REMOTE, port=2000)
    assert 1 in sim.room and 2 not in sim.room


# --- shutdown and disconnects ----------------------------------------------------------------


def test_shutdown_tells_everyone_once_and_closes_all() -> None:
    sim = room_with(4)
    sim.send(3, "/format json")
    sim.inbox.clear()
    seq = sim.room.seq
    outs = sim.apply(sim.room.shutdown(sim.now))
    notice = Notice(code=NoticeCode.SHUTDOWN, text="the server is shutting down")
    for conn in range(1, 5):
        assert sim.take(conn) == [notice]
    assert len(outs) == 2  # one payload per format in use
    assert sorted(sim.closed) == [1, 2, 3, 4]
    assert len(sim.room) == 0 and sim.room.who(sim.now).users == ()
    assert sim.room.seq == seq
    assert sim.disconnect(1) == []


@pytest.mark.parametrize("reason", list(LeaveReason))
def test_disconnect_tells_everyone_else_and_is_idempotent(reason: LeaveReason) -> None:
    sim = room_with(3)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    seq = sim.room.seq
    outs = sim.disconnect(2, reason)
    assert len(outs) == 1 and outs[0].recipients == {1, 3}
    assert outs[0].events == (Leave(seq=seq + 1, ts=T0, id=sim.id(2), name="Zoë", reason=reason),)
    assert outs[0].payload.startswith(b"*** Zo\xc3\xab ")
    assert sim.closed == []  # the caller closes what it reported gone
    assert sim.disconnect(2, reason) == []
    assert sim.disconnect(2, LeaveReason.ERROR) == []
    assert sim.room.seq == seq + 1
    assert sim.disconnect(42) == []


# --- fan-out ---------------------------------------------------------------------------------


def test_a_broadcast_is_encoded_once_per_format_in_use() -> None:
    sim = room_with(5)
    sim.send(2, "/format json")
    sim.send(4, "/format json")
    for line in ["hello", "/me waves", "rename|Duke"]:
        outs = sim.send(1, line)
        assert len(outs) == 2
        assert {o.recipients for o in outs} == {frozenset({1, 3, 5}), frozenset({2, 4})}
        assert len({o.events for o in outs}) == 1  # the same event for both
    sim.send(2, "/format text")
    sim.send(4, "/format text")
    (out,) = sim.send(1, "all text again")
    assert out.recipients == {1, 2, 3, 4, 5}


def test_every_format_change_combination_keeps_one_payload_per_format() -> None:
    sim = room_with(2)
    sim.send(1, "/format json")
    sim.send(2, "/format json")
    (out,) = sim.send(1, "all json")
    assert out.recipients == {1, 2}
    assert out.payload.startswith(b'{"type":"message"')
    outs = sim.disconnect(1)
    assert len(outs) == 1 and outs[0].payload.startswith(b'{"type":"leave"')


# --- hypothesis: a random life of the room -------------------------------------------------

HOSTS = ["127.0.0.1", "::1", REMOTE, "198.51.100.7"]
LINES = st.one_of(
    st.sampled_from(
        [
            "rename|Duke",
            "rename|duke",
            "/nick DUKE",
            "/nick dUKE",
            "rename|Zoë",
            "/nick ZOË",
            "rename|zoë",
            "/nick Straße",
            "rename|STRASSE",
            "rename|strasse",
            "rename|bad name",
            "rename|x\x1by",
            "rename|",
            "/nick",
            "who",
            "/who",
            "/names",
            "/msg duke hi",
            "/msg ZOË hey",
            "/msg nobody x",
            "/msg 127.0.0.1:10001 psst",
            "/msg",
            "/me waves",
            "/me",
            "/quit",
            "/quit bye",
            "/format json",
            "/format text",
            "/format xml",
            "/help",
            "/bogus",
            "//slash",
            "",
            "   ",
            "hello",
            "\x1b[31mred",
            "\x1b[0m",
        ]
    ),
    st.text(max_size=20),
    st.just(LineTooLong(2048)),
)


class RoomMachine(RuleBasedStateMachine):
    """Random connects, lines, disconnects, timer ticks and shutdowns against a model."""

    TIMEOUT = 30.0

    @initialize()
    def start(self) -> None:
        self.rules = RoomRules.from_config(
            ServerConfig(idle_timeout=self.TIMEOUT, history=3, max_clients=6, max_per_ip=2)
        )
        self.room = Room(self.rules)
        self.now = T0
        self.next_conn = 1
        self.conns: list[int] = []  # every conn ever offered to the room
        self.live: set[int] = set()  # connected and not gone
        self.ids: dict[int, str] = {}
        self.hosts: dict[int, str] = {}
        self.last_active: dict[int, float] = {}
        self.warned: set[int] = set()
        self.wire = Wire()
        self.seq = 0

    def apply(self, actions: list, actor: int | None) -> list:
        """Check ``actions`` against the model and carry them out; return the broadcasts."""
        live_before = set(self.live)
        outs, closed = self.wire.expand(actions)
        for conn in closed:
            self.live.discard(conn)
        broadcasts: list[p.Event] = []
        fanout: dict[int, list[Out]] = defaultdict(list)
        private_recipients: set[int] = set()  # the sender's copy and the receiver's
        for action in outs:
            assert set(action.recipients) <= live_before | {actor}
            for event in action.events:
                if isinstance(event, BROADCAST_TYPES) and not getattr(event, "history", False):
                    if not broadcasts or broadcasts[-1] != event:
                        broadcasts.append(event)
                    fanout[event.seq].append(action)
                elif isinstance(event, Private):
                    private_recipients |= action.recipients
                    for conn in action.recipients:
                        assert self.room.name_of(conn) in {event.sender, event.recipient}
                elif not (isinstance(event, Notice) and event.code is NoticeCode.SHUTDOWN):
                    assert action.recipients == {actor}, event
        if private_recipients:
            assert actor in private_recipients, "the sender of a private message sees it"
        for event in broadcasts:
            self.seq += 1
            assert event.seq == self.seq
            delivers = fanout[event.seq]
            recipients = [c for d in delivers for c in d.recipients]
            assert len(recipients) == len(set(recipients))  # nobody gets it twice
            assert set(recipients) == self.live  # everyone still here gets it
            assert len(delivers) == len({self.wire.formats.get(c, TEXT) for c in self.live})
        return broadcasts

    def gone(self, conn: int, was_live: bool) -> None:
        self.live.discard(conn)
        self.warned.discard(conn)
        if was_live and not self.live:
            self.seq += 1  # the last one out: its leave takes a seq that nobody sees

    @rule(host=st.sampled_from(HOSTS))
    def connect(self, host: str) -> None:
        conn, self.next_conn = self.next_conn, self.next_conn + 1
        port = 10000 + conn
        self.conns.append(conn)
        loopback = host in ("127.0.0.1", "::1")
        same_host = sum(1 for c in self.live if self.hosts[c] == host)
        expect_admitted = len(self.live) < self.rules.max_clients and (
            loopback or same_host < self.rules.max_per_ip
        )
        actions = self.room.connect(conn, host, port, self.now)
        admitted = Close(conn) not in actions
        assert admitted == expect_admitted
        if admitted:
            self.live.add(conn)
            self.ids[conn] = peer_id(host, port)
            self.hosts[conn] = host
            self.last_active[conn] = self.now
        broadcasts = self.apply(actions, conn)
        assert [type(e) for e in broadcasts] == ([Join] if admitted else [])

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), line=LINES)
    def send(self, data: st.DataObject, line: str | LineTooLong) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        was_live = conn in self.live
        actions = self.room.receive(conn, line, self.now)
        if not was_live:
            assert actions == []
            return
        self.last_active[conn] = self.now
        self.warned.discard(conn)
        self.apply(actions, conn)
        if conn not in self.live:
            self.gone(conn, was_live)

    @precondition(lambda self: self.conns)
    @rule(data=st.data(), reason=st.sampled_from(LeaveReason))
    def disconnect(self, data: st.DataObject, reason: LeaveReason) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        was_live = conn in self.live
        actions = self.room.disconnect(conn, reason, self.now)
        self.live.discard(conn)
        broadcasts = self.apply(actions, None)
        self.gone(conn, was_live)
        if was_live and self.live:
            assert [(type(e), e.reason, e.id) for e in broadcasts] == [
                (Leave, reason, self.ids[conn])
            ]
        else:
            assert broadcasts == []

    @rule(seconds=st.floats(0, 25))
    def tick(self, seconds: float) -> None:
        self.now += seconds

    @precondition(lambda self: self.conns)
    @rule(data=st.data())
    def idle_check(self, data: st.DataObject) -> None:
        conn = data.draw(st.sampled_from(self.conns))
        was_live = conn in self.live
        actions = self.room.idle_check(conn, self.now)
        if not was_live:
            assert actions == []
            return
        idle = self.now - self.last_active[conn]
        to_conn = [
            e for a in actions if isinstance(a, Deliver) and conn in a.recipients for e in a.events
        ]
        if idle >= self.TIMEOUT:
            assert [e.code for e in to_conn] == [NoticeCode.TIMEOUT]
            assert actions[-1] == Close(conn)
        elif idle >= self.TIMEOUT - 10 and conn not in self.warned:
            assert [e.code for e in to_conn] == [NoticeCode.IDLE_WARNING]
            self.warned.add(conn)
        else:
            assert actions == []
        broadcasts = self.apply(actions, conn)
        if idle >= self.TIMEOUT:
            expected = [(Leave, LeaveReason.TIMEOUT)] if self.live else []
            assert [(type(e), e.reason) for e in broadcasts] == expected
            self.gone(conn, was_live)

    @rule()
    def shutdown(self) -> None:
        live = set(self.live)
        actions = self.room.shutdown(self.now)
        assert {a.conn for a in actions if isinstance(a, Close)} == live
        assert self.apply(actions, None) == []
        for conn in live:
            self.gone(conn, was_live=False)  # everyone leaves at once: no leave events

    @invariant()
    def who_is_exactly_who_is_here(self) -> None:
        users = self.room.who(self.now).users
        assert sorted(u.id for u in users) == sorted(self.ids[c] for c in self.live)
        keys = [name_key(u.name) for u in users]
        assert len(keys) == len(set(keys)), users
        for user in users:
            assert user.name == user.id or name_problem(user.name) is None
        assert len(self.room) == len(self.live)
        assert all(c in self.room for c in self.live)
        assert self.room.seq == self.seq
        assert set(self.wire.subscribed) == self.live  # broadcasts reach exactly who is here

    @invariant()
    def idle_timers_follow_the_model(self) -> None:
        for conn in self.conns:
            deadline = self.room.next_idle_check(conn)
            if conn not in self.live:
                assert deadline is None
            elif conn in self.warned:
                assert deadline == self.last_active[conn] + self.TIMEOUT
            else:
                assert deadline == self.last_active[conn] + self.TIMEOUT - 10


RoomMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestRoomMachine = RoomMachine.TestCase


def test_the_room_module_documents_that_it_needs_no_lock() -> None:
    assert "lock" in (Room.__doc__ or "") and "event loop" in (Room.__doc__ or "")
    assert room_module.__doc__ and "No I/O" in room_module.__doc__
