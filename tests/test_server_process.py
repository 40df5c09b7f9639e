"""The real ``chatroom-server`` process: start-up line, flags, signals, and the real ``nc``."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests import processes
from tests.conftest import Peer

SERVER_SCRIPT = Path(sys.executable).with_name("chatroom-server")


def _server_command(*flags: str) -> list[str]:
    assert SERVER_SCRIPT.exists(), "chatroom-server is not installed next to this Python"
    return [str(SERVER_SCRIPT), "--host", "127.0.0.1", *flags]


class ServerProcess:
    def __init__(self, *flags: str, module: bool = False) -> None:
        command = (
            [sys.executable, "-m", "chatroom.server", "--host", "127.0.0.1", *flags]
            if module
            else _server_command(*flags)
        )
        self.proc = processes.spawn(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.banner = self.proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", self.banner)
        assert match, f"no start-up line: {self.banner!r} {self.proc.stderr.read()!r}"
        self.port = int(match.group(1))

    def stop(self) -> None:
        """Kill -9 the process and everything it started (its process group); reap it."""
        processes.stop(self.proc)


@pytest.fixture
def server_process():
    started: list[ServerProcess] = []

    def start(*flags: str, module: bool = False) -> ServerProcess:
        process = ServerProcess("--port", "0", *flags, module=module)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def test_start_up_line_says_how_to_join(server_process):
    server = server_process()
    assert server.banner.strip() == (
        f"chatroom listening on 127.0.0.1:{server.port} - join with: nc 127.0.0.1 {server.port}"
    )


def test_python_dash_m_works(server_process):
    server = server_process(module=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(4096).startswith(b"*** Welcome")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_signal_shuts_down_gracefully(server_process, signum):
    server = server_process()
    peers = [await Peer.connect(server.port) for _ in range(3)]
    for peer in peers:
        await peer.until_contains(f"{peer.local_id} joined")
    await peers[0].to_json()
    server.proc.send_signal(signum)
    notice = await peers[0].until_event("notice")
    assert notice["code"] == "shutdown"
    for peer in peers[1:]:
        assert await peer.until_contains("shutting down") == "*** the server is shutting down"
    for peer in peers:
        await peer.closed()
    code = await asyncio.to_thread(server.proc.wait, 10)  # a deadline, not a speed
    assert code == 0
    assert "Traceback" not in server.proc.stderr.read()
    for peer in peers:
        await peer.close()


def test_port_in_use_is_one_clear_line():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            _server_command("--port", str(port)), capture_output=True, text=True, timeout=10
        )
    assert result.returncode != 0
    assert result.stderr == (
        f"chatroom-server: cannot listen on 127.0.0.1:{port} (--port): address already in "
        "use; another program listens there (another chatroom-server?): stop it, or give "
        "another --port\n"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("flags", "complaint"),
    [
        (["--port", "nope"], "--port"),
        (["--port", "70000"], "--port"),
        (["--idle-timeout", "-1"], "--idle-timeout"),
        (["--max-line", "0"], "--max-line"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flag_is_one_clear_line(flags, complaint):
    result = subprocess.run(_server_command(*flags), capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and complaint in result.stderr
    assert "Traceback" not in result.stderr


def test_help_documents_every_flag():
    result = subprocess.run(_server_command("--help"), capture_output=True, text=True, timeout=10)
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--idle-timeout",
        "--history",
        "--max-line",
        "--max-clients",
        "--max-per-ip",
        "--connect-burst",
        "--connect-rate",
        "--exempt-ip",
        "--rate",
        "--burst",
        "--max-sendq",
        "--log-level",
    ):
        assert flag in result.stdout


def test_log_records_connects_renames_and_disconnects_but_not_chat(server_process):
    server = server_process()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"top secret words\n/nick Logged\n/quit\n")
        while sock.recv(4096):
            pass
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(5)
    log = server.proc.stderr.read()
    assert "connect 127.0.0.1:" in log
    assert "-> Logged" in log
    assert "disconnect" in log and "quit" in log
    assert "top secret" not in log


@pytest.fixture
def nc() -> str:
    return processes.require("nc")


def test_two_real_nc_users_chat(server_process, nc):
    server = server_process()

    def start_nc() -> subprocess.Popen:
        return processes.spawn(
            [nc, "127.0.0.1", str(server.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    first = start_nc()
    second = None
    try:
        assert first.stdout.readline().startswith("*** Welcome")
        first_joined = first.stdout.readline()
        second = start_nc()  # only now: the first must be in the room to see it join
        assert second.stdout.readline().startswith("*** Welcome")
        second_joined = second.stdout.readline()
        assert first.stdout.readline() == second_joined
        first.stdin.write("rename|Duke\n")
        first.stdin.flush()
        assert second.stdout.readline().endswith("is now Duke\n")
        assert first.stdout.readline().endswith("is now Duke\n")
        second.stdin.write("hello from nc\n")
        second.stdin.flush()
        name = second_joined.split()[1]
        assert first.stdout.readline() == f"<{name}> hello from nc\n"
        assert first_joined.startswith("*** 127.0.0.1:")
    finally:
        for proc in (first, second):
            if proc is not None:
                processes.stop(proc)


def test_nc_half_close_prints_the_who_reply(server_process, nc):
    server = server_process()
    result = subprocess.run(
        [nc, "-N", "127.0.0.1", str(server.port)],
        input="who\n",
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert "Online users (1):" in result.stdout
    assert result.returncode == 0


def test_server_survives_a_garbage_storm_from_nc(server_process, nc):
    server = server_process("--max-line", "64", "--rate", "1000")
    garbage = bytes(range(256)) * 64 + b"\xff" * 1000 + b"\r\r\n\n" + b"x" * 5000
    result = subprocess.run(
        [nc, "-N", "127.0.0.1", str(server.port)], input=garbage, capture_output=True, timeout=10
    )
    # nc delivered it: the server answered the garbage (its over-long lines are refused).
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"*** Welcome")
    assert b"error: line too long (over 64 bytes); it was not sent" in result.stdout
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        assert sock.recv(4096).startswith(b"*** Welcome")
    assert server.proc.poll() is None


def test_help_documents_the_loop_flag():
    result = subprocess.run(_server_command("--help"), capture_output=True, text=True, timeout=10)
    assert "--loop {auto,asyncio,uvloop}" in result.stdout


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_each_event_loop_serves_a_room(server_process, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    server = server_process("--loop", loop, "--rate", "0")
    # A burst of connects (on uvloop their joins share flushes), then a chat round trip.
    socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(30)]
    try:
        for sock in socks:
            data = b""
            while b"*** Welcome" not in data:
                chunk = sock.recv(65536)
                assert chunk, "closed before the welcome"
                data += chunk
        talker, last = socks[0], socks[-1]
        talker.sendall(b"hello from the first\n")
        seen = b""
        while b"> hello from the first\n" not in seen:
            chunk = last.recv(65536)
            assert chunk, "closed before the chat line"
            seen += chunk
        # Half-close: the reply still comes, then the server closes.
        last.sendall(b"who\n")
        last.shutdown(socket.SHUT_WR)
        rest = b""
        while chunk := last.recv(65536):
            rest += chunk
        assert b"Online users (30):" in rest
    finally:
        for sock in socks:
            sock.close()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(5) == 0
    assert f"event loop: {loop}" in server.proc.stderr.read()


async def test_after_a_slow_flush_the_next_one_is_gathered_and_still_delivered():
    from chatroom.server.adapter.app import start_server
    from chatroom.server.config import ServerConfig

    # Every flush counts as slow, as in a room of thousands of users.
    config = ServerConfig(host="127.0.0.1", port=0, rate=0, idle_timeout=0, slow_flush=-1.0)
    server = await start_server(config)
    try:
        alice, bob = await Peer.connect(server.port), await Peer.connect(server.port)
        await bob.until_contains("joined")
        await alice.send("one")
        await alice.send("two")
        assert await bob.until_contains("> one") == f"<{alice.local_id}> one"
        assert await bob.line() == f"<{alice.local_id}> two"
        await alice.close()
        await bob.close()
    finally:
        await server.shutdown()
