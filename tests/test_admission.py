"""Who may come in and how loudly, called directly with the time passed in: the exempt
networks, the per-address cap and connection throttle, and quiet admission under churn."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom import protocol as p
from chatroom.server.config import RoomRules
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import (
    Admitted,
    Append,
    Close,
    Deliver,
    Left,
    TurnedAway,
    Unsubscribe,
)
from chatroom.server.core.admission import Admission, Cause, Churn, ConnectThrottle, address_of
from chatroom.server.core.room import Room
from tests.room_helpers import BROADCAST_TYPES, Sim, room_rules

BROADCAST = BROADCAST_TYPES


def rules(**overrides: object) -> RoomRules:
    return room_rules(**{"idle_timeout": 0, **overrides})


# --- addresses and exemptions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("::ffff:203.0.113.5", "203.0.113.5"),  # IPv4-mapped counts as IPv4
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),  # an IPv6 address counts by its /64
        ("2001:db8:1:2::9", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::9", "2001:db8:1:3::/64"),
        ("?", "?"),  # not an IP (a reset socket has no peer name): counts as itself
    ],
)
def test_the_address_a_host_counts_as(host: str, address: str) -> None:
    assert address_of(host, 64)[0] == address


def test_loopback_is_exempt_by_default_and_nothing_else() -> None:
    admission = Admission(rules())
    for host in ("127.0.0.1", "127.0.0.2", "127.255.0.9", "::1", "::ffff:127.0.0.1"):
        assert admission.address(host)[1], host
    for host in ("203.0.113.5", "10.0.0.1", "::2", "2001:db8::1", "?"):
        assert not admission.address(host)[1], host


def test_the_exempt_set_can_be_emptied_or_replaced() -> None:
    assert not Admission(rules(exempt_ip=())).address("127.0.0.1")[1]
    admission = Admission(rules(exempt_ip=("10.1.0.0/16", "2001:db8::/32")))
    assert admission.address("10.1.200.3")[1] and admission.address("2001:db8:5::1")[1]
    assert not admission.address("10.2.0.1")[1] and not admission.address("127.0.0.1")[1]


# --- the connection throttle -------------------------------------------------------------


def test_throttle_lets_a_burst_through_then_the_rate() -> None:
    throttle = ConnectThrottle(per_minute=6, burst=3, size=100)
    assert [throttle.wait("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert throttle.wait("a", 0.0) == pytest.approx(10.0)
    assert throttle.wait("b", 0.0) == 0.0  # every address has its own bucket
    assert throttle.wait("a", 4.0) == pytest.approx(6.0)  # asking again takes nothing
    assert throttle.wait("a", 10.0) == 0.0
    assert throttle.wait("a", 10.0) == pytest.approx(10.0)


def test_throttle_forgets_an_address_once_its_bucket_is_full_again() -> None:
    throttle = ConnectThrottle(per_minute=60, burst=2, size=100)  # a token a second
    throttle.wait("a", 0.0)
    throttle.wait("b", 0.5)
    assert len(throttle) == 2
    throttle.wait("c", 1.2)  # "a" is full again since 1.0: forgotten, which changes nothing
    assert len(throttle) == 2  # "b" and "c"
    throttle.wait("d", 60.0)
    assert len(throttle) == 1


@settings(max_examples=50, deadline=None)
@given(addresses=st.lists(st.integers(0, 5000), min_size=1, max_size=400))
def test_throttle_table_is_bounded_whatever_addresses_come(addresses: list[int]) -> None:
    throttle = ConnectThrottle(per_minute=1, burst=2, size=50)
    for n, address in enumerate(addresses):
        throttle.wait(f"198.51.{address // 256}.{address % 256}", n * 0.001)
        assert len(throttle) <= 50


def test_a_throttled_address_is_forgotten_early_only_when_the_table_is_full() -> None:
    throttle = ConnectThrottle(per_minute=1, burst=1, size=3)
    throttle.wait("attacker", 0.0)
    assert throttle.wait("attacker", 0.0) > 0
    for n in range(2):
        throttle.wait(f"other{n}", 0.0)
    assert throttle.wait("attacker", 0.0) > 0  # still remembered: the table holds 3
    throttle.wait("other2", 0.0)  # a fourth address: the least recently heard goes
    assert throttle.wait("other0", 0.0) == 0.0  # it was forgotten (a fresh burst)


# --- churn ---------------------------------------------------------------------------------


def test_quick_exits_make_the_room_churn_and_it_calms_down() -> None:
    churn = Churn(window=1.0, burst=3, rate=0.5)
    for conn in range(3):
        assert not churn.churning(0.0)
        churn.arrived(conn, 0.0)
        churn.left(conn, connected_at=0.0, spoke=False, now=0.0)
    assert churn.churning(0.0)
    assert churn.churning(1.9)
    assert not churn.churning(2.0)  # a token came back


@pytest.mark.parametrize(
    ("spoke", "stayed"), [(True, 0.1), (False, 1.0), (True, 5.0)], ids=["spoke", "stayed", "both"]
)
def test_who_spoke_or_stayed_is_no_quick_exit(spoke: bool, stayed: float) -> None:
    churn = Churn(window=1.0, burst=1, rate=0.5)
    churn.left(1, connected_at=0.0, spoke=spoke, now=stayed)
    assert not churn.churning(stayed)


def test_once_quick_exits_were_seen_silent_newcomers_count_too() -> None:
    churn = Churn(window=1.0, burst=4, rate=0.5)
    churn.left(1, connected_at=0.0, spoke=False, now=0.0)  # 3 tokens left
    churn.arrived(2, 0.0)
    churn.arrived(3, 0.0)
    assert not churn.churning(0.0)
    churn.arrived(4, 0.0)
    assert churn.churning(0.0)  # a wave: 3 silent newcomers against 3 tokens
    churn.spoke(2)
    assert not churn.churning(0.0)
    assert not Churn(window=1.0, burst=1, rate=1).churning(0.0)  # never churned: never


def test_churn_window_zero_turns_it_off() -> None:
    churn = Churn(window=0.0, burst=1, rate=0.5)
    for conn in range(5):
        churn.arrived(conn, 0.0)
        churn.left(conn, connected_at=0.0, spoke=False, now=0.0)
    assert not churn.churning(0.0)


# --- the room: refusals --------------------------------------------------------------------


class Peers(Sim):
    """The shared Sim, numbering its connections itself: ``arrive`` returns the new one."""

    def __init__(self, room: Room) -> None:
        super().__init__(room=room)
        self._next = 0

    @property
    def received(self) -> dict[int, list[p.Event]]:
        return self.inbox

    @property
    def reports(self) -> list[object]:
        return self.wire.reports

    @property
    def subscribed(self) -> dict[int, p.OutputFormat]:
        return self.wire.subscribed

    def run(self, actions: list) -> list:
        """Carry out the output actions (a shared room's appends are the caller's)."""
        self.apply([a for a in actions if not isinstance(a, Append)])
        return actions

    def arrive(self, host: str = "127.0.0.1") -> int:
        self._next += 1
        self.run(self.room.connect(self._next, host, 40000 + self._next, self.now))
        return self._next

    def send(self, conn: int, line: str) -> None:  # type: ignore[override]
        self.run(self.room.receive(conn, line, self.now))

    def leave(self, conn: int) -> None:
        self.run(self.room.disconnect(conn, p.LeaveReason.EOF, self.now))

    def broadcasts(self, conn: int) -> list[p.Event]:
        return [e for e in self.received.get(conn, []) if isinstance(e, BROADCAST)]

    def texts(self, conn: int) -> list[str]:
        return [getattr(e, "text", "") for e in self.received.get(conn, [])]


def test_a_throttled_newcomer_is_told_when_to_come_back_and_costs_no_seq() -> None:
    peers = Peers(Room(rules(exempt_ip=(), connect_burst=2, connect_rate=6)))
    watcher = peers.arrive("198.51.100.1")
    for _ in range(2):
        peers.leave(peers.arrive("203.0.113.5"))
    seq, seen = peers.room.seq, len(peers.received[watcher])
    actions = peers.room.connect(99, "203.0.113.5", 5000, peers.now)
    assert actions == [
        Deliver.one(
            99,
            p.OutputFormat.TEXT,
            p.Notice(
                code=p.NoticeCode.SERVER_FULL,
                text="too many new connections from your address; try again in 10s",
            ),
        ),
        TurnedAway(
            99, "too many new connections from your address; try again in 10s", Cause.THROTTLED
        ),
        Close(99),
    ]
    assert peers.room.seq == seq and 99 not in peers.room
    assert len(peers.received[watcher]) == seen
    peers.now += 10
    assert peers.arrive("203.0.113.5") in peers.room


def test_loopback_users_are_not_throttled_unless_the_exempt_set_is_empty() -> None:
    peers = Peers(Room(rules(connect_burst=1, max_per_ip=1)))
    assert all(peers.arrive("127.0.0.2") in peers.room for _ in range(5))
    peers = Peers(Room(rules(exempt_ip=(), connect_burst=1, max_per_ip=5)))
    assert peers.arrive("127.0.0.2") in peers.room
    assert peers.arrive("127.0.0.2") not in peers.room
    assert peers.reports[-1].cause is Cause.THROTTLED


def test_the_per_address_cap_applies_to_127_0_0_2_when_nothing_is_exempt() -> None:
    peers = Peers(Room(rules(exempt_ip=(), max_per_ip=2)))
    first, second = peers.arrive("127.0.0.2"), peers.arrive("127.0.0.2")
    third = peers.arrive("127.0.0.2")
    assert first in peers.room and second in peers.room and third not in peers.room
    assert peers.texts(third) == ["too many connections from your address (at most 2)"]
    assert peers.reports[-1].cause is Cause.PER_ADDRESS
    assert peers.arrive("127.0.0.3") in peers.room


def test_a_newcomer_refused_by_the_cap_takes_no_throttle_token() -> None:
    peers = Peers(Room(rules(exempt_ip=(), max_per_ip=1, connect_burst=2, connect_rate=1)))
    first = peers.arrive("203.0.113.5")
    for _ in range(5):
        assert peers.arrive("203.0.113.5") not in peers.room  # the cap, not the throttle
    assert {r.cause for r in peers.reports if isinstance(r, TurnedAway)} == {Cause.PER_ADDRESS}
    peers.leave(first)
    assert peers.arrive("203.0.113.5") in peers.room  # the second token was still there


def test_an_ipv6_subscriber_s_64_shares_one_cap() -> None:
    peers = Peers(Room(rules(exempt_ip=(), max_per_ip=2)))
    assert peers.arrive("2001:db8:0:1::a") in peers.room
    assert peers.arrive("2001:db8:0:1::b") in peers.room
    assert peers.arrive("2001:db8:0:1:ffff::c") not in peers.room
    assert peers.arrive("2001:db8:0:2::a") in peers.room


# --- the room: quiet admission under churn -------------------------------------------------


def churning_room(**overrides: object) -> tuple[Peers, int]:
    """A room with a JSON watcher whose churn bucket is empty."""
    peers = Peers(Room(rules(churn_burst=3, churn_rate=0.5, **overrides)))
    watcher = peers.arrive()
    peers.send(watcher, "/format json")
    for _ in range(3):
        peers.leave(peers.arrive())
    return peers, watcher


def test_a_churning_room_admits_quietly_and_a_quiet_exit_costs_nothing() -> None:
    peers, watcher = churning_room()
    seq, seen = peers.room.seq, peers.broadcasts(watcher)
    quiet = peers.arrive()
    name = f"127.0.0.1:{40000 + quiet}"
    welcome = peers.received[quiet][0]
    assert isinstance(welcome, p.Welcome) and welcome.users == 2  # itself included
    assert quiet in peers.subscribed  # it receives the room's events from here on
    assert peers.reports[-1] == Admitted(quiet, name, 2, quiet=True)
    assert peers.room.seq == seq and peers.broadcasts(watcher) == seen
    assert [u.id for u in peers.room.who(peers.now).users] == [f"127.0.0.1:{40000 + watcher}"]
    actions = peers.room.disconnect(quiet, p.LeaveReason.EOF, peers.now)
    assert actions == [Unsubscribe(quiet), Left(quiet, name, p.LeaveReason.EOF, quiet=True)]
    assert peers.room.seq == seq


def test_a_quiet_newcomer_is_announced_with_its_first_line() -> None:
    peers, watcher = churning_room()
    seq = peers.room.seq
    quiet = peers.arrive()
    peers.send(quiet, "hello")
    join, message = peers.broadcasts(watcher)[-2:]
    assert isinstance(join, p.Join) and join.seq == seq + 1
    assert isinstance(message, p.Message) and message.seq == seq + 2
    assert message.text == "hello"
    # it saw its own join, then its line; and it leaves like anyone
    assert peers.broadcasts(quiet)[-2:] == [join, message]
    peers.leave(quiet)
    assert isinstance(peers.broadcasts(watcher)[-1], p.Leave)


def test_a_quiet_newcomer_is_announced_when_its_window_is_over() -> None:
    peers, watcher = churning_room(churn_window=1.0)
    quiet = peers.arrive()
    assert peers.room.next_idle_check(quiet) == peers.now + 1.0  # even with no idle timeout
    assert peers.run(peers.room.idle_check(quiet, peers.now + 0.5)) == []
    peers.now += 1.0
    peers.run(peers.room.idle_check(quiet, peers.now))
    assert isinstance(peers.broadcasts(watcher)[-1], p.Join)
    assert peers.room.next_idle_check(quiet) is None
    peers.leave(quiet)
    assert isinstance(peers.broadcasts(watcher)[-1], p.Leave)


def test_quiet_admission_keeps_the_idle_timer() -> None:
    peers, _ = churning_room(idle_timeout=30, churn_window=1.0)
    quiet = peers.arrive()
    assert peers.room.next_idle_check(quiet) == peers.now + 1.0
    peers.run(peers.room.idle_check(quiet, peers.now + 1.0))
    assert peers.room.next_idle_check(quiet) == peers.now + 30 - 10  # the idle warning


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.sampled_from(["connect", "speak", "leave", "tick"]), max_size=80))
def test_a_json_watcher_sees_every_seq_once_in_order_whatever_the_churn(steps: list[str]) -> None:
    peers = Peers(Room(rules(churn_burst=2, churn_rate=0.5, churn_window=1.0)))
    watcher = peers.arrive()
    peers.send(watcher, "/format json")
    live: list[int] = []
    for step in steps:
        if step == "connect":
            live.append(peers.arrive())
        elif step == "speak" and live:
            peers.send(live[-1], "hi")
        elif step == "leave" and live:
            peers.leave(live.pop(0))
        elif step == "tick":
            peers.now += 0.6
            for conn in live:
                peers.run(peers.room.idle_check(conn, peers.now))
    seqs = [e.seq for e in peers.broadcasts(watcher) if not getattr(e, "history", False)]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert seqs[-1] == peers.room.seq
    users = {u.id for u in peers.room.who(peers.now).users}
    joined = {e.id for e in peers.broadcasts(watcher) if isinstance(e, p.Join)}
    left = {e.id for e in peers.broadcasts(watcher) if isinstance(e, p.Leave)}
    assert users == (joined - left)  # who lists exactly the announced who have not left


# --- a shared room --------------------------------------------------------------------------


class Ledger:
    """Sequences appends for one shared-room node, as the Redis ledger does."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.seq = 0
        self.appended: list[p.BroadcastEvent] = []

    def settle(self, peers: Peers, actions: list) -> None:
        pending = [a for a in peers.run(actions) if isinstance(a, Append)]
        while pending:
            append = pending.pop(0)
            self.seq += 1
            event = p.replace(append.event, seq=self.seq)
            self.appended.append(event)
            sequenced = i.Sequenced(event, self.room.node)
            pending += [a for a in peers.run(self.room.handle(sequenced, peers.now))
                        if isinstance(a, Append)]  # fmt: skip


