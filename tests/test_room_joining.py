"""Joining and leaving the room: the welcome and history, /quit, disconnects, shutdown.

The room is called directly, on the wire of :mod:`tests.room_helpers`; no sockets.
"""

from __future__ import annotations

import pytest

from chatroom.protocol import Action, Join, Leave, LeaveReason, Message, Notice, NoticeCode, Welcome
from chatroom.server.core.actions import Close
from tests.room_helpers import T0, Sim, room_with

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
        Welcome(id=sim.id(2), name=sim.id(2), idle_timeout=60, users=2, room="main"),
        Message(seq=3, ts=T0, id=sim.id(1), name=sim.id(1), text="two", history=True, room="main"),
        Action(seq=4, ts=T0, id=sim.id(1), name=sim.id(1), text="three", history=True, room="main"),
    )
    assert [o.events for o in rest] == [
        (Join(seq=5, ts=T0, id=sim.id(2), name=sim.id(2), room="main"),)
    ]
    assert rest[0].recipients == {1, 2}
    assert rest[0].payload == f"*** {sim.id(2)} joined\n".encode()
    assert b"[history " in greeting.payload and f"<{sim.id(1)}> two\n".encode() in greeting.payload
    assert b"one" not in greeting.payload


def test_first_user_gets_welcome_and_own_join() -> None:
    sim = Sim()
    outs = sim.connect(1)
    assert sim.take(1) == [
        Welcome(id=sim.id(1), name=sim.id(1), idle_timeout=60, users=1, room="main"),
        Join(seq=1, ts=T0, id=sim.id(1), name=sim.id(1), room="main"),
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


# --- /quit -----------------------------------------------------------------------------------


def test_quit_with_a_reason() -> None:
    sim = room_with(3)
    sim.send(1, "rename|Duke")
    sim.inbox.clear()
    outs = sim.send(1, "/quit gotta \x1b[31mgo ")
    leave = Leave(
        seq=sim.room.seq,
        ts=T0,
        id=sim.id(1),
        name="Duke",
        reason=LeaveReason.QUIT,
        text="gotta go",
        room="main",
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
    assert outs[0].events == (
        Leave(seq=seq + 1, ts=T0, id=sim.id(2), name="Zoë", reason=reason, room="main"),
    )
    assert outs[0].payload.startswith(b"*** Zo\xc3\xab ")
    assert sim.closed == []  # the caller closes what it reported gone
    assert sim.disconnect(2, reason) == []
    assert sim.disconnect(2, LeaveReason.ERROR) == []
    assert sim.room.seq == seq + 1
    assert sim.disconnect(42) == []
