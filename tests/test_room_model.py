"""A random life of the room against a model: Hypothesis drives connects, lines, disconnects,
timer ticks and shutdowns, and every step's actions are checked on the wire of
:mod:`tests.room_helpers` and against what the model expects.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chatroom import protocol as p
from chatroom.protocol import (
    Join,
    Leave,
    LeaveReason,
    Notice,
    NoticeCode,
    Private,
    name_key,
    name_problem,
)
from chatroom.server.core.actions import Close, Deliver
from chatroom.server.core.addresses import peer_id
from chatroom.server.core.codec import LineTooLong
from chatroom.server.core.room import Room
from tests.room_helpers import BROADCAST_TYPES, REMOTE, T0, TEXT, Out, Wire, room_rules

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
        self.rules = room_rules(idle_timeout=self.TIMEOUT, history=3, max_clients=6, max_per_ip=2)
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