def test_a_shared_room_never_tells_the_ledger_of_a_quiet_exit() -> None:
    room = Room.shared(rules(churn_burst=1, churn_rate=0.5), "a")
    peers, ledger = Peers(room), Ledger(room)
    peers._next = 1
    ledger.settle(peers, room.connect(1, "127.0.0.1", 1, peers.now))
    ledger.settle(peers, room.receive(1, "/format json", peers.now))
    ledger.settle(peers, room.connect(2, "127.0.0.1", 2, peers.now))
    ledger.settle(peers, room.disconnect(2, p.LeaveReason.EOF, peers.now))  # the quick exit
    kinds = [type(e).__name__ for e in ledger.appended]
    ledger.settle(peers, room.connect(3, "127.0.0.1", 3, peers.now))  # quiet
    ledger.settle(peers, room.disconnect(3, p.LeaveReason.EOF, peers.now))
    assert [type(e).__name__ for e in ledger.appended] == kinds  # nothing more appended
    # A quiet newcomer's first line appends its join, and the line follows it.
    ledger.settle(peers, room.connect(4, "127.0.0.1", 4, peers.now))
    resynced = i.Resynced([("127.0.0.1:1", "127.0.0.1:1", "a")], ledger.seq, [], "e1")
    assert room.handle(resynced, peers.now) == []
    ledger.settle(peers, room.receive(4, "early words", peers.now))
    join, message = ledger.appended[-2:]
    assert isinstance(join, p.Join) and join.id == "127.0.0.1:4"
    assert isinstance(message, p.Message) and message.text == "early words"
    events = [json.loads(p.encode_json(e)) for e in peers.broadcasts(1)]
    assert [e["seq"] for e in events] == list(range(events[0]["seq"], events[-1]["seq"] + 1))
