"""``--workers N``: N server processes on one port, serving one room through Redis.

Each worker is a whole ``chatroom-server`` (its own event loop, its own node of the shared
room) that binds the port with SO_REUSEPORT, so the kernel spreads new connections over
them. This process only starts them, says where they listen, restarts one that dies, and
passes on Ctrl+C/SIGTERM.

A worker that dies (a crash, kill -9, the OOM killer) takes only its own users with it:
the others' users are untouched, the room sees the dead worker's users leave when its
heartbeat expires, and the supervisor logs which worker died and how, then starts another
in its place after a backoff — ``worker_restart_backoff[0]``, doubling for each worker
that dies within ``worker_stable`` seconds of its start, up to ``worker_restart_backoff[1]``
— so a worker that cannot run does not spin. Only SIGTERM or SIGINT of this process stops
them all (as gunicorn's and uvicorn's supervisors behave).
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from chatroom.server.config import ServerConfig, flag_fields
from chatroom.server.pidfile import remove_pid_file, serving
from chatroom.server.rolling import Adopted, RollingUpgrade, become_subreaper

log = logging.getLogger("chatroom.server")


class WorkerStartError(Exception):
    """A worker did not come up (it has said why on its stderr)."""


def _reserve_port(hosts: tuple[str, ...]) -> socket.socket:
    """A bound, not listening, SO_REUSEPORT socket: it fixes a free port for the workers
    (on the first address they listen on; every address: on 0.0.0.0)."""
    host = hosts[0] if hosts else "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    return holder


def worker_argv(config: ServerConfig, port: int | None) -> list[str]:
    """The flags of one of ``--workers``: the same settings, the port fixed, ``--worker``.

    Each flag field that differs from its default is written as its flag (the field's
    metadata) with the text its parse function reads back (the port always)."""
    config = replace(config, port=port, workers=1, worker=True, pid_file=None)
    argv = []
    for spec in flag_fields():
        value = getattr(config, spec.name)
        if value == spec.default and spec.name != "port":
            continue
        flag = spec.metadata["flag"]
        if spec.metadata.get("repeat"):
            for one in value:
                argv += [flag, one]
        elif value is True:
            argv.append(flag)
        elif value is None:  # only --port off differs from its default by being None
            argv += [flag, spec.metadata["off"]]
        elif isinstance(value, tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, repr(value) if isinstance(value, float) else str(value)]
    return argv


def how_it_ended(returncode: int) -> str:
    """A worker's end in words: ``exit status 3`` or ``killed by SIGKILL``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit status {returncode}"


@dataclass(slots=True)
class _Slot:
    """One of the N workers: the process in it now, and when to restart it if it died."""

    number: int
    proc: subprocess.Popen[str] | Adopted | None
    started: float
    delay: float  # the wait before the next restart
    restart_at: float | None = None


def run_workers(
    config: ServerConfig,
    worker_command: Callable[[int], list[str]],
    banner: Callable[[int], str],
) -> int:
    """Start ``config.workers`` processes running ``worker_command(port)``, print
    ``banner(port)`` once all listen, restart any that dies, and stop them all on
    SIGINT/SIGTERM."""
    holder = _reserve_port(config.host) if config.port == 0 else None
    port = holder.getsockname()[1] if holder is not None else config.port
    command = worker_command(port)
    first_delay, longest_delay = config.worker_restart_backoff
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # SIGHUP (reload the TLS certificate) is for the workers; a worker that serves no TLS
    # must not get it (its default action would end it), nor the supervisor.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    become_subreaper()  # an upgraded worker's new process is ours once the old one exits
    now = time.monotonic()
    slots = [
        _Slot(n, subprocess.Popen(command, stdout=subprocess.PIPE, text=True), now, first_delay)
        for n in range(1, config.workers + 1)
    ]
    rolling = RollingUpgrade(slots, config)  # SIGUSR2: one worker at a time (rolling.py)
    signal.signal(signal.SIGUSR2, rolling.request)

    def reload(signum: int, frame: object) -> None:
        for slot in slots:
            if slot.proc is not None and slot.proc.poll() is None:
                slot.proc.send_signal(signal.SIGHUP)

    if config.tls_cert:
        signal.signal(signal.SIGHUP, reload)
    try:
        # Each worker says "ready" once it listens; one that fails has said why on stderr.
        if not all(slot.proc.stdout.readline().strip() == "ready" for slot in slots):  # type: ignore[union-attr]
            raise WorkerStartError("a worker failed to start")
        if holder is not None:
            holder.close()
        print(banner(port), flush=True)
        serving(config.pid_file)
        while not stopping:
            time.sleep(config.workers_poll)
            now = time.monotonic()
            rolling.step(now)
            for slot in slots:
                if stopping:
                    break
                if rolling.owns(slot):
                    continue
                if slot.proc is not None and slot.proc.poll() is not None:
                    _died(slot, now, config.worker_stable, first_delay, longest_delay)
                if slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                    # Its "ready" goes to nobody: the others serve meanwhile, and one that
                    # fails to start is seen dying like any other.
                    slot.proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
                    slot.started, slot.restart_at = now, None
                    log.warning("worker %d restarted (pid %d)", slot.number, slot.proc.pid)
        return 0
    finally:
        if config.pid_file is not None:
            remove_pid_file(config.pid_file)
        procs = [slot.proc for slot in slots if slot.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + config.workers_stop_grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _died(slot: _Slot, now: float, stable: float, first: float, longest: float) -> None:
    """``slot``'s worker has ended: log it and set when it restarts."""
    proc = slot.proc
    assert proc is not None and proc.returncode is not None
    if now - slot.started >= stable:
        slot.delay = first  # it ran well: not a crash loop
    log.warning(
        "worker %d (pid %d) died after %.1fs: %s; its users are gone, restarting it in %gs",
        slot.number,
        proc.pid,
        now - slot.started,
        how_it_ended(proc.returncode),
        slot.delay,
    )
    slot.proc, slot.restart_at = None, now + slot.delay
    slot.delay = min(longest, slot.delay * 2)
