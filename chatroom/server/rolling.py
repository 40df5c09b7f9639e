"""``--workers`` upgrades: SIGUSR2 to the supervisor upgrades its workers one at a time.

Each worker upgrades itself as a lone server does (adapter/upgrade.py): its new process
takes over its listening socket (still in the port's SO_REUSEPORT group, so the kernel
goes on spreading newcomers over the workers) and its connections, and the old one exits.
The supervisor (workers.py) sends SIGUSR2 to one worker, waits until it has been replaced,
then goes on to the next, so at most one worker is frozen at any moment.

The new process is the old worker's child; the supervisor is made a child subreaper
(``PR_SET_CHILD_SUBREAPER``) so that, once the old worker exits, the new one becomes its
child: it is watched, restarted if it dies and stopped on SIGTERM as the old one was
(:class:`Adopted`). It names itself on the worker's stdout pipe (``ready PID``).

An upgrade that does not happen (the new version fails: the worker logs why and serves on)
stops the rolling upgrade there, with one line, after ``handover_start`` plus three
``handover_step``.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import signal
import subprocess
import time
from typing import IO, Any, Protocol

from chatroom.server.config import ServerConfig

log = logging.getLogger("chatroom.server")
PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans among our descendants become our children (Linux; elsewhere a no-op)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


class Worker(Protocol):
    pid: int
    stdout: IO[str] | None

    def poll(self) -> int | None: ...
    def send_signal(self, signum: int) -> None: ...


class Adopted:
    """A worker that an upgrade started (our child once its parent, the old worker, has
    exited): what workers.py uses of a Popen, by pid."""

    def __init__(self, pid: int, stdout: IO[str] | None) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # not ours after all (no subreaper): gone or not
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)
        return code


class RollingUpgrade:
    """The supervisor's side: one worker at a time (the module's docstring). ``slots`` are
    workers.py's, each with ``number`` and ``proc``; :meth:`step` runs in its poll loop."""

    def __init__(self, slots: list[Any], config: ServerConfig) -> None:
        self.slots = slots
        self.timeout = config.handover_start + 3 * config.handover_step
        self.requested = False
        self._index: int | None = None  # the slot being upgraded
        self._old: Worker | None = None
        self._since = 0.0

    def request(self, signum: int = 0, frame: object = None) -> None:
        """SIGUSR2 (a signal handler: it only notes it)."""
        self.requested = True

    def owns(self, slot: Any) -> bool:
        """Whether ``slot``'s worker is being upgraded (its exit is not a death)."""
        return self._index is not None and self.slots[self._index] is slot

    def step(self, now: float) -> None:
        if self._index is None:
            if not self.requested:
                return
            self.requested = False
            self._start(0, now)
            return
        if self.requested:
            log.warning("SIGUSR2 ignored: the workers' upgrade is under way")
            self.requested = False
        slot, old = self.slots[self._index], self._old
        assert old is not None
        code = old.poll()
        if code is not None and code != 0:  # it died: workers.py restarts it
            log.warning("worker %d died while upgrading; the upgrade stops", slot.number)
            self._index = None
            return
        if code == 0:
            pid = _named_pid(old.stdout)
            if pid is not None:
                slot.proc = Adopted(pid, old.stdout)
                log.info("worker %d upgraded (pid %d -> %d)", slot.number, old.pid, pid)
                self._start(self._index + 1, now)
                return
        if now - self._since > self.timeout:
            log.warning(
                "worker %d (pid %d) was not upgraded (its log says why); the upgrade stops",
                slot.number,
                old.pid,
            )
            self._index = None

    def _start(self, index: int, now: float) -> None:
        """Signal the worker in slot ``index`` (the last one done: the upgrade is over)."""
        while index < len(self.slots) and self.slots[index].proc is None:
            index += 1  # a dead worker's slot: restarted from the new version anyway
        if index >= len(self.slots):
            self._index = None
            log.info("workers upgraded")
            return
        self._index, self._old, self._since = index, self.slots[index].proc, now
        self._old.send_signal(signal.SIGUSR2)


def _named_pid(stdout: IO[str] | None) -> int | None:
    """The pid a new worker wrote on its stdout pipe (``ready PID``), if it has yet."""
    if stdout is None:
        return None
    while select.select([stdout], [], [], 0)[0]:
        line = stdout.readline()
        if not line:
            return None
        words = line.split()
        if len(words) == 2 and words[0] == "ready" and words[1].isdigit():
            return int(words[1])
    return None
