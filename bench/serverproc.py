"""Start a fresh ``chatroom-server`` process and measure it by PID from /proc."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_TLS_PORT = re.compile(r"TLS on port (\d+)")
_WS_PORT = re.compile(r"WebSocket: ws://[^:]+:(\d+)/")
_CLK_TCK = os.sysconf("SC_CLK_TCK")

BASE_ARGS = [
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--rate",
    "0",  # flood control would pace the senders
    "--idle-timeout",
    "0",
    "--history",
    "0",
    "--log-level",
    "warning",
    "--max-clients",
    "20000",
]


class ServerError(RuntimeError):
    pass


@functools.cache
def server_flags(src: str | None = None) -> frozenset[str]:
    """The flags the server in ``src`` (None: this checkout) knows, from its ``--help``, so
    that a scenario can use a newer flag and still run an older ``--server-src``."""
    out = subprocess.run(
        [sys.executable, "-m", "chatroom.server", "--help"],
        cwd=Path(src).resolve() if src else REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        raise ServerError(f"chatroom.server --help failed: {out.stderr[-500:]}")
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]", out.stdout))


class ServerProcess:
    """One server process. ``loop`` is "asyncio" or "uvloop" (the server's ``--loop``)."""

    def __init__(
        self, loop: str = "asyncio", extra_args: list[str] | None = None, src: str | None = None
    ) -> None:
        cli = Path(src or REPO_ROOT) / "chatroom" / "server" / "cli.py"
        if '"--loop"' in cli.read_text():
            launcher = [sys.executable, "-m", "chatroom.server", "--loop", loop]
        elif loop == "uvloop":
            # An older server (--server-src) has no --loop flag: install uvloop around it. -O:
            # before a98665a connection_made() asserted isinstance(transport,
            # asyncio.Transport), which uvloop's TCPTransport is not.
            launcher = [sys.executable, "-O", "-m", "bench.uvloop_server"]
        else:
            launcher = [sys.executable, "-m", "chatroom.server"]
        self.argv = [*launcher, *BASE_ARGS, *(extra_args or [])]
        # ``src``: a directory holding another ``chatroom`` package (say, an older commit
        # unpacked with ``git archive``) to run instead of this checkout's; it comes first on
        # sys.path because it is the working directory of ``python -m``.
        self.cwd = Path(src).resolve() if src else REPO_ROOT
        self.env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.tls_port: int | None = None  # with --tls-port: from the start-up line
        self.ws_port: int | None = None  # with --ws-port: from the start-up line
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self.shutdown_seconds: float | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 15.0) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode(errors="replace") if ready else ""
        match = _LISTENING.search(line)
        if match is None:
            self.kill()
            raise ServerError(f"server did not start: {line.strip()!r} {self.log_tail()}")
        self.port = int(match.group(1))
        if tls := _TLS_PORT.search(line):
            self.tls_port = int(tls.group(1))
        if ws := _WS_PORT.search(line):
            self.ws_port = int(ws.group(1))

    def pids(self) -> list[int]:
        """The server process and its descendants (``--workers N``: the parent only
        supervises, its children are the servers)."""
        return process_tree(self.pid)

    def rss_kib(self) -> int:
        """VmRSS summed over the server's process tree."""
        total = sum(rss_kib(pid) for pid in self.pids())
        if total <= 0:
            raise ServerError("no VmRSS")
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server's process tree so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, as an operator would; returns the exit code (killed: negative)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
                self.shutdown_seconds = time.monotonic() - started
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, limit: int = 1500) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-limit:]


# --- /proc helpers -----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        with (
            contextlib.suppress(OSError, ValueError),
            open(f"/proc/{pid}/task/{tid}/children") as f,
        ):
            out += [int(x) for x in f.read().split()]
    return out


def process_tree(root: int, limit: int = 64) -> list[int]:
    """``root`` and its descendants (bounded: at most ``limit`` processes)."""
    seen, todo = [root], [root]
    while todo and len(seen) < limit:
        for child in _children(todo.pop()):
            if child not in seen and len(seen) < limit:
                seen.append(child)
                todo.append(child)
    return seen


# --- a private redis-server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_executable() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()),
        None,
    )


class RedisProcess:
    """A fresh, empty ``redis-server`` on a free 127.0.0.1 port, nothing kept on disk."""

    def __init__(self) -> None:
        exe = redis_executable()
        if exe is None:
            raise ServerError("redis-server is not installed (apt-get install redis-server)")
        self.exe = exe
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 5.0) -> None:
        for _attempt in range(3):  # the free port may be taken between probing and binding
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [
                    self.exe,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    self._dir.name,
                    "--daemonize",
                    "no",
                ],  # fmt: skip
                stdout=self._log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.proc.poll() is None:
                if _ping(self.port):
                    return
                time.sleep(0.01)
            self.stop()
        self._log.seek(0)
        tail = self._log.read().decode(errors="replace")[-500:]
        raise ServerError(f"redis-server did not start: {tail}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            self._dir.cleanup()
