"""Issue 21's client scenario: a flood into a real ``chatroom-client`` process.

A real server process, a real client process in a real terminal (tmux, 120x40, the user's
view), and a raw peer that sends ``rate`` chat lines a second for ``duration`` seconds.
Measured, from the outside:

- the client's CPU per received line: utime+stime from ``/proc/PID/stat`` over the flood
  and until its last line is on screen, divided by the lines sent;
- the lag: once a second the peer (an operator) sets the room's topic to a marker, and
  tmux's ``capture-pane`` is polled until the header shows it; the lag is the time from
  sending it to seeing it (so it includes the server and tmux, as a user's eye would). The
  topic event comes in the same stream as the flood's lines, so a client that falls behind
  shows it late. (A marker line in the log would do only at low rates: at 2,000 lines/s a
  line scrolls past between two looks.) "Growing" compares the markers of the last third
  of the flood with those of the first;
- the drain: after the flood, how long until its last line is on screen (the log's bottom);
- the client's RSS (``VmRSS``), sampled, its peak and its last value.

``python -m bench --scenario client-500`` (or ``client-2000``, ``client-200``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.serverproc import REPO_ROOT, ServerProcess, cpu_seconds, rss_kib

WIDTH, HEIGHT = 120, 40
POLL = 0.02  # seconds between two looks at the screen
OPER_PASSWORD = "bench-only"


class ClientFloodError(Exception):
    pass


class Terminal:
    """A tmux server of its own, one window running the client."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("tmux")
        if binary is None:
            raise ClientFloodError("tmux is needed (apt-get install tmux)")
        self.tmux = [binary, "-S", str(directory / "tmux.sock")]

    def start(self, command: list[str]) -> int:
        shell = "exec " + " ".join(_quote(part) for part in command)
        subprocess.run(
            [*self.tmux, "new-session", "-d", "-s", "c", "-x", str(WIDTH), "-y", str(HEIGHT),
             shell],
            check=True,
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TERM": "xterm-256color"},
        )  # fmt: skip
        pid = subprocess.run(
            [*self.tmux, "display", "-p", "-t", "c", "#{pane_pid}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return int(pid.strip())

    def screen(self) -> str:
        return subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", "c"], capture_output=True, text=True
        ).stdout

    def wait_for(self, text: str, timeout: float) -> float:
        """When ``text`` was first seen on screen (monotonic time)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.screen():
                return time.monotonic()
            time.sleep(POLL)
        raise ClientFloodError(f"{text!r} not on screen after {timeout} s:\n{self.screen()}")

    def stop(self) -> None:
        subprocess.run([*self.tmux, "kill-server"], capture_output=True, timeout=10)


def _quote(part: str) -> str:
    return "'" + part.replace("'", "'\\''") + "'"


async def _flood(port: int, rate: float, duration: float, marks: list[tuple[str, float]]) -> int:
    """Send ``rate`` lines/s for ``duration`` s (a marker line each second); return how
    many lines went. The peer reads everything the server sends it, so it is never slow."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def drain() -> None:
        while await reader.read(1 << 16):
            pass

    draining = asyncio.create_task(drain())
    writer.write(b"rename|flooder\n" + f"/oper root {OPER_PASSWORD}\n".encode())
    sent, start = 0, time.monotonic()
    tick = 0.01
    next_mark = start + 0.5
    try:
        while (now := time.monotonic()) - start < duration:
            due = int((now - start) * rate) - sent
            if due > 0:
                writer.write(b"".join(
                    b"flood %d the quick brown fox jumps over the lazy dog\n" % (sent + i)
                    for i in range(due)
                ))  # fmt: skip
                sent += due
            if now >= next_mark:
                mark = f"mark-{len(marks):04d}-end"
                writer.write(f"/topic {mark}\n".encode())
                marks.append((mark, time.monotonic()))
                sent += 1
                next_mark += 1.0
            await writer.drain()
            await asyncio.sleep(tick)
        last = f"mark-{len(marks):04d}-end"
        writer.write(last.encode() + b"\n")
        marks.append((last, time.monotonic()))
        await writer.drain()
        return sent + 1
    finally:
        await asyncio.sleep(0.2)
        draining.cancel()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def run_client_flood(rate: float, duration: float, scrollback: int = 5000) -> dict[str, Any]:
    from chatroom.server.core.passwords import hash_password

    directory = Path(tempfile.mkdtemp(prefix="client-flood-"))
    ops = directory / "ops"
    ops.write_text(f"root {hash_password(OPER_PASSWORD)}\n")
    server = ServerProcess(extra_args=["--idle-timeout", "0", "--ops-file", str(ops)])
    server.start()
    terminal = Terminal(directory)
    try:
        pid = terminal.start(
            [sys.executable, "-m", "chatroom.client", f"127.0.0.1:{server.port}",
             "--name", "watcher", "--scrollback", str(scrollback), "--notify", "off"]
        )  # fmt: skip
        terminal.wait_for("connected as", 20)
        time.sleep(1.0)  # settle: the start-up's CPU is not the flood's
        idle_cpu = _idle_cpu(pid)
        marks: list[tuple[str, float]] = []
        samples: list[int] = []
        lags: list[float] = []
        result: list[int] = []
        flood = threading.Thread(
            target=lambda: result.append(asyncio.run(_flood(server.port, rate, duration, marks))),
            daemon=True,
        )
        cpu0, wall0 = cpu_seconds(pid), time.monotonic()
        spy = _py_spy(pid, duration)
        flood.start()
        seen = 0
        while flood.is_alive() or seen < len(marks):
            time.sleep(POLL)
            shown = terminal.screen()
            while seen < len(marks) and marks[seen][0] in shown:
                lags.append(time.monotonic() - marks[seen][1])
                seen += 1
            samples.append(rss_kib(pid))
            if time.monotonic() - wall0 > duration + 120:
                raise ClientFloodError(f"the client fell behind: {seen}/{len(marks)} markers")
        if not result:
            raise ClientFloodError("the flooding peer failed")
        sent = result[0]
        if spy is not None:
            spy.wait(timeout=60)
        cpu1, wall1 = cpu_seconds(pid), time.monotonic()
        during = lags[:-1] or lags  # the last marker is sent after the flood
        third = max(1, len(during) // 3)
        early, late = _median(during[:third]), _median(during[-third:])
        cpu = cpu1 - cpu0
        return {
            "rate": rate,
            "duration": duration,
            "lines": sent,
            "client_cpu_s": round(cpu, 2),
            "client_cpu_pct": round(100 * cpu / (wall1 - wall0), 1),
            "ms_cpu_per_line": round(1000 * cpu / sent, 3),
            "idle_cpu_pct": idle_cpu,
            "lag_ms_p50": round(1000 * _median(during)),
            "lag_ms_max": round(1000 * max(lags)),
            "lag_ms_early": round(1000 * early),
            "lag_ms_late": round(1000 * late),
            "drain_ms": round(1000 * lags[-1]),
            "rss_peak_kib": max(samples),
            "rss_last_kib": samples[-1],
            "markers": len(lags),
            "lags_ms": [round(1000 * lag) for lag in lags],
        }
    finally:
        terminal.stop()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _py_spy(pid: int, duration: float) -> subprocess.Popen | None:
    """With CLIENT_FLOOD_PROFILE=FILE: py-spy records the client during the flood (its
    top functions: ``py-spy record --format raw``, read with any flame graph tool)."""
    out = os.environ.get("CLIENT_FLOOD_PROFILE")
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not out or not Path(spy).exists():
        return None
    return subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--duration", str(int(duration)), "--rate", "200",
         "--format", "raw", "--output", out, "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def _idle_cpu(pid: int, seconds: float = 2.0) -> float:
    """The client's CPU while nothing happens, in % of a core."""
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    return round(100 * (cpu_seconds(pid) - cpu0) / seconds, 2)


def main() -> None:
    rate = float(sys.argv[1]) if len(sys.argv) > 1 else 500
    duration = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    print(run_client_flood(rate, duration))


if __name__ == "__main__":
    main()
