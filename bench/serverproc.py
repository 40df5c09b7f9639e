"""Start a fresh ``chatroom-server`` process and measure it by PID from /proc."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
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

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise ServerError("no VmRSS")

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the server process so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime

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
