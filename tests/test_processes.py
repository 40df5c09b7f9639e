"""tests/processes.py itself: stopping a process stops what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests import processes
from tests.conftest import TIMEOUT


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie is gone, only not reaped


def test_stop_kills_the_children_of_a_parent_killed_first():
    # A parent that starts a child and waits, as the --workers supervisor does.
    parent = processes.spawn(
        ["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    )
    child = int(parent.stdout.readline())
    assert _alive(child)
    os.kill(parent.pid, signal.SIGKILL)  # the parent dies alone: its child is orphaned
    parent.wait()
    assert _alive(child)
    processes.stop(parent)  # the group goes, the orphan with it
    deadline = time.monotonic() + TIMEOUT
    while _alive(child):
        assert time.monotonic() < deadline, "the orphaned child outlived stop()"
        time.sleep(0.01)
    parent.stdout.close()


def test_a_missing_binary_fails_the_test_in_one_line_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(processes.PACKAGES, "chatroom-no-such-binary", "some-package")
    with pytest.raises(pytest.fail.Exception) as failed:
        processes.require("chatroom-no-such-binary")
    assert str(failed.value) == "chatroom-no-such-binary not found: apt-get install some-package"
