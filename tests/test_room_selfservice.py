"""/ignore and /away in the I/O-free room: filtered on the server, shown in who."""

from __future__ import annotations

from chatroom.protocol import (
    Action,
    Error,
    ErrorCode,
    Join,
    Leave,
    Message,
    Notice,
    Private,
    Rename,
    Who,
    decode_json,
)
from chatroom.server.core.actions import Broadcast, encode
from chatroom.server.core.room import Room
from tests.room_helpers import JSON, TEXT, Sim, only_to, room_rules


def room(n: int) -> Sim:
    sim = Sim(Room(room_rules()))
    for conn in range(1, n + 1):
        sim.connect(conn)
    sim.inbox.clear()
    return sim


def test_an_ignorer_gets_nothing_from_the_ignored_but_joins_leaves_and_renames() -> None:
    sim = room(3)
    sim.send(2, "/format json")
    notice = only_to(sim.send(2, f"/ignore {sim.id(1)}"), 2)[0]
    assert isinstance(notice, Notice) and "you ignore" in notice.text
    sim.inbox.clear()
    sim.send(1, "hello")
    sim.send(1, "/me waves")
    sim.send(1, f"/msg {sim.id(2)} psst")
    sim.send(3, "hi all")
    sim.send(1, "/nick ann")
    got = sim.take(2)
    assert [type(e) for e in got] == [Message, Rename] and got[0].text == "hi all"
    assert [type(e) for e in sim.take(3)] == [Message, Action, Message, Rename]
    assert isinstance(sim.take(1)[2], Private)  # the sender's echo: not told
    assert only_to(sim.send(2, "/ignore"), 2)[0].text == "you ignore: ann"  # by id: renamed
    sim.send(2, "/unignore ann")
    sim.inbox.clear()
    sim.send(1, "heard again")
    assert [e.text for e in sim.take(2)] == ["heard again"]


def test_nobody_ignoring_means_plain_broadcasts_and_the_table_is_cleaned() -> None:
    sim = room(3)
    actions = sim.room.receive(1, "plain", sim.now)
    assert all(a.skip == frozenset() for a in actions if isinstance(a, Broadcast))
    sim.apply(actions)
    sim.send(2, f"/ignore {sim.id(1)}")
    actions = sim.room.receive(1, "skipped", sim.now)
    assert [a.skip for a in actions if isinstance(a, Broadcast)] == [frozenset({2})]
    sim.apply(actions)
    sim.disconnect(2)
    assert sim.room.ignored_by == {}
    sim.send(3, f"/ignore {sim.id(1)}")
    sim.disconnect(1)  # the ignored leaves: forgotten
    assert sim.room.ignored_by == {} and sim.room.state.member(3).ignoring == set()
    sim.inbox.clear()
    sim.connect(4)
    assert isinstance(sim.take(3)[0], Join)


def test_bad_ignores_get_one_error() -> None:
    sim = room(2)
    codes = [
        [e.code for e in only_to(sim.send(1, line), 1) if isinstance(e, Error)]
        for line in ("/ignore nobody", f"/ignore {sim.id(1)}", "/ignore a b", "/unignore")
    ]
    assert codes == [
        [ErrorCode.UNKNOWN_USER],
        [ErrorCode.BAD_USAGE],
        [ErrorCode.BAD_USAGE],
        [ErrorCode.BAD_USAGE],
    ]
    assert only_to(sim.send(1, "/ignore"), 1)[0].text == "you ignore nobody"
    assert only_to(sim.send(1, f"/unignore {sim.id(2)}"), 1)[0].text.startswith("you do not")


def test_ignores_are_bounded() -> None:
    sim = Sim(Room(room_rules(max_ignores=1)))
    for conn in (1, 2, 3):
        sim.connect(conn)
    sim.send(1, f"/ignore {sim.id(2)}")
    events = only_to(sim.send(1, f"/ignore {sim.id(3)}"), 1)
    assert isinstance(events[0], Error) and "1 users already" in events[0].message


def test_away_shows_in_who_and_tells_private_senders() -> None:
    sim = room(2)
    assert only_to(sim.send(2, "/away lunch"), 2)[0].text == "you are marked away: lunch"
    who = only_to(sim.send(1, "who"), 1)[0]
    assert isinstance(who, Who) and [u.away for u in who.users] == [None, "lunch"]
    text = encode(who, TEXT).decode()
    assert f"  {sim.id(2)}  ({sim.id(2)}, idle 0s) (away: lunch)\n" in text
    line = encode(who, JSON).decode()
    assert line.count('"away":"lunch"') == 1 and line.count('"away"') == 1
    assert decode_json(line) == who
    sim.inbox.clear()
    sim.send(1, f"/msg {sim.id(2)} hi")
    events = sim.take(1)
    assert [type(e) for e in events] == [Private, Notice]
    assert events[1].text == f"{sim.id(2)} is away: lunch"
    assert only_to(sim.send(2, "/away"), 2)[0].text == "you are back"
    assert only_to(sim.send(1, "who"), 1)[0].users[1].away is None
    sim.inbox.clear()
    sim.send(1, f"/msg {sim.id(2)} hi")
    assert [type(e) for e in sim.take(1)] == [Private]


def test_a_leave_of_the_ignored_still_shows() -> None:
    sim = room(2)
    sim.send(2, f"/ignore {sim.id(1)}")
    sim.inbox.clear()
    sim.disconnect(1)
    assert isinstance(sim.take(2)[0], Leave)
