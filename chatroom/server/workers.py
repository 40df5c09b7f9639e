"""``--workers N``: N server processes on one port, serving one room through Redis.

Each worker is a whole ``chatroom-server`` (its own event loop, its own node of the shared
room) that binds the port with SO_REUSEPORT, so the kernel spreads new connections over
them. This process only starts them, says where they listen, and passes on Ctrl+C/SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time

from chatroom.server.config import ServerConfig

STOP_GRACE = 3.0  # seconds the workers get to shut down before they are killed


def worker_argv(args: argparse.Namespace, port: int) -> list[str]:
    """The command line of one worker: the same settings, the port fixed, ``--worker``."""
    argv = [
        "--host", args.host, "--port", str(port),
        "--idle-timeout", repr(args.idle_timeout), "--history", str(args.history),
        "--max-line", str(args.max_line), "--max-clients", str(args.max_clients),
        "--max-per-ip", str(args.max_per_ip), "--rate", repr(args.rate),
        "--burst", str(args.burst), "--max-sendq", str(args.max_sendq),
        "--loop", args.loop, "--log-level", args.log_level,
        "--redis", args.redis, "--room", args.room, "--worker",
    ]  # fmt: skip
    return argv


def _reserve_port(host: str) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it fixes a free port for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    return holder


def run_workers(args: argparse.Namespace, config: ServerConfig) -> int:
    from chatroom.server.cli import PROG, banner_line

    holder = _reserve_port(config.host) if config.port == 0 else None
    port = holder.getsockname()[1] if holder is not None else config.port
    command = [sys.executable, "-m", "chatroom.server", *worker_argv(args, port)]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    workers = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.workers)
    ]
    try:
        # Each worker says "ready" once it listens; one that fails has said why on stderr.
        if not all(worker.stdout.readline().strip() == "ready" for worker in workers):
            print(f"{PROG}: a worker failed to start", file=sys.stderr)
            return 1
        if holder is not None:
            holder.close()
        print(banner_line(config.host, config.host, port, args.workers), flush=True)
        while not stopping and all(worker.poll() is None for worker in workers):
            time.sleep(0.2)
        return 0 if stopping else 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for worker in workers:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
