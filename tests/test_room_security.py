"""A room with a password, and a room that hides addresses (issue 10, items 2 and 3)."""

from __future__ import annotations

import random
import re

import pytest

from chatroom.protocol import (
    Error,
    ErrorCode,
    FormatChanged,
    Join,
    LeaveReason,
    Notice,
    NoticeCode,
    Welcome,
)
from chatroom.server.core.actions import Admitted, Left, TurnedAway
from chatroom.server.core.admission import Cause
from chatroom.server.core.room import Room
from tests.room_helpers import (
    JSON,
    REMOTE,
    Cluster,
    Sim,
    broadcast_events,
    only_to,
    room_rules,
)

SECRET = b"correct horse"


def password_room(**rules: object) -> Sim:
    """A room with the password SECRET and one member (connection 1) already in."""
    sim = Sim(password=SECRET, **rules)
    sim.connect(1)
    sim.send(1, "/pass correct horse")
    sim.inbox.clear()
    return sim


def test_a_newcomer_sees_only_the_prompt_until_it_gives_the_password() -> None:
    sim = password_room()
    sim.send(1, "earlier chat")
    sim.inbox.clear()
    seq = sim.room.seq
    outs = sim.connect(2)
    assert only_to(outs, 2) == [
        Notice(code=NoticeCode.PASSWORD, text="this room needs a password: send /pass SECRET")
    ]
    assert sim.room.seq == seq  # its join is not announced
    sim.take(2)
    sim.send(1, "you cannot read this")
    assert sim.take(2) == []  # no broadcasts
    (who,) = only_to(sim.send(1, "who"), 1)
    assert [u.id for u in who.users] == [sim.id(1)]  # not in who
    outs = sim.send(2, "/pass correct horse")
    events = sim.take(2)
    assert isinstance(events[0], Welcome)
    assert [e.text for e in events if getattr(e, "history", False)] == [
        "earlier chat",
        "you cannot read this",
    ]
    assert [e for e in broadcast_events(outs) if isinstance(e, Join)] == [
        Join(seq=seq + 2, ts=sim.now, id=sim.id(2), name=sim.id(2), room="main")
    ]


@pytest.mark.parametrize("line", ["hello", "who", "/nick Duke", "/msg x hi", "/me waves", "/help"])
def test_a_waiting_newcomer_can_do_nothing_but_give_the_password(line: str) -> None:
    sim = password_room()
    sim.connect(2)
    sim.take(2)
    seq = sim.room.seq
    outs = sim.send(2, line)
    assert only_to(outs, 2) == [
        Notice(code=NoticeCode.PASSWORD, text="this room needs a password: send /pass SECRET")
    ]
    assert sim.room.seq == seq and sim.take(1) == []


def test_a_wrong_password_is_an_error_and_too_many_close_the_connection() -> None:
    sim = password_room(password_tries=3)
    sim.connect(2)
    sim.take(2)
    for left in ("2 tries", "1 try"):
        (error,) = only_to(sim.send(2, "/pass guess"), 2)
        assert error == Error(code=ErrorCode.BAD_PASSWORD, message=f"wrong password ({left} left)")
    (error,) = only_to(sim.send(2, "/pass guess"), 2)
    assert error.code is ErrorCode.BAD_PASSWORD
    assert sim.closed == [2] and 2 not in sim.room
    assert isinstance(sim.wire.reports[-1], TurnedAway)
    assert sim.wire.reports[-1].cause is Cause.BAD_PASSWORD
    assert sim.take(1) == []  # nobody saw it come or go
    assert all("guess" not in repr(report) for report in sim.wire.reports)


def test_wrong_passwords_are_rate_limited_per_address() -> None:
    sim = password_room(password_tries=100, password_fail_burst=3, password_fail_rate=6.0)
    sim.connect(2, host=REMOTE)
    sim.connect(3, host=REMOTE)
    for _ in range(3):
        sim.send(2, "/pass guess")
    (error,) = only_to(sim.send(3, "/pass correct horse"), 3)  # not even checked
    assert error.code is ErrorCode.BAD_PASSWORD
    assert error.message == "too many wrong passwords from your address; try again in 10s"
    assert 3 in sim.room and sim.take(1) == []
    sim.now += 10
    sim.send(3, "/pass correct horse")
    assert any(isinstance(e, Welcome) for e in sim.take(3))


def test_the_failure_table_is_bounded() -> None:
    sim = password_room(password_tries=100, connect_table=5, max_per_ip=1000, connect_rate=0)
    for conn in range(2, 40):
        sim.connect(conn, host=f"198.51.100.{conn}")
        sim.send(conn, "/pass guess")
    assert len(sim.room.admission.password_failures) <= 5


