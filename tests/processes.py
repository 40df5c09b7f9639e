"""Every process a test starts is stopped when the test ends, whatever happened in it.

:func:`spawn` is ``subprocess.Popen`` in a new session (``start_new_session=True``): the
process leads its own process group, and its children (the ``--workers`` supervisor's
workers) are in that group too. :func:`stop` kills the whole group (``os.killpg``) and
reaps the leader, so no worker outlives a supervisor that a test killed with -9 or left
running when an assert failed.

Fixtures that start processes call :func:`stop` in their teardown; as a net under them,
the autouse fixture in conftest.py calls :func:`stop_all` after every test, for whatever
was spawned during it. :func:`require` finds a binary a test drives (nc, tmux,
redis-server) or fails the test with the one line that says what to install: these tests
are part of the suite, so a missing binary is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

_spawned: list[subprocess.Popen[Any]] = []  # not yet stopped by stop()

# Where each binary comes from on Debian/Ubuntu (.ci/run installs them).
PACKAGES = {"nc": "netcat-openbsd", "tmux": "tmux", "redis-server": "redis-server"}


def require(binary: str) -> str:
    """The path of ``binary``; fails the test, saying what to install, if it is missing."""
    found = shutil.which(binary) or next(
        (p for d in ("/usr/bin", "/usr/sbin") if Path(p := f"{d}/{binary}").exists()), None
    )
    if found is None:
        package = PACKAGES.get(binary, binary)
        pytest.fail(f"{binary} not found: apt-get install {package}", pytrace=False)
    return found


def spawn(args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(args, **kwargs)`` leading a process group of its own, recorded so
    that :func:`stop_all` stops it if nothing else does."""
    proc = subprocess.Popen(args, start_new_session=True, **kwargs)
    _spawned.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc``'s whole process group and reap ``proc``. Harmless on a process that
    has already exited (its orphaned children, if any, still go)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group id is the leader's pid
    if proc.poll() is None:
        proc.kill()  # not a group leader (spawned elsewhere): itself at least
    proc.wait()
    with contextlib.suppress(ValueError):
        _spawned.remove(proc)


def stop_all() -> list[list[str]]:
    """Stop every spawned process not stopped yet; return the command lines of those that
    were still running (or had left a child running)."""
    left = []
    while _spawned:
        proc = _spawned[-1]
        if proc.poll() is None or _group_alive(proc.pid):
            left.append([str(a) for a in proc.args])  # type: ignore[union-attr]
        stop(proc)
    return left


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
