"""A real ``chatroom-server`` that is upgraded (SIGUSR2), and clients that read in threads.

:class:`UpgradingServer` follows the server through its upgrades by its ``--pid-file``:
:meth:`UpgradingServer.upgrade` signals the pid in the file and waits for the file to name
another process. Its stderr (the log, which each new process inherits) is read by a thread,
so a test can wait for a log line. Every process goes through tests/processes.py: the new
processes are started by the server itself, in its process group, and go with it.

:class:`RawClient` is a socket, and :class:`NcClient` a real ``nc`` process, each with a
thread that collects what arrives, so a test can wait for text without reading in step.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests import processes

TIMEOUT = 60.0  # generous: the machine is shared; an upgrade starts a Python process
SERVER = Path(sys.executable).with_name("chatroom-server")


class Collector:
    """What a reader thread collected, and waiting for it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ended = False  # EOF (or an error) was read
        self.changed = threading.Condition()

    def add(self, chunk: bytes) -> None:
        with self.changed:
            if chunk:
                self.data += chunk
            else:
                self.ended = True
            self.changed.notify_all()

    def wait_for(self, text: str | bytes, start: int = 0, timeout: float = TIMEOUT) -> int:
        """Wait until ``text`` arrived after ``start``; its end's offset."""
        needle = text.encode() if isinstance(text, str) else text
        deadline = time.monotonic() + timeout
        with self.changed:
            while (at := self.data.find(needle, start)) < 0:
                left = deadline - time.monotonic()
                assert left > 0, f"{needle!r} never came; got {bytes(self.data[start:])[-600:]!r}"
                assert not self.ended, f"EOF before {needle!r}: {bytes(self.data[-600:])!r}"
                self.changed.wait(min(left, 0.5))
            return at + len(needle)

    def wait_for_end(self, timeout: float = TIMEOUT) -> None:
        """Wait for the EOF (or error) that ends the stream."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.ended:
                left = deadline - time.monotonic()
                assert left > 0, f"no end; got {bytes(self.data[-600:])!r}"
                self.changed.wait(min(left, 0.5))

    def text(self, start: int = 0) -> str:
        with self.changed:
            return bytes(self.data[start:]).decode("utf-8", "replace")


class RawClient(Collector):
    def __init__(self, port: int, rcvbuf: int | None = None, read: bool = True) -> None:
        super().__init__()
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.connect(("127.0.0.1", port))
        self.reading = threading.Event()
        if read:
            self.reading.set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            self.reading.wait()
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            self.add(chunk)
            if not chunk:
                return

    def send(self, data: str | bytes) -> None:
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def close(self) -> None:
        """Hang up (shutdown first: a close alone, with the reader thread in recv, would
        leave the socket open until that recv returns)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class NcClient(Collector):
    """A real ``nc`` process: lines go to its stdin, what it prints is collected."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.proc = processes.spawn(
            [processes.require("nc"), "127.0.0.1", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 65536):
            self.add(chunk)
        self.add(b"")

    def send(self, data: str | bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data.encode() if isinstance(data, str) else data)
        self.proc.stdin.flush()

    def close(self) -> None:
        processes.stop(self.proc)


class UpgradingServer:
    def __init__(
        self, tmp_path: Path, *flags: str, env: dict[str, str] | None = None, name: str = "chatroom"
    ) -> None:
        self.pid_file = tmp_path / f"{name}.pid"
        command = [str(SERVER), "--host", "127.0.0.1", "--port", "0"]
        command += ["--pid-file", str(self.pid_file), *flags]
        self.proc = processes.spawn(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline().decode()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.banner)
        assert match, f"no start-up line: {self.banner!r}"
        self.port = int(match.group(1))
        self.log = Collector()
        threading.Thread(target=self._read_log, daemon=True).start()
        self.pids = [self.wait_for_pid_file()]
        assert self.pids[0] == self.proc.pid

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        while chunk := os.read(self.proc.stderr.fileno(), 65536):
            self.add_log(chunk)
        self.log.add(b"")

    def add_log(self, chunk: bytes) -> None:
        self.log.add(chunk)

    def wait_for_pid_file(self, other_than: int | None = None) -> int:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                pid = int(self.pid_file.read_text())
            except (OSError, ValueError):
                pid = None
            if pid is not None and pid != other_than:
                return pid
            time.sleep(0.02)
        raise AssertionError(f"the pid file never named a process other than {other_than}")

    @property
    def pid(self) -> int:
        return self.pids[-1]

    def signal(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)

    def upgrade(self) -> int:
        """SIGUSR2, then the new process's pid once the pid file names it."""
        old = self.pid
        self.signal()
        new = self.wait_for_pid_file(other_than=old)
        self.pids.append(new)
        _wait_gone(old)
        return new

    def alive(self, pid: int | None = None) -> bool:
        try:
            os.kill(self.pid if pid is None else pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        processes.stop(self.proc)


def _wait_gone(pid: int) -> None:
    """Until ``pid`` has exited (its zombie, if it is our child, counts as gone)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as file:
                if file.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except OSError:
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} did not exit")
