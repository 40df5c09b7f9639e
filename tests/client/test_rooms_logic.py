"""Issue 19 item 4, without Textual: the session in several rooms (constructed events in,
effects out, a stand-in wire) and the buffers behind the rooms panel.

The events are what docs/PROTOCOL.md "Rooms" says a server with rooms sends to a JSON
client: every room event carries ``room``; ``/join`` is answered by the room's greeting
(``room``), its replay and our ``join``; our own ``leave`` (reason ``part``) ends a room.
"""

from __future__ import annotations

import json

from test_session import BOB, CAT, ME, make, of, shown

from chatroom.client import effects as fx
from chatroom.client.link import LinkState, LinkStatus
from chatroom.client.log_buffer import Buffers, RoomRef
from chatroom.client.render import LineRenderer
from chatroom.protocol import (
    Join,
    Leave,
    LeaveReason,
    Message,
    Notice,
    NoticeCode,
    RoomEntered,
    RoomEntry,
    RoomList,
    Topic,
    Welcome,
    Who,
    WhoEntry,
)

DEV = RoomRef("dev")
MAIN = RoomRef("main")
EPOCH = "e1"


def welcomed(**settings):
    """A session welcomed into ``main`` by a server with rooms, its quiet who answered."""
    session, wire, clock = make(**settings)
    session.handle(LinkStatus(LinkState.CONNECTED))
    session.handle(Welcome(id=ME, name="ann", idle_timeout=0, users=2, epoch=EPOCH, room="main"))
    session.handle(Who(users=(WhoEntry(ME, "ann", 0), WhoEntry(BOB, "bob", 1)), room="main"))
    return session, wire, clock


def requests(wire) -> list[dict]:
    return [json.loads(line) for line in wire.lines]


def join_dev(session, wire, seq: int = 1) -> list[fx.Effect]:
    """Type /join dev and get its greeting, a replayed line and our join."""
    sent, effects = session.typed("/join #Dev", MAIN)
    assert sent and effects == []
    assert requests(wire)[-1] == {"room": "main", "text": "/join dev"}
    effects = session.handle(RoomEntered(room="dev", users=2, topic="release friday"))
    effects += session.handle(
        Message(seq=seq, ts=1.0, id=CAT, name="cat", text="old", history=True, room="dev")
    )
    effects += session.handle(Join(seq=seq + 1, ts=2.0, id=ME, name="ann", room="dev"))
    return effects


def test_every_line_typed_in_a_room_is_a_request_naming_it():
    session, wire, _ = welcomed()
    assert requests(wire)[0] == {"room": "main", "text": "/who"}  # the quiet who, in main
    wire.lines.clear()
    assert session.typed("hello", MAIN) == (True, [])
    assert session.typed("/me waves", MAIN)[0]
    assert session.typed("{not json", MAIN)[0]
    assert requests(wire) == [
        {"room": "main", "text": "hello"},
        {"room": "main", "text": "/me waves"},
        {"room": "main", "text": "{not json"},
    ]
    wire.lines.clear()
    assert session.typed("/quit bye", MAIN)[0]
    assert wire.lines == ["/quit bye"]  # no room's: bare, so the link knows not to reconnect


def test_join_shows_the_room_once_greeted_with_its_own_users_and_topic():
    session, wire, _ = welcomed()
    effects = join_dev(session, wire)
    assert fx.OpenConversation(DEV) in effects
    lines = [e for e in effects if isinstance(e, fx.ShowLine)]
    assert {e.conversation for e in lines} == {DEV}  # nothing of dev lands in main
    assert "now in #dev (2 users)" in shown(effects)
    assert "topic: release friday" in shown(effects)
    assert requests(wire)[-1] == {"room": "dev", "text": "/who"}  # dev's users, quietly
    # Until the screen shows dev, the user list stays main's.
    assert of(fx.ShowUsers, effects) == []
    effects = session.shown(DEV)
    assert fx.ShowTopic("release friday") in effects and fx.ShowRoom("#dev") in effects
    users = of(fx.ShowUsers, effects)[0].users
    assert users == ((ME, "ann"),)
    # dev's who fills dev's list, quietly (the client asked).
    effects = session.handle(
        Who(users=(WhoEntry(ME, "ann", 0), WhoEntry(CAT, "cat", 5)), room="dev")
    )
    assert shown(effects) == []
    assert of(fx.ShowUsers, effects)[0].users == ((ME, "ann"), (CAT, "cat"))
    assert session.roster.names() == ["ann", "cat"]
    # Back in main: main's users and topic again.
    effects = session.shown(MAIN)
    assert of(fx.ShowUsers, effects)[0].users == ((ME, "ann"), (BOB, "bob"))
    assert fx.ShowTopic(None) in effects and fx.ShowRoom("#main") in effects


