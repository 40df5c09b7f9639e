"""``--workers N``: N server processes on one port, serving one room through Redis.

Each worker is a whole ``chatroom-server`` (its own event loop, its own node of the shared
room) that binds the port with SO_REUSEPORT, so the kernel spreads new connections over
them. This process only starts them, says where they listen, and passes on Ctrl+C/SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable

from chatroom.server.config import ServerConfig


class WorkerStartError(Exception):
    """A worker did not come up (it has said why on its stderr)."""


def _reserve_port(host: str) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it fixes a free port for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    return holder


def run_workers(
    config: ServerConfig,
    worker_command: Callable[[int], list[str]],
    banner: Callable[[int], str],
) -> int:
    """Start ``config.workers`` processes running ``worker_command(port)``, print
    ``banner(port)`` once all listen, and stop them all on SIGINT/SIGTERM."""
    holder = _reserve_port(config.host) if config.port == 0 else None
    port = holder.getsockname()[1] if holder is not None else config.port
    command = worker_command(port)
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(config.workers)
    ]
    try:
        # Each worker says "ready" once it listens; one that fails has said why on stderr.
        if not all(worker.stdout.readline().strip() == "ready" for worker in workers):
            raise WorkerStartError("a worker failed to start")
        if holder is not None:
            holder.close()
        print(banner(port), flush=True)
        while not stopping and all(worker.poll() is None for worker in workers):
            time.sleep(0.2)
        return 0 if stopping else 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + config.workers_stop_grace
        for worker in workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