def test_the_idle_timeout_applies_while_waiting_and_lines_do_not_reset_it() -> None:
    sim = password_room(idle_timeout=60)
    sim.connect(2)
    sim.now += 50
    sim.send(2, "hello?")
    sim.now += 10
    sim.idle_check(2)
    assert 2 in sim.closed and 2 not in sim.room
    assert sim.take(1) == []
    assert sim.wire.reports[-1] == Left(2, sim.id(2), LeaveReason.TIMEOUT, quiet=True)


def test_a_waiting_newcomer_may_switch_to_json_and_quit_unseen() -> None:
    sim = password_room()
    sim.connect(2)
    sim.take(2)
    assert only_to(sim.send(2, "/format json"), 2) == [
        FormatChanged(format=JSON),
        Notice(code=NoticeCode.PASSWORD, text="this room needs a password: send /pass SECRET"),
    ]
    sim.take(2)
    sim.send(1, "hi")
    assert sim.take(2) == []
    sim.take(1)
    sim.send(2, "/quit")
    assert sim.closed == [2] and sim.take(1) == []


def test_pass_when_already_in_is_only_a_notice() -> None:
    sim = password_room()
    (notice,) = only_to(sim.send(1, "/pass whatever"), 1)
    assert notice.code is NoticeCode.INFO


def test_the_waiting_state_is_reported_and_counts_against_the_limits() -> None:
    sim = password_room(max_clients=2)
    sim.connect(2)
    assert Admitted(2, sim.id(2), 2, waiting=True) in sim.wire.reports
    (refusal,) = only_to(sim.connect(3), 3)
    assert refusal.code is NoticeCode.SERVER_FULL


# --- hidden addresses --------------------------------------------------------------------


def hidden_room(n: int, seed: int = 1) -> Sim:
    sim = Sim(room=Room(room_rules(hide_addresses=True), rng=random.Random(seed)))
    for conn in range(1, n + 1):
        sim.connect(conn)
    return sim


def test_hidden_addresses_give_guest_names_and_opaque_ids() -> None:
    sim = hidden_room(30)
    welcome = next(e for e in sim.take(1) if isinstance(e, Welcome))
    assert re.fullmatch(r"guest-\d{4}", welcome.name)
    (who,) = only_to(sim.send(1, "who"), 1)
    names = [u.name for u in who.users]
    ids = [u.id for u in who.users]
    assert len(set(names)) == 30 and len(set(ids)) == 30
    assert all(re.fullmatch(r"guest-\d{4}", name) for name in names)
    assert names != sorted(names)  # random, not sequential
    for event in [who, *sim.take(2)]:
        assert "127.0.0.1" not in repr(event) and ":50" not in repr(event)
    payload = b"".join(out.payload for out in sim.send(1, "who"))
    assert b"127.0.0.1" not in payload
    sim.send(1, "/format json")
    payload = b"".join(out.payload for out in sim.send(1, "who"))
    assert b"127.0.0.1" not in payload


class SameDraws(random.Random):
    """Draws the same number every time: every guest wants the same name."""

    def randrange(self, *args: object) -> int:
        return 42


def test_guest_names_stay_unique_when_the_first_choices_are_taken() -> None:
    sim = Sim(room=Room(room_rules(hide_addresses=True), rng=SameDraws(1)))
    for conn in (1, 2, 3):
        sim.connect(conn)
    assert [sim.room.name_of(c) for c in (1, 2, 3)] == ["guest-0042", "guest-00042", "guest-000042"]
    sim.send(1, "/nick Duke")
    sim.connect(4)
    assert sim.room.name_of(4) == "guest-0042"


def test_the_default_is_unchanged_addresses_as_names() -> None:
    sim = Sim()
    sim.connect(1)
    assert sim.room.name_of(1) == sim.id(1) == "127.0.0.1:5001"


# --- in a room shared by several servers (what falls out of the room's rules) --------------


def test_a_shared_room_keeps_a_waiting_newcomer_unseen_until_the_password() -> None:
    cluster = Cluster("a", "b", password=SECRET)
    ann = cluster.join("a")  # waits: its /format json is answered, its join is not made
    assert cluster.events(ann, "notice")[-1]["code"] == "password"
    cluster.say(ann, "/pass correct horse")
    bob = cluster.join("b")
    cluster.say(bob, "/pass correct horse")
    cluster.say(ann, "hello")
    assert [e["text"] for e in cluster.events(bob, "message")] == ["hello"]
    joins = [e["id"] for e in cluster.events(ann, "join")]
    assert len(joins) == 2 and cluster.ledger.seq == 3


def test_a_shared_room_refuses_a_look_alike_of_a_user_on_another_node() -> None:
    cluster = Cluster("a", "b")
    ann = cluster.join("a")
    cluster.say(ann, "/nick ann")
    mallory = cluster.join("b")
    cluster.say(mallory, "/nick \u0430nn")
    assert cluster.events(mallory, "error")[-1]["code"] == "name_taken"
