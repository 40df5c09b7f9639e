"""Moderation in the I/O-free room: operators (/oper), and what only they may do."""

from __future__ import annotations

import pytest

from chatroom.protocol import Error, ErrorCode, Notice, NoticeCode, Who, decode_json
from chatroom.server.actions import Moderated, encode
from chatroom.server.moderation import check_password, hash_password, parse_operators
from chatroom.server.room import Room
from tests.room_helpers import JSON, TEXT, Sim, only_to, room_rules

HASH = hash_password("s3cret")
OPS = f"# operators\n\nboss {HASH}\n"


def mod_room(n: int, **rules: object) -> Sim:
    """A room with operators ``boss``/``s3cret``, connections 1..n joined, inboxes empty."""
    room = Room(room_rules(**rules))
    room.moderation.load_operators(OPS)
    sim = Sim(room)
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def op(sim: Sim, conn: int = 1) -> None:
    sim.send(conn, "/oper boss s3cret")
    sim.inbox.clear()


def errors(events: list) -> list[ErrorCode]:
    return [e.code for e in events if isinstance(e, Error)]


# --- passwords and the ops file


def test_a_hash_checks_its_password_only() -> None:
    assert check_password("s3cret", HASH)
    assert not check_password("s3cret ", HASH)
    assert hash_password("s3cret") != HASH  # salted


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("boss", "line 1: expected: NAME scrypt$..."),
        (f"# c\nboss {HASH} extra", "line 2: expected: NAME scrypt$..."),
        ("boss md5$x", "line 1: expected: NAME scrypt$..."),
        ("boss sha$1$2$3$4$5", "line 1: unknown hash kind 'sha' (scrypt$... expected)"),
        ("boss scrypt$3$8$1$AA==$AA==", "line 1: scrypt parameters out of range"),
        (f"a|b {HASH}", "line 1: a name cannot contain '|'"),
    ],
)
def test_a_bad_ops_file_is_refused_with_its_line(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_operators(text)
    assert str(info.value) == problem


# --- /oper


def test_oper_with_the_right_password_marks_the_user_in_who() -> None:
    sim = mod_room(2)
    events = only_to(sim.send(1, "/oper BOSS s3cret"), 1)  # names match without case
    assert [(type(e), e.code) for e in events] == [(Notice, NoticeCode.INFO)]
    assert "now an operator" in events[0].text
    assert any(isinstance(r, Moderated) for r in sim.wire.reports)
    who = only_to(sim.send(2, "who"), 2)[0]
    assert isinstance(who, Who)
    assert [u.op for u in who.users] == [True, False]
    text = encode(who, TEXT).decode()
    assert f"  @{sim.id(1)}  (" in text and f"  {sim.id(2)}  (" in text
    line = encode(who, JSON).decode()
    assert line.count('"op":true') == 1 and '"op":false' not in line
    assert decode_json(line) == who


def test_wrong_oper_attempts_are_refused_logged_without_password_and_slowed() -> None:
    sim = mod_room(1)
    events = only_to(sim.send(1, "/oper boss wrong-pass"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR]
    reports = [r for r in sim.wire.reports if isinstance(r, Moderated)]
    assert len(reports) == 1 and "wrong-pass" not in reports[0].text
    # at once again: refused without checking, even with the right password
    events = only_to(sim.send(1, "/oper boss s3cret"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR] and "try again in" in events[0].message
    sim.now += 2
    events = only_to(sim.send(1, "/oper nobody s3cret"), 1)  # an unknown name: the same
    assert errors(events) == [ErrorCode.NOT_OPERATOR] and "wrong" in events[0].message
    sim.now += 3  # the second failure waits 4 s
    events = only_to(sim.send(1, "/oper boss s3cret"), 1)
    assert errors(events) == [ErrorCode.NOT_OPERATOR]
    sim.now += 1
    assert "now an operator" in only_to(sim.send(1, "/oper boss s3cret"), 1)[0].text


def test_oper_needs_both_arguments_and_a_room_without_operators_has_none() -> None:
    sim = mod_room(1)
    assert errors(only_to(sim.send(1, "/oper boss"), 1)) == [ErrorCode.BAD_USAGE]
    plain = Sim()
    plain.connect(1)
    plain.inbox.clear()
    assert errors(only_to(plain.send(1, "/oper boss s3cret"), 1)) == [ErrorCode.NOT_OPERATOR]


def test_help_lists_operator_commands_to_operators_only() -> None:
    sim = mod_room(2)
    op(sim)
    assert "Operator commands:" in only_to(sim.send(1, "/help"), 1)[0].text
    assert "Operator commands:" not in only_to(sim.send(2, "/help"), 2)[0].text