def test_each_room_counts_its_own_seq():
    session, wire, _ = welcomed()
    session.handle(Message(seq=40, ts=1.0, id=BOB, name="bob", text="a", room="main"))
    join_dev(session, wire, seq=1)
    effects = session.handle(Message(seq=3, ts=3.0, id=CAT, name="cat", text="b", room="dev"))
    effects += session.handle(Message(seq=41, ts=4.0, id=BOB, name="bob", text="c", room="main"))
    assert not any("missed" in line for line in shown(effects))
    effects = session.handle(Message(seq=5, ts=5.0, id=CAT, name="cat", text="d", room="dev"))
    assert "-- 1 event(s) missed" in shown(effects)
    assert {e.conversation for e in of(fx.ShowLine, effects)} == {DEV}


def test_a_mention_in_another_room_says_which():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    effects = session.handle(
        Message(seq=3, ts=1.0, id=CAT, name="cat", text="ann: look", room="dev")
    )
    line = of(fx.ShowLine, effects)[0]
    assert line.conversation == DEV and line.line.mentions_me
    assert of(fx.Alert, effects)[0].title == "cat mentioned you in #dev"


def test_joining_a_room_joined_shows_it_without_asking_the_server():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    wire.lines.clear()
    assert session.typed("/join DEV", MAIN) == (True, [fx.OpenConversation(DEV)])
    assert wire.lines == []


def test_a_bad_room_name_stays_in_the_input_and_nothing_is_sent():
    session, wire, _ = welcomed()
    wire.lines.clear()
    for line in ["/join", "/join a b", "/join dev!", "/join " + "x" * 33, "/part #"]:
        sent, effects = session.typed(line, MAIN)
        assert not sent, line
        assert "a room name is 1-32 letters" in shown(effects)[0]
    assert wire.lines == []


def test_part_closes_the_room_and_later_lines_of_it_are_dropped():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    session.shown(DEV)
    assert session.typed("/part", DEV) == (True, [])
    assert requests(wire)[-1] == {"room": "dev", "text": "/part dev"}
    effects = session.handle(
        Leave(seq=3, ts=3.0, id=ME, name="ann", reason=LeaveReason.PART, room="dev")
    )
    assert fx.CloseRoom(DEV) in effects
    assert "-- you left #dev" in shown(effects)
    assert "dev" not in session.rooms
    assert session.handle(Message(seq=4, ts=4.0, id=CAT, name="cat", text="x", room="dev")) == []
    # Another user's part is only a leave.
    effects = session.handle(
        Leave(seq=41, ts=5.0, id=BOB, name="bob", reason=LeaveReason.PART, room="main")
    )
    assert of(fx.CloseRoom, effects) == []
    assert "bob" not in session.roster.names()


def test_kicked_out_of_a_room_closes_it_but_a_kick_from_the_default_room_disconnects():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    kick = Leave(seq=3, ts=3.0, id=ME, name="ann", reason=LeaveReason.KICKED, by="root", room="dev")
    effects = session.handle(kick)
    assert fx.CloseRoom(DEV) in effects and "-- you were kicked out of #dev" in shown(effects)
    kick = Leave(seq=41, ts=4.0, id=ME, name="ann", reason=LeaveReason.KICKED, room="main")
    assert of(fx.CloseRoom, session.handle(kick)) == []  # the link drops next
    assert "main" in session.rooms


def test_kicked_out_of_the_only_room_shows_the_default_room_it_was_put_in():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    session.typed("/part main", MAIN)
    session.handle(Leave(seq=41, ts=1.0, id=ME, name="ann", reason=LeaveReason.PART, room="main"))
    assert [room.key for room in session.rooms] == ["dev"]
    session.shown(DEV)
    # The server puts it in the default room first (its greeting), then says the kick.
    effects = session.handle(RoomEntered(room="main", users=1))
    assert {e.conversation for e in of(fx.ShowLine, effects)} == {MAIN}
    kick = Leave(seq=4, ts=4.0, id=ME, name="ann", reason=LeaveReason.KICKED, room="dev")
    effects = session.handle(kick)
    assert fx.CloseRoom(DEV) in effects
    assert [room.key for room in session.rooms] == ["main"] and session.rooms.shown == "main"


