"""The freeze of an upgrade (issue 26): N connections handed to a new process, measured.

A real server (``chatroom-server --pid-file``) gets N plain connections from this process
(each one read and discarded, so none is dropped as slow), then is upgraded with SIGUSR2
``rounds`` times. One more client sends ``/ping`` every ``ping_every`` seconds throughout:
its longest wait for a ``pong`` during the upgrades is the freeze a user feels. The
server's own lines say how long the old process was frozen (from the new one's hello to
its COMMIT) and how long the new one took (from its hello to serving). Afterwards every one
of the N connections must still be open, and must answer.

``python -m bench --scenario handover-5000`` (or ``python -m bench.handover N``).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.loadgen import raise_nofile
from bench.serverproc import BASE_ARGS

_FROZEN = re.compile(rb"took over (\d+) connections \(frozen (\d+) ms\)")
_TOOK = re.compile(rb"took over (\d+) connections in (\d+) ms")


class Sink(asyncio.Protocol):
    """A connection that reads everything and counts its end."""

    closed = 0

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.welcomed = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.last_data = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_data = time.monotonic()
        if not self.welcomed.done():
            self.buf += data
            if b"Welcome" in self.buf:
                self.welcomed.set_result(None)
                self.buf = b""
        elif b"pong" in data:
            self.buf += data

    def connection_lost(self, exc: Exception | None) -> None:
        Sink.closed += 1


async def _measure(port: int, pid_file: Path, clients: int, rounds: int, log: bytearray) -> dict:
    loop = asyncio.get_running_loop()
    sinks: list[Sink] = []
    for start in range(0, clients, 500):  # in batches: the listen backlog is 4096
        made = await asyncio.gather(
            *(
                loop.create_connection(Sink, "127.0.0.1", port)
                for _ in range(min(500, clients - start))
            )
        )
        sinks += [protocol for _, protocol in made]
    await asyncio.wait_for(asyncio.gather(*(s.welcomed for s in sinks)), 300)
    while time.monotonic() - max(s.last_data for s in sinks) < 1.0:  # the joins' storm
        await asyncio.sleep(0.2)
    _, pinger = await loop.create_connection(Sink, "127.0.0.1", port)
    await asyncio.wait_for(pinger.welcomed, 60)
    waits: list[float] = []
    stop = asyncio.Event()

    async def ping() -> None:
        while not stop.is_set():
            sent = time.perf_counter()
            before = pinger.buf.count(b"pong")
            pinger.transport.write(b"/ping\n")  # type: ignore[union-attr]
            while pinger.buf.count(b"pong") == before:
                await asyncio.sleep(0.0005)
            waits.append(time.perf_counter() - sent)
            await asyncio.sleep(0.005)

    pinging = asyncio.create_task(ping())
    await asyncio.sleep(1.0)
    calm = len(waits)
    pids = [int(pid_file.read_text())]
    for _ in range(rounds):
        os.kill(pids[-1], signal.SIGUSR2)
        deadline = time.monotonic() + 120
        while (pid := int(pid_file.read_text() or 0)) == pids[-1]:
            assert time.monotonic() < deadline, "no upgrade within 2 minutes"
            await asyncio.sleep(0.01)
        pids.append(pid)
        await asyncio.sleep(1.0)
    stop.set()
    await pinging
    # Every connection is still there, and answers: a ping from each, a pong back.
    for sink in sinks:
        sink.transport.write(b"/ping\n")  # type: ignore[union-attr]
    deadline = time.monotonic() + 120
    while sum(b"pong" in s.buf for s in sinks) < len(sinks) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    answered = sum(b"pong" in s.buf for s in sinks)
    frozen = [int(m.group(2)) for m in _FROZEN.finditer(log)]
    took = [int(m.group(2)) for m in _TOOK.finditer(log)]
    carried = [int(m.group(1)) for m in _FROZEN.finditer(log)]
    upgrade_waits = waits[calm:]
    return {
        "clients": clients,
        "rounds": rounds,
        "carried": carried,
        "frozen_ms": frozen,
        "new_process_ms": took,
        "ping_ms_calm_max": round(max(waits[:calm]) * 1000, 1),
        "ping_ms_max_during_upgrades": round(max(upgrade_waits) * 1000, 1),
        "closed": Sink.closed,
        "answered_after": answered,
        "pids": pids,
    }


def run_handover(clients: int, rounds: int = 3, loop: str = "auto") -> dict:
    """Start the server, measure (the module's docstring), stop it; a result row."""
    raise_nofile()
    result: dict[str, Any] = {"kind": "handover", "clients": clients, "errors": []}
    with tempfile.TemporaryDirectory() as directory:
        pid_file = Path(directory) / "server.pid"
        args = list(BASE_ARGS)
        level = args.index("--log-level")
        args[level + 1] = "info"
        command = [sys.executable, "-m", "chatroom.server", *args, "--loop", loop]
        proc = subprocess.Popen(
            [*command, "--pid-file", str(pid_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        log = bytearray()

        def read_log() -> None:
            while chunk := os.read(proc.stderr.fileno(), 65536):  # type: ignore[union-attr]
                log.extend(chunk)

        threading.Thread(target=read_log, daemon=True).start()
        try:
            banner = proc.stdout.readline().decode()  # type: ignore[union-attr]
            port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))  # type: ignore[union-attr]
            while not pid_file.exists():
                time.sleep(0.01)
            result.update(asyncio.run(_measure(port, pid_file, clients, rounds, log)))
            result["ok"] = (
                result["closed"] == 0
                and result["answered_after"] == clients
                and len(set(result["pids"])) == rounds + 1
            )
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    result["summary"] = (
        f"freeze {'/'.join(map(str, result.get('frozen_ms', [])))} ms (old process), new "
        f"process {'/'.join(map(str, result.get('new_process_ms', [])))} ms; longest ping "
        f"{result.get('ping_ms_max_during_upgrades')} ms (calm: "
        f"{result.get('ping_ms_calm_max')} ms); {result.get('closed')} closed"
    )
    return result


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    outcome = run_handover(count, int(sys.argv[2]) if len(sys.argv) > 2 else 3)
    for key, value in outcome.items():
        print(f"{key}: {value}")
