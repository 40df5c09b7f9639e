"""Who may come in: the room's size and the connections one address may hold."""

from __future__ import annotations

from chatroom.protocol import Notice, NoticeCode
from chatroom.server.core.actions import Close
from tests.room_helpers import LOCAL, REMOTE, Sim, room_with


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


def test_an_address_reported_twice_still_gets_two_ids() -> None:
    # A peer reset before it was accepted can be reported with the same (or no) address as
    # another: the room must never give two connections one id.
    sim = Sim()
    sim.connect(1, host=REMOTE, port=7)
    sim.connect(2, host=REMOTE, port=7)
    who = sim.room.who(sim.now)
    assert len({entry.id for entry in who.users}) == 2
    sim.disconnect(1)
    sim.disconnect(2)
    assert len(sim.room) == 0 and sim.room.who(sim.now).users == ()
