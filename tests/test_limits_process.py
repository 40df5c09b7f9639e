"""The server's limits against the real ``chatroom-server`` process, over real sockets.

Clients bind 127.0.0.2, 127.0.0.3 ... as their source address, so per-address rules are
tested from "different machines" on loopback once ``--exempt-ip`` is given no network.
Nothing here asserts speed: windows are configured short, and every wait polls against a
generous deadline.
"""

from __future__ import annotations

import json
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests import processes

SERVER_SCRIPT = Path(sys.executable).with_name("chatroom-server")
DEADLINE = 20.0  # seconds; generous, the machine is shared


class Server:
    """A ``chatroom-server`` process on a free 127.0.0.1 port; its stderr goes to a file,
    so a flood of log lines can neither block it nor be missed."""

    def __init__(self, tmp_path: Path, *flags: str, prefix: Iterable[str] = ()) -> None:
        self.log_path = tmp_path / f"server-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        command = [*prefix, str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", *flags]
        self.proc = processes.spawn(command, stdout=subprocess.PIPE, stderr=self._log, text=True)
        self.banner = self.proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.banner)
        assert match, f"no start-up line: {self.banner!r} {self.log()!r}"
        self.port = int(match.group(1))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        processes.stop(self.proc)
        self._log.close()


@pytest.fixture
def start(tmp_path):
    servers: list[Server] = []

    def start(*flags: str, prefix: Iterable[str] = ()) -> Server:
        server = Server(tmp_path, *flags, prefix=prefix)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", server.port), timeout=DEADLINE, source_address=(source, 0)
    )


