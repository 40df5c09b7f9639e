"""A real ``redis-server`` for tests: started on a free 127.0.0.1 port, stopped afterwards.

Use it from a test module (or a conftest) by loading it as a plugin::

    pytest_plugins = ["tests.redis_fixture"]  # as tests/conftest.py does

``redis_url`` is ``redis://127.0.0.1:PORT/0``; ``redis_server`` is the :class:`RedisServer`
behind it, for tests that kill Redis (``kill()``), hang it (``pause()``, ``resume()``) or
restart it on the same port (``restart()``, or ``start()`` after ``kill()``). The server
keeps nothing on disk (``--save ''``, ``--appendonly no``), so a restart starts empty, as a
Redis without persistence does.

A missing ``redis-server`` fails the test, in one line saying what to install, instead of
skipping it: these tests are part of the suite, and ``.ci/run`` installs Debian's
``redis-server``.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import processes

START_TIMEOUT = 5.0  # seconds for redis-server to answer PING


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    """True when a Redis on ``port`` answers PING with +PONG."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` subprocess on a fixed port, which can be killed and restarted."""

    def __init__(self, executable: str, workdir: Path, port: int | None = None) -> None:
        self.executable = executable
        self.workdir = workdir
        self.port = port or _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start on ``self.port`` and wait until PING answers; fail the test if it does not."""
        assert not self.running, "redis-server is already running"
        log = self.workdir / "redis.log"
        # redis-server takes the config as argv; an empty --logfile means stdout.
        args = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            "--daemonize", "no",
        ]  # fmt: skip
        with open(log, "ab") as out:
            self.proc = processes.spawn(args, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"redis-server exited with {self.proc.returncode} on port {self.port}: "
                    + log.read_text(errors="replace")[-500:]
                )
            if _ping(self.port):
                return
            time.sleep(0.01)
        self.kill()
        pytest.fail(f"redis-server did not answer PING on port {self.port} in {START_TIMEOUT}s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM) and wait; nothing is saved."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case it was paused
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        if self.proc is not None:
            processes.stop(self.proc)  # reaped (and killed, if SIGTERM was not enough)
        self.proc = None

    def kill(self) -> None:
        """Kill -9, as a crash or a lost machine: connections are cut, the data is gone."""
        if self.proc is not None:
            processes.stop(self.proc)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: Redis hangs — connections stay open, nothing is answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Stop if running, then start again on the same port, empty."""
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty ``redis-server`` for one test; stopped afterwards."""
    executable = processes.require("redis-server")
    server = RedisServer(executable, tmp_path)
    for _ in range(3):  # the free port may be taken between probing and binding
        server.port = _free_port()
        with contextlib.suppress(pytest.fail.Exception):
            server.start()
            break
    else:
        server.start()  # once more, and let its failure stand
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:PORT/0`` of a fresh ``redis-server`` for one test."""
    return redis_server.url
