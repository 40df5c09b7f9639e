"""The room and the state file (--state), without I/O: what it reports to be kept
(Persist), and a room made from what was kept (Room(..., restored=...))."""

from __future__ import annotations

import math

from chatroom.protocol import Error, ErrorCode, Message, Welcome
from chatroom.server.core.actions import Restored
from chatroom.server.core.passwords import parse_operators
from chatroom.server.core.room import Room
from tests.room_helpers import REMOTE, T0, Sim, room_rules
from tests.test_room_moderation import OPS, mod_room, op


def kept_room(n: int, restored: Restored | None = None, **rules: object) -> Sim:
    return mod_room(n, restored or Restored(), **rules)


def kept(sim: Sim) -> list[tuple[str, str, object]]:
    found = [(a.kind, a.key, a.data) for a in sim.wire.persisted]
    sim.wire.persisted.clear()
    return found


def test_a_room_without_a_state_file_reports_nothing_to_keep() -> None:
    room = Room(room_rules(), operators=parse_operators(OPS))
    sim = Sim(room)
    sim.connect(1)
    op(sim)
    sim.send(1, "hello")
    sim.send(1, "/topic hi")
    assert sim.wire.persisted == []


def test_chat_bans_mutes_and_the_topic_are_reported_to_be_kept() -> None:
    sim = kept_room(2)
    op(sim)
    assert sim.room.history_due() == []  # nothing said yet
    sim.send(2, "hello")
    sim.send(2, "/me waves")
    assert kept(sim) == []  # chat is not reported line by line: the history is, when asked
    [(kind, _, history)] = [(a.kind, a.key, a.data) for a in sim.room.history_due()]
    assert kind == "history" and [e.text for e in history] == ["hello", "waves"]
    assert isinstance(history[0], Message)
    assert sim.room.history_due() == []  # unchanged since
    sim.send(1, "again")
    [(_, _, history)] = [(a.kind, a.key, a.data) for a in sim.room.history_due()]
    assert [e.text for e in history] == ["hello", "waves", "again"]
    sim.send(1, "/topic be kind")
    assert kept(sim) == [("topic", "topic", {"text": "be kind", "by": sim.id(1)})]
    name = sim.room.name_of(2)
    sim.send(1, f"/mute {name} 10m")
    assert kept(sim) == [("mute", name, {"name": name, "until": T0 + 600})]
    sim.send(1, f"/unmute {name}")
    assert kept(sim) == [("mute", name, None)]
    sim.send(1, "/ban 203.0.113.0/24 1h spam")
    ban = {"target": "203.0.113.0/24", "until": T0 + 3600, "name": None, "reason": "spam",
           "by": sim.id(1)}  # fmt: skip
    assert kept(sim) == [("ban", "203.0.113.0/24", ban)]
    sim.send(1, "/ban 198.51.100.7")
    assert kept(sim)[0][2]["until"] is None  # no end
    sim.send(1, "/unban 203.0.113.0/24")
    assert kept(sim) == [("ban", "203.0.113.0/24", None)]
    sim.send(2, "/topic nope")  # refused: nothing to keep
    assert kept(sim) == []


def test_a_restored_room_replays_its_history_shows_its_topic_and_numbers_on() -> None:
    history = tuple(
        Message(seq=seq, ts=T0 - 100 + seq, id="x:1", name="old", text=f"before {seq}")
        for seq in (40, 41, 42)
    )
    restored = Restored(history=history, topic={"text": "be kind", "by": "boss"})
    sim = kept_room(0, restored)
    sim.connect(1)
    events = sim.take(1)
    welcome = events[0]
    assert isinstance(welcome, Welcome) and welcome.topic == "be kind"
    replayed = [e for e in events if isinstance(e, Message)]
    assert [(e.seq, e.text, e.history) for e in replayed] == [
        (40, "before 40", True), (41, "before 41", True), (42, "before 42", True)
    ]  # fmt: skip
    assert sim.room.seq == 43  # its join comes after them
    assert sim.room.history_due() == []  # the file has these already
    sim.send(1, "/topic")
    assert sim.take(1)[-1].text == "be kind"


def test_a_restored_ban_refuses_its_address_until_it_ends() -> None:
    ban = {"target": "203.0.113.0/24", "until": T0 + 60, "name": "mallory", "reason": "spam",
           "by": "boss"}  # fmt: skip
    forever = {"target": "198.51.100.7/32", "until": None, "name": None, "reason": None,
               "by": "boss"}  # fmt: skip
    sim = kept_room(0, Restored(bans={"203.0.113.0/24": ban, "198.51.100.7/32": forever}))
    sim.connect(1, REMOTE)
    assert 1 not in sim.room
    [refused] = sim.take(1)
    assert refused.text == "your address is banned from this server for 1m more: spam"
    sim.connect(2, "198.51.100.7")
    assert 2 not in sim.room
    assert sim.room.moderation.bans["198.51.100.7/32"].until == math.inf
    sim.now += 61
    sim.connect(3, REMOTE)
    assert 3 in sim.room


def test_a_restored_mute_holds_the_name_until_it_ends_or_is_lifted() -> None:
    sim = kept_room(2, Restored(mutes={"mallory": {"name": "Mallory", "until": T0 + 60}}))
    op(sim)
    sim.send(2, "/nick Mallory")
    sim.inbox.clear()
    sim.send(2, "spam")
    [error] = sim.take(2)
    assert isinstance(error, Error) and error.code is ErrorCode.MUTED
    sim.send(1, "/unmute mallory")
    assert kept(sim)[-1] == ("mute", "mallory", None)
    sim.inbox.clear()
    sim.send(2, "hello")
    assert [e.text for e in sim.take(2) if isinstance(e, Message)] == ["hello"]
    later = kept_room(1, Restored(mutes={"mallory": {"name": "Mallory", "until": T0 + 60}}))
    later.send(1, "/nick mallory")
    later.now += 61
    later.inbox.clear()
    later.send(1, "back")
    assert not any(isinstance(e, Error) for e in later.take(1))
    assert later.room.moderation.muted_names == {}


def test_an_endless_restored_mute() -> None:
    sim = kept_room(1, Restored(mutes={"bob": {"name": "bob", "until": None}}))
    sim.send(1, "/nick bob")
    sim.inbox.clear()
    sim.now += 10**6
    sim.send(1, "hi")
    [error] = sim.take(1)
    assert isinstance(error, Error) and error.code is ErrorCode.MUTED
    assert error.message == "you are muted: your line was not sent"