class Reader:
    """Lines from one socket, read with a deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def line(self, timeout: float = DEADLINE) -> str:
        """The next line; '' if the server closed the connection first."""
        self.sock.settimeout(timeout)
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def until(self, predicate, timeout: float = DEADLINE) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            assert line, "closed by the server"
            if predicate(line):
                return line

    def lines_for(self, seconds: float) -> list[str]:
        """Every complete line that arrives within ``seconds``."""
        lines = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.line(left)
            except TimeoutError:
                break
            if not line:
                break
            lines.append(line)
        return lines


def json_member(server: Server, source: str) -> Reader:
    reader = Reader(connect(server, source))
    reader.sock.sendall(b"/format json\n")
    reader.until(lambda line: line.startswith('{"type":"welcome"'))
    return reader


def first_lines(socks: list[socket.socket], timeout: float = DEADLINE) -> list[bytes | None]:
    """The first line each socket receives (b"" if it was closed without one; None if
    nothing came before the deadline)."""
    selector = selectors.DefaultSelector()
    got: list[bytes | None] = [None] * len(socks)
    buffers = [b""] * len(socks)
    for index, sock in enumerate(socks):
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, index)
    deadline = time.monotonic() + timeout
    pending = len(socks)
    while pending and (left := deadline - time.monotonic()) > 0:
        for key, _ in selector.select(left):
            index = key.data
            try:
                chunk = socks[index].recv(4096)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            buffers[index] += chunk
            if chunk and b"\n" not in buffers[index]:
                continue
            got[index] = buffers[index].split(b"\n", 1)[0] + (b"\n" if chunk else b"")
            selector.unregister(socks[index])
            pending -= 1
    selector.close()
    return got


def poll(condition, timeout: float = DEADLINE, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)


def welcomed(server: Server, source: str) -> bool:
    """Whether a new connection from ``source`` is welcomed (it is closed either way)."""
    with connect(server, source) as sock:
        return Reader(sock).line().startswith("*** Welcome")


# --- item 7: the exempt set is a flag, and the per-address rules apply to loopback --------


def test_loopback_is_exempt_by_default(start):
    server = start("--max-per-ip", "2", "--connect-burst", "1", "--connect-rate", "1")
    socks = [connect(server, "127.0.0.2") for _ in range(4)]
    try:
        assert all(line.startswith(b"*** Welcome") for line in first_lines(socks))
    finally:
        for sock in socks:
            sock.close()


def test_per_address_cap_from_127_0_0_2_when_nothing_is_exempt(start):
    server = start("--exempt-ip", "--max-per-ip", "2", "--idle-timeout", "0")
    first, second = Reader(connect(server, "127.0.0.2")), Reader(connect(server, "127.0.0.2"))
    assert first.line().startswith("*** Welcome") and second.line().startswith("*** Welcome")
    third = Reader(connect(server, "127.0.0.2"))
    assert third.line() == "*** too many connections from your address (at most 2)"
    assert third.line() == ""  # and it is closed
    other = Reader(connect(server, "127.0.0.3"))  # another address is not affected
    assert other.line().startswith("*** Welcome")
    first.sock.close()  # a slot is free again
    assert poll(lambda: welcomed(server, "127.0.0.2"))
    for reader in (second, third, other):
        reader.sock.close()


def test_exempt_ip_takes_networks(start):
    server = start("--exempt-ip", "127.0.0.8/30", "--max-per-ip", "1", "--idle-timeout", "0")
    exempt = [connect(server, "127.0.0.9") for _ in range(3)]
    limited = [connect(server, "127.0.0.12") for _ in range(2)]
    try:
        lines = first_lines(exempt + limited)
        assert all(line.startswith(b"*** Welcome") for line in lines[:3])
        assert sorted(line[:20] for line in lines[3:]) == [
            b"*** Welcome, 127.0.0",
            b"*** too many connect",
        ]
    finally:
        for sock in exempt + limited:
            sock.close()


# --- item 6: new connections are throttled per address; a churn floods nobody -------------


def test_new_connections_are_throttled_per_address(start):
    # A burst of 3, then one every 5 s (12 a minute).
    server = start("--exempt-ip", "--connect-burst", "3", "--connect-rate", "12")
    for _ in range(3):
        assert welcomed(server, "127.0.0.4")
    with connect(server, "127.0.0.4") as sock:
        reader = Reader(sock)
        line = reader.line()
        assert re.fullmatch(
            r"\*\*\* too many new connections from your address; try again in [1-5]s", line
        ), line
        assert reader.line() == ""
    assert welcomed(server, "127.0.0.5")  # another address has its own bucket
    assert poll(lambda: welcomed(server, "127.0.0.4"), every=0.5)  # a token came back
    log = server.log()
    assert "refused 127.0.0.4:" in log and "too many new connections" in log


def churn(server: Server, sources: list[str], cycles: int) -> None:
    """Connect and close ``cycles`` times, cycling through ``sources``, sending no line: the
    first half one after another (each reads its first line), the rest in waves of 50 that
    all connect, then all close."""
    sources = [sources[n % len(sources)] for n in range(cycles)]
    for source in sources[: cycles // 2]:
        with connect(server, source) as sock:
            Reader(sock).line()
    rest = sources[cycles // 2 :]
    for start in range(0, len(rest), 50):
        wave = [connect(server, source) for source in rest[start : start + 50]]
        for sock in wave:
            sock.close()


@pytest.mark.parametrize(
    ("flags", "sources"),
    [
        # One address, not exempt: its connection throttle stops the churn.
        (["--exempt-ip"], ["127.0.0.2"]),
        # Many addresses (a botnet's worth), or exempt loopback: each is under its limits,
        # and the room goes quiet instead.
        (["--exempt-ip"], [f"127.0.1.{n}" for n in range(1, 101)]),
        ([], ["127.0.0.1"]),
    ],
    ids=["one-address", "many-addresses", "exempt-loopback"],
)
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_connect_close_churn_floods_nobody(start, flags, sources, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    server = start(*flags, "--idle-timeout", "0", "--loop", loop)
    members = [json_member(server, f"127.0.0.{n}") for n in (20, 21)]
    cycles = 300
    churn(server, sources, cycles)
    # A newcomer can chat at once, and everyone sees it join, then its line.
    newcomer = Reader(connect(server, "127.0.0.30"))
    assert newcomer.line().startswith("*** Welcome")
    newcomer.sock.sendall(b"hello after the churn\n")
    for member in members:
        events = []
        while True:
            line = member.line()
            assert line, "a member was dropped"
            event = json.loads(line)
            events.append(event)
            if event.get("text") == "hello after the churn":
                break
        seqs = [event["seq"] for event in events if "seq" in event]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in seq"
        churners = [
            e
            for e in events
            if e["type"] in ("join", "leave") and not e["id"].startswith("127.0.0.30:")
        ]
        # Before: every cycle was a join and a leave line to everyone (600 here).
        assert len(churners) <= cycles // 3, len(churners)
        joins = [e for e in events if e["type"] == "join" and e["id"].startswith("127.0.0.30:")]
        assert len(joins) == 1  # the newcomer was announced, before its line
    # A newcomer that says nothing is announced too, soon.
    silent = Reader(connect(server, "127.0.0.31"))
    assert silent.line().startswith("*** Welcome")
    members[0].until(lambda line: '"type":"join"' in line and '"127.0.0.31:' in line)
    log = server.log()
    assert log.count("\n") < 100, "the log has a line per churned connection"
    for reader in [*members, newcomer, silent]:
        reader.sock.close()


# --- item 8: out of file descriptors -------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_out_of_file_descriptors_newcomers_hear_server_full(start, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    server = start(
        "--loop", loop, "--idle-timeout", "0",
        prefix=["prlimit", "--nofile=64:64"],
    )  # fmt: skip
    # Connections pile up in the listen backlog while the server is stopped, then all
    # arrive at once: more than it has file descriptors for.
    server.proc.send_signal(signal.SIGSTOP)
    try:
        socks = [connect(server) for _ in range(150)]
    finally:
        server.proc.send_signal(signal.SIGCONT)
    try:
        lines = first_lines(socks)
        welcomes = sum(1 for line in lines if line and line.startswith(b"*** Welcome"))
        full = sum(1 for line in lines if line and line.startswith(b"*** server full"))
        # Before: asyncio left them waiting and logged a traceback per accept(); uvloop
        # closed them without a word.
        assert welcomes + full == len(socks), [
            line for line in lines if not line or line[:3] != b"***"
        ][:3]
        assert welcomes >= 1
    finally:
        for sock in socks:
            sock.close()
    # The server still serves once they are gone.
    assert poll(lambda: welcomed(server, "127.0.0.1"))
    log = server.log()
    assert "Traceback" not in log and len(log) < 20_000
    assert 1 <= log.count("out of file descriptors") <= 2
    match = re.search(
        r"--max-clients lowered from 10000 to (\d+) to fit the open-file limit of 64", server.banner
    )
    assert match, server.banner
    assert welcomes <= int(match.group(1))
