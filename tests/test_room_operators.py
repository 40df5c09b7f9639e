"""/oper in the I/O-free room (issue 18, item 2): the check is asked of the adapter and
answered later; guessing is bounded per connection, per address and for the room."""

from __future__ import annotations

from chatroom.protocol import Error, ErrorCode, Notice
from chatroom.server.core import inputs as i
from chatroom.server.core.actions import CheckOperator, Moderated
from chatroom.server.core.passwords import check_password, hash_password, parse_hash
from chatroom.server.core.room import Room
from tests.room_helpers import LOCAL, REMOTE, Sim, only_to, room_rules

OPS = {"boss": ("boss", hash_password("s3cret"))}
WRONG = "wrong operator name or password"
BUSY = "the server is busy checking other /oper attempts; try again in a moment"


def oper_room(n: int = 1, **rules: object) -> Sim:
    sim = Sim(Room(room_rules(**rules), operators=OPS))
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def told(sim: Sim, conn: int) -> list[str]:
    """The notices and errors ``conn`` was told since the last look, as their texts."""
    events = sim.take(conn)
    return [e.message if isinstance(e, Error) else e.text for e in events
            if isinstance(e, Error | Notice)]  # fmt: skip


def test_the_check_is_asked_of_the_adapter_and_answered_when_it_comes_back() -> None:
    sim = oper_room(2)
    actions = sim.room.receive(1, "/oper boss s3cret", sim.now)
    [check] = actions  # nothing else: nothing is told until the answer
    assert check == CheckOperator(1, "boss", "s3cret", OPS["boss"][1])
    assert "s3cret" not in repr(check) and "s3cret" not in str(check)
    assert sim.room.moderation.checking == {1: LOCAL}
    answer = sim.room.handle(i.OperatorChecked(1, "boss", ok=True), sim.now)
    sim.apply(answer)
    assert told(sim, 1) == ["you are now an operator (boss); /help lists your commands"]
    assert sim.room.state.member(1).operator and sim.room.moderation.checking == {}


def test_a_second_oper_while_one_is_checked_is_refused_at_once() -> None:
    sim = oper_room(1)
    sim.hold_checks = True
    assert sim.send(1, "/oper boss wrong") == [] and len(sim.checks) == 1
    events = only_to(sim.send(1, "/oper boss s3cret"), 1)
    assert [(e.code, e.message) for e in events] == [
        (ErrorCode.NOT_OPERATOR, "your last /oper is still being checked; wait for its answer")
    ]
    assert len(sim.checks) == 1  # the second was not asked for
    sim.take(1)
    sim.run_checks()
    assert told(sim, 1) == [WRONG]
    sim.send(1, "/ping")  # the room goes on as before
    assert told(sim, 1) == ["pong"]


def test_a_name_that_is_no_operators_is_checked_against_a_decoy_of_the_same_cost() -> None:
    sim = oper_room(1)
    [check] = sim.room.receive(1, "/oper nobody s3cret", sim.now)
    decoy, real = parse_hash(check.stored), parse_hash(OPS["boss"][1])
    assert (decoy.n, decoy.r, decoy.p) == (real.n, real.r, real.p)
    assert (len(decoy.salt), len(decoy.digest)) == (len(real.salt), len(real.digest))
    assert not check_password("s3cret", check.stored) and not check_password("", check.stored)
    sim.apply(sim.room.handle(i.OperatorChecked(1, "nobody", ok=False), sim.now))
    assert told(sim, 1) == [WRONG]  # what a wrong password for boss gets


def test_a_right_password_for_a_name_that_is_no_operators_makes_nobody_an_operator() -> None:
    sim = oper_room(1)
    sim.send(1, "/oper nobody s3cret")
    assert told(sim, 1) == [WRONG] and not sim.room.state.member(1).operator


