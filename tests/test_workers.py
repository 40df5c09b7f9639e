"""The --workers supervisor's restart policy (the process test is in test_cluster.py)."""

from __future__ import annotations

import signal

from chatroom.server.workers import _died, _Slot, how_it_ended


class Ended:
    pid = 42

    def __init__(self, returncode: int) -> None:
        self.returncode = returncode


def test_a_worker_that_keeps_dying_waits_longer_each_time_and_one_that_ran_well_does_not():
    slot = _Slot(1, None, started=0.0, delay=0.5)
    waits = []
    now = 0.0
    for _ in range(8):  # dies at once, every time
        slot.proc = Ended(3)  # type: ignore[assignment]
        slot.started = now
        _died(slot, now, stable=10.0, first=0.5, longest=4.0)
        waits.append(slot.restart_at - now)
        now = slot.restart_at
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    slot.proc, slot.started = Ended(-9), now  # type: ignore[assignment]
    _died(slot, now + 60, stable=10.0, first=0.5, longest=4.0)  # it ran for a minute
    assert slot.restart_at == now + 60.5


def test_how_a_worker_ended_is_said_plainly():
    assert how_it_ended(-signal.SIGKILL) == "killed by SIGKILL"
    assert how_it_ended(1) == "exit status 1"
