"""Idle timeouts: the warning, the kick, activity resetting the timer, no timeout at all."""

from __future__ import annotations

import pytest

from chatroom.protocol import Leave, LeaveReason, Notice, NoticeCode
from chatroom.server.core.actions import Close
from tests.room_helpers import only_to, room_with


def test_idle_warning_then_kick() -> None:
    sim = room_with(3, idle_timeout=60)
    sim.send(2, "rename|Zoë")
    sim.inbox.clear()
    joined = sim.now
    assert sim.room.next_idle_check(2) == joined + 50

    sim.now = joined + 49.9
    assert sim.idle_check(2) == []
    sim.now = joined + 50
    events = only_to(sim.idle_check(2), 2)
    assert [(type(e), e.code) for e in events] == [(Notice, NoticeCode.IDLE_WARNING)]
    assert "10" in events[0].text
    assert sim.room.next_idle_check(2) == joined + 60
    sim.now = joined + 55
    assert sim.idle_check(2) == []  # warned once, not again

    seq = sim.room.seq
    sim.now = joined + 60
    sim.take(2)
    actions = sim.room.idle_check(2, sim.now)
    assert actions[-1] == Close(2)
    outs = sim.apply(actions)
    assert sim.take(2) == [
        Notice(code=NoticeCode.TIMEOUT, text="disconnected: no line from you for 60s")
    ]
    leave = Leave(
        seq=seq + 1, ts=sim.now, id=sim.id(2), name="Zoë", reason=LeaveReason.TIMEOUT, room="main"
    )
    assert [o.events for o in outs if o.recipients == {1, 3}] == [(leave,)]
    assert b"*** Zo\xc3\xab timed out\n" in [o.payload for o in outs]
    assert sim.closed == [2]
    assert 2 not in sim.room
    assert sim.room.next_idle_check(2) is None
    assert sim.idle_check(2) == []


def test_activity_resets_the_idle_timer_and_the_warning() -> None:
    sim = room_with(1, idle_timeout=60)
    sim.now += 50
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING
    sim.now += 5
    sim.send(1, "I'm here")
    assert sim.room.next_idle_check(1) == sim.now + 50
    sim.now += 9
    assert sim.idle_check(1) == []  # 64 s after joining, 9 s after the line
    sim.now += 41
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING  # warned again
    sim.now += 10
    assert sim.apply(sim.room.idle_check(1, sim.now)) and sim.closed == [1]


@pytest.mark.parametrize("timeout", [20, 15, 5])
def test_no_warning_when_the_timeout_is_20s_or_less(timeout: float) -> None:
    sim = room_with(1, idle_timeout=timeout)
    assert sim.room.next_idle_check(1) == sim.now + timeout
    start = sim.now
    while sim.now < start + timeout - 0.5:
        sim.now += 0.5
        assert sim.idle_check(1) == []
    sim.now = start + timeout
    assert [e.code for e in sim.take(1)] == []
    sim.idle_check(1)
    assert [e.code for e in sim.take(1)] == [NoticeCode.TIMEOUT]
    assert sim.closed == [1]


def test_warning_when_the_timeout_is_just_over_20s() -> None:
    sim = room_with(1, idle_timeout=21)
    assert sim.room.next_idle_check(1) == sim.now + 11
    sim.now += 11
    assert only_to(sim.idle_check(1), 1)[0].code is NoticeCode.IDLE_WARNING


def test_idle_timeout_zero_disables_it() -> None:
    sim = room_with(1, idle_timeout=0)
    assert sim.room.next_idle_check(1) is None
    sim.now += 10**7
    assert sim.idle_check(1) == []
    assert 1 in sim.room
    assert sim.take(1) == []
    sim.connect(2)
    assert sim.take(2)[0].idle_timeout == 0
    assert b"no idle timeout" in sim.apply(sim.room.receive(2, "/format text", sim.now))[1].payload