def test_wrong_opers_are_limited_per_address_across_reconnects_exempt_or_not() -> None:
    sim = oper_room(0, oper_fail_burst=3, oper_fail_rate=6.0)  # a token every 10 s
    for conn in range(1, 4):  # loopback: exempt from the connection limits, not from this
        sim.connect(conn)
        sim.send(conn, "/oper boss wrong")
        assert told(sim, conn)[-1] == WRONG
        sim.disconnect(conn)
    sim.connect(4)
    sim.send(4, "/oper boss s3cret")  # not even checked
    assert told(sim, 4)[-1] == "too many wrong /oper attempts from your address; try again in 10s"
    assert not sim.room.state.member(4).operator
    sim.connect(5, REMOTE)  # another address has its own burst
    sim.send(5, "/oper boss s3cret")
    assert sim.room.state.member(5).operator
    sim.now += 10
    sim.send(4, "/oper boss s3cret")
    assert sim.room.state.member(4).operator


def test_a_right_oper_gives_its_addresss_token_back() -> None:
    sim = oper_room(3, oper_fail_burst=1, oper_fail_rate=1.0)
    for conn in (1, 2, 3):  # one token, taken and given back each time
        sim.send(conn, "/oper boss s3cret")
        assert sim.room.state.member(conn).operator


def test_the_per_connection_wait_is_kept() -> None:
    sim = oper_room(1)
    sim.send(1, "/oper boss wrong")
    sim.send(1, "/oper boss s3cret")
    assert told(sim, 1) == [WRONG, "too many wrong /oper attempts; try again in 2s"]


def test_the_room_asks_for_no_more_checks_than_the_pool_takes() -> None:
    sim = Sim(Room(room_rules(oper_check_threads=1, oper_check_queue=1), operators=OPS))
    for conn, host in ((1, "203.0.113.1"), (2, "203.0.113.2"), (3, "203.0.113.3")):
        sim.connect(conn, host)
    sim.inbox.clear()
    sim.hold_checks = True
    sim.send(1, "/oper boss wrong")
    sim.send(2, "/oper boss wrong")
    events = only_to(sim.send(3, "/oper boss s3cret"), 3)
    assert [(e.code, e.message) for e in events] == [(ErrorCode.UNAVAILABLE, BUSY)]
    assert len(sim.checks) == 2
    sim.run_checks()
    sim.hold_checks = False
    sim.send(3, "/oper boss s3cret")  # room again; and the refusal cost its address nothing
    assert sim.room.state.member(3).operator


def test_a_check_the_pool_had_no_room_for_is_refused_and_costs_no_token() -> None:
    sim = oper_room(1, oper_fail_burst=1, oper_fail_rate=1.0)
    sim.hold_checks = True
    sim.send(1, "/oper boss s3cret")
    sim.run_checks(busy=True)
    events = sim.take(1)
    assert [(e.code, e.message) for e in events] == [(ErrorCode.UNAVAILABLE, BUSY)]
    sim.hold_checks = False
    sim.send(1, "/oper boss s3cret")  # no wait: neither the connection's nor the address's
    assert sim.room.state.member(1).operator


def test_the_answer_for_a_connection_that_left_is_dropped() -> None:
    sim = oper_room(2)
    sim.hold_checks = True
    sim.send(1, "/oper boss s3cret")
    sim.disconnect(1)
    assert sim.room.moderation.checking == {1: LOCAL}  # its check still holds its place
    assert sim.run_checks() == []
    assert sim.room.moderation.checking == {} and 1 not in sim.room
    stray = sim.room.handle(i.OperatorChecked(2, "boss", ok=True), sim.now)
    assert stray == [] and not sim.room.state.member(2).operator  # it asked for nothing


def test_a_wrong_oper_is_reported_as_one_of_a_flood_and_never_with_the_password() -> None:
    sim = oper_room(1)
    sim.send(1, "/oper boss hunter2")
    sim.now += 2
    sim.send(1, "/oper boss s3cret")
    reports = [r for r in sim.wire.reports if isinstance(r, Moderated)]
    assert [(r.text, r.flood) for r in reports] == [
        ("wrong /oper for 'boss' (attempt 1)", "wrong /oper"),
        ("operator boss", ""),
    ]


def test_an_operator_is_told_so_and_nothing_is_checked() -> None:
    sim = oper_room(1)
    sim.send(1, "/oper boss s3cret")
    sim.take(1)
    actions = sim.room.receive(1, "/oper boss s3cret", sim.now)
    assert not any(isinstance(a, CheckOperator) for a in actions)
    sim.apply(actions)
    [notice] = sim.take(1)
    assert isinstance(notice, Notice) and notice.text == "you are an operator"