def test_a_reconnect_joins_every_room_again_and_resumes_each_from_its_own_seq():
    session, wire, _ = welcomed()
    session.handle(Message(seq=40, ts=1.0, id=BOB, name="bob", text="a", room="main"))
    join_dev(session, wire, seq=6)  # dev's last seq: 7 (our join)
    session.handle(LinkStatus(LinkState.DISCONNECTED, "connection lost", retry_in=1.0))
    session.handle(LinkStatus(LinkState.CONNECTED))
    wire.lines.clear()
    session.handle(Welcome(id=ME, name="ann", idle_timeout=0, users=2, epoch=EPOCH, room="main"))
    assert requests(wire) == [
        {"room": "main", "text": f"/history since 40 {EPOCH}"},
        {"room": "main", "text": "/who"},
        {"room": "main", "text": "/join dev"},
    ]
    wire.lines.clear()
    effects = session.handle(RoomEntered(room="dev", users=2))
    assert requests(wire) == [
        {"room": "dev", "text": "/who"},
        {"room": "dev", "text": f"/history since 7 {EPOCH}"},
    ]
    assert of(fx.OpenConversation, effects) == []  # a rejoin does not take the screen
    # dev's replay is left out; the answer to its history request is shown.
    replay = Message(seq=6, ts=1.0, id=CAT, name="cat", text="old", history=True, room="dev")
    assert session.handle(replay) == []
    session.handle(Join(seq=9, ts=9.0, id=ME, name="ann", room="dev"))
    answer = Notice(NoticeCode.HISTORY, "1 message", count=1, seq=8, room="dev")
    session.handle(answer)
    missed = Message(seq=8, ts=8.0, id=CAT, name="cat", text="while away", history=True, room="dev")
    effects = session.handle(missed)
    assert [e.conversation for e in of(fx.ShowLine, effects)][-1] == DEV
    assert shown(effects)[-1].endswith("cat while away")


def test_the_rooms_list_is_shown():
    session, _, _ = welcomed()
    rooms = (RoomEntry("dev", 2, "release friday"), RoomEntry("main", 1))
    assert shown(session.handle(RoomList(rooms=rooms, total=3))) == [
        "3 rooms (2 listed)",
        "  #dev (2 users): release friday",
        "  #main (1 user)",
    ]


def test_a_topic_changes_the_header_only_for_the_room_shown():
    session, wire, _ = welcomed()
    join_dev(session, wire)
    effects = session.handle(Topic("ship it", by="root", room="dev"))
    assert of(fx.ShowTopic, effects) == []  # main is shown
    assert of(fx.ShowLine, effects)[0].conversation == DEV
    assert fx.ShowTopic("ship it") in session.shown(DEV)


def test_a_long_line_split_so_that_each_request_fits():
    session, wire, _ = welcomed()
    wire.lines.clear()
    text = " ".join(['say "x"'] * 600)  # quotes: escaped in the request
    assert session.typed(text, MAIN)[0]
    assert len(wire.lines) > 1
    assert all(len(line.encode()) <= session.max_line for line in wire.lines)
    assert " ".join(r["text"] for r in requests(wire)) == text


def test_buffers_count_unread_lines_and_mentions_per_room():
    render = LineRenderer()
    buffers = Buffers("room", 100)
    buffers.name_room(MAIN)
    assert [b.title for b in buffers] == ["#main"]
    buffers.add(DEV, render.status("x"))
    buffers.add("bob", render.status("psst"))
    buffers.add(RoomRef("ops"), render.status("y"))
    assert [b.title for b in buffers] == ["#main", "#dev", "#ops", "bob"]  # rooms first
    dev = buffers.find(DEV)
    mention = render.chat(Message(seq=1, ts=1.0, id=CAT, name="cat", text="hi ann"), ME, "ann")
    buffers.add(DEV, mention)
    assert (dev.unread, dev.mentioned) == (2, True)
    assert buffers.beside(1) is dev and buffers.by_position(1) is dev
    buffers.show(dev)
    assert (dev.unread, dev.mentioned) == (0, False)
    buffers.add(None, render.status("to the room shown last"))
    assert dev.lines[-1].text.plain.endswith("to the room shown last")
    assert buffers.close(dev) and buffers.active.title == "#main"
    assert buffers.close(buffers.find(RoomRef("ops")))
    assert not buffers.close(buffers.find(MAIN))  # the last room stays
