"""Upgrades (issue 26), end to end: a real server upgraded with SIGUSR2 while real clients
(raw sockets and real ``nc`` processes) type through it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chatroom.server.core.passwords import hash_password
from chatroom.server.core.rules.leaving import RESTART_NOTICE
from tests import processes
from tests.test_state_process import committed
from tests.test_tls import make_certs
from tests.upgrade_helpers import Collector, NcClient, RawClient, UpgradingServer
from tests.ws_helpers import WsPeer


@pytest.fixture
def upgrading(tmp_path: Path):
    started: list[UpgradingServer] = []
    clients: list = []

    def start(*flags: str, env: dict[str, str] | None = None) -> UpgradingServer:
        name = f"node{len(started)}"
        server = UpgradingServer(tmp_path, "--idle-timeout", "0", *flags, env=env, name=name)
        started.append(server)
        return server

    start.clients = clients  # type: ignore[attr-defined]
    yield start
    for client in clients:
        client.close()
    for server in started:
        server.stop()


def _named(start, server: UpgradingServer, names: list[str], nc: int = 0) -> list:
    """Clients with these names (the last ``nc`` of them real nc processes), each having
    seen everyone's rename; returns them."""
    clients = []
    for index, name in enumerate(names):
        kind = NcClient if index >= len(names) - nc else RawClient
        client = kind(server.port)
        start.clients.append(client)
        client.wait_for("Welcome")
        client.send(f"/nick {name}\n")
        clients.append(client)
    for index, client in enumerate(clients):
        for name in names[index:]:
            client.wait_for(f" is now {name}\n")
    return clients


def _chat(text: str) -> list[tuple[str, str]]:
    """The chat lines in ``text`` as (name, text); asserts that nothing else is there."""
    lines = []
    for line in text.splitlines():
        match = re.fullmatch(r"<([^>]+)> (.*)", line)
        assert match, f"not a chat line: {line!r}"
        lines.append((match.group(1), match.group(2)))
    return lines


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_five_upgrades_nobody_notices(upgrading, loop):
    """Raw clients and real nc processes type lines split across five upgrades, and one
    chatters all along: every line arrives whole, once and in order at everyone; nobody
    joins, leaves or sees an EOF; the pid changes each time. On both event loops (uvloop
    reads a new transport at once: the two differ where it matters here)."""
    server = upgrading("--loop", loop)
    names = ["r0", "r1", "r2", "n0", "n1"]
    clients = _named(upgrading, server, names, nc=2)
    marks = [client.wait_for("is now n1\n") for client in clients]
    chatter = clients[0]
    sent: dict[str, list[str]] = {name: [] for name in names}
    stop = threading.Event()

    def chatter_along() -> None:  # a client sending while the server hands over
        count = 0
        while not stop.is_set():
            text = f"chatter {count}"
            sent["r0"].append(text)
            chatter.send(text + "\n")
            count += 1
            time.sleep(0.1)  # twice --rate: paced, its waiting lines carried over too

    thread = threading.Thread(target=chatter_along, daemon=True)
    thread.start()
    try:
        for round_ in range(5):
            halves = {}
            for name, client in zip(names[1:], clients[1:], strict=True):
                halves[name] = f"round {round_} from {name}: the first half "
                client.send(halves[name])
            old = server.pid
            new = server.upgrade()
            assert new != old
            for name, client in zip(names[1:], clients[1:], strict=True):
                text = halves[name] + "and the second"
                sent[name].append(text)
                client.send("and the second\n")
    finally:
        stop.set()
        thread.join()
    chatter.send("the end\n")
    sent["r0"].append("the end")
    assert len(set(server.pids)) == 6
    for client, mark in zip(clients, marks, strict=True):
        client.wait_for("<r0> the end\n", mark)
        for name in names[1:]:
            client.wait_for(f"<{name}> round 4 from {name}", mark)
    for client, mark in zip(clients, marks, strict=True):
        received = _chat(client.text(mark).rstrip("\n"))  # joins, leaves, notices: fail
        for name in names:
            assert [text for who, text in received if who == name] == sent[name]
        assert not client.ended
    for client in clients[3:]:
        assert client.proc.poll() is None, "an nc process ended"
    assert server.log.text().count("took over 5 connections") >= 5


def test_a_new_version_that_fails_leaves_the_old_one_serving(upgrading, tmp_path):
    """A new version that crashes at start, or once the old one is frozen and has sent
    its state, or whose state classes differ (a field added): the old process goes on as
    if nothing happened (one log line each), a line typed half before and half after
    arrives whole; the next upgrade, with a version that works, takes over."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_VERSION)
    mode = tmp_path / "crash-mode"
    mode.write_text("start")
    server = upgrading(env={"PYTHONPATH": str(hooks), "CRASH_MODE_FILE": str(mode)})
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    alice.send("half a li")
    for crash, said in (
        ("start", "went away"),
        ("state", "went away"),
        ("shape", "refused: the state's shape differs"),
    ):
        mode.write_text(crash)
        start = len(server.log.data)
        server.signal()
        server.log.wait_for("upgrade failed; pid", start)
        assert server.alive() and server.pid == server.proc.pid
        assert said in server.log.text(start)
        assert server.log.text(start).count("upgrade failed") == 1
    alice.send("ne\n")
    bob.wait_for("<alice> half a line\n")
    mode.write_text("none")
    mark = len(bob.data)
    server.upgrade()
    alice.send("after\n")
    bob.wait_for("<alice> after\n", mark)
    assert _chat(bob.text(mark)) == [("alice", "after")]


CRASHING_VERSION = """
import os
if "CHATROOM_HANDOVER_FD" in os.environ:
    mode = open(os.environ["CRASH_MODE_FILE"]).read()
    if mode == "start":  # the new version dies before it says hello
        os._exit(3)
    if mode == "state":  # ... or once it has the state (the old one is frozen)
        import chatroom.server.adapter.takeover as takeover

        def crash(*args, **kwargs):
            os._exit(4)

        takeover.restore = crash
    if mode == "taken":  # ... or just before it says it has taken over
        import chatroom.server.adapter.takeover as takeover

        def crash(*args, **kwargs):
            os._exit(5)

        takeover.notify = crash
    if mode == "shape":  # ... or its state classes are not the old one's
        import dataclasses
        from chatroom.server.core import state

        @dataclasses.dataclass(slots=True)
        class User(state.User):
            pronouns: str = ""

        User.__module__, User.__qualname__ = state.__name__, "User"
        state.User = User
"""


def test_an_idle_deadline_survives_the_upgrade(upgrading):
    """The room's clock and each member's last line carry over: after an upgrade, who
    shows the idle time counted from before it, and the idle user is kicked at its
    original deadline, not at one the upgrade restarted."""
    timeout = 10.0
    server = upgrading("--idle-timeout", str(timeout))
    idle = RawClient(server.port)
    upgrading.clients.append(idle)
    idle.wait_for("Welcome")
    connected = time.monotonic()
    time.sleep(timeout / 2)  # a lower bound: at least this long idle before the upgrade
    server.upgrade()
    upgraded = time.monotonic()
    watcher = RawClient(server.port)
    upgrading.clients.append(watcher)
    watcher.wait_for("Welcome")
    watcher.send("/who\n")
    watcher.wait_for("s)\n*** ")  # the who list's users, then its last line
    shown = max(int(n) for n in re.findall(r", idle (\d+)s\)", watcher.text()))
    assert shown >= timeout / 2, f"idle {shown}s: the upgrade restarted the idle count"
    idle.wait_for(f"no line from you for {timeout:g}s")
    kicked = time.monotonic()
    assert kicked - connected >= timeout
    # Restarted by the upgrade, the deadline would be a whole timeout after it.
    assert kicked < upgraded + timeout, "the idle deadline restarted with the new process"
    watcher.wait_for(" timed out\n")


def test_an_upgrade_with_too_few_file_descriptors_is_refused_before_any_is_passed(
    upgrading,
):
    """The new process inherits a lower open-file limit (prlimit on the running server):
    it checks the count before a descriptor is passed, refuses, and the old one goes on."""
    server = upgrading()
    clients = [RawClient(server.port) for _ in range(40)]
    upgrading.clients.extend(clients)
    for client in clients:
        client.wait_for("Welcome")
    # Room for the old process to start the new one (a socketpair, a pipe), not for the
    # new one to take 40 connections beside its own descriptors and the reserve.
    limit = len(os.listdir(f"/proc/{server.pid}/fd")) + 8
    prlimit = processes.require("prlimit")
    subprocess.run([prlimit, f"--pid={server.pid}", f"--nofile={limit}:{limit}"], check=True)
    start = len(server.log.data)
    server.signal()
    server.log.wait_for("upgrade failed; pid", start)
    assert f"the open-file limit is {limit}" in server.log.text(start)
    clients[0].send("still here\n")
    clients[-1].wait_for("still here\n")
    assert server.alive() and server.pid == server.proc.pid


def test_a_sigusr2_flood_makes_one_upgrade(upgrading):
    """Twenty SIGUSR2s in a row: one upgrade, the others ignored with a log line each; a
    client that hangs up during the handover leaves once; a line over --max-line begun
    before it is refused once after it, and the next line goes through."""
    server = upgrading("--max-line", "1000")
    alice, bob, carol = _named(upgrading, server, ["alice", "bob", "carol"])
    mark = len(bob.data)
    alice.send("x" * 5000)  # over --max-line, and no line end yet
    old = server.pid
    server.signal()
    carol.close()
    for _ in range(20):  # (a signal sent while one is pending is merged with it: spaced)
        time.sleep(0.005)
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGUSR2)
    new = server.wait_for_pid_file(other_than=old)
    server.pids.append(new)
    assert server.log.wait_for("SIGUSR2 ignored: an upgrade is already under way")
    alice.send("yyy\nafter\n")
    at = alice.wait_for("line too long")
    alice.wait_for("<alice> after\n", at)
    bob.wait_for("<alice> after\n", mark)
    assert bob.text(mark).count("carol left") == 1, (bob.text(), server.log.text())
    assert "yyy" not in bob.text(mark) and "xxx" not in bob.text(mark)
    assert server.log.text().count("took over") == 2  # both sides' lines, once


def test_output_a_reader_has_not_taken_yet_is_carried_over(upgrading):
    """A reader that stops reading has output waiting in the old process (beyond what the
    kernel holds): the new process sends it, and it reads every line once, in order."""
    server = upgrading("--max-sendq", str(4 * 1024 * 1024), "--rate", "0")
    talker, reader = _named(upgrading, server, ["talker", "reader"])
    mark = reader.wait_for("is now reader\n")
    reader.reading.clear()  # stop reading (the thread's recv in flight takes one chunk)
    time.sleep(0.2)
    texts = [f"line {n} " + "z" * 400 for n in range(2000)]  # ~800 KiB
    for text in texts:
        talker.send(text + "\n")
    talker.wait_for(texts[-1] + "\n")  # the talker reads: the room has sent them all
    server.upgrade()
    reader.reading.set()
    talker.send("after\n")
    reader.wait_for("<talker> after\n", mark)
    received = _chat(reader.text(mark).rstrip("\n"))
    assert [text for _, text in received] == [*texts, "after"]


class TlsClient(RawClient):
    """A TLS client (text mode, like ``openssl s_client``) with its reader thread."""

    def __init__(self, port: int, cafile: str) -> None:
        context = ssl.create_default_context(cafile=cafile)
        raw = socket.create_connection(("127.0.0.1", port))
        # suppress_ragged_eofs=False: an EOF without TLS's close_notify is an error here.
        self.tls = context.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        self.clean_close: bool | None = None
        Collector.__init__(self)
        self.sock = self.tls
        self.reading = threading.Event()
        self.reading.set()
        threading.Thread(target=self._read_tls, daemon=True).start()

    def _read_tls(self) -> None:
        while True:
            try:
                chunk = self.tls.recv(65536)
            except ssl.SSLEOFError:
                self.clean_close = False
                chunk = b""
            except OSError:
                chunk = b""
            if not chunk and self.clean_close is None:
                self.clean_close = True
            self.add(chunk)
            if not chunk:
                return


def test_tls_users_are_told_to_reconnect_and_closed_cleanly(upgrading, tmp_path):
    """A TLS session lives in the old process's memory and cannot be handed over: its user
    is told (a shutdown notice, which chatroom-client answers by reconnecting and resuming
    by seq), closed with TLS's close_notify, and leaves; plain users are carried over; the
    TLS port itself is handed over, so the user reconnects to the new process."""
    certs = make_certs(tmp_path)
    server = upgrading("--tls-port", "0", "--tls-cert", certs.cert, "--tls-key", certs.key)
    tls_port = int(re.search(r"TLS on port (\d+)", server.banner).group(1))
    plain = RawClient(server.port)
    tls = TlsClient(tls_port, certs.cafile)
    upgrading.clients += [plain, tls]
    for client in (plain, tls):
        client.wait_for("Welcome")
    tls.send("/nick secure\n")
    mark = plain.wait_for("is now secure\n")
    server.upgrade()
    tls.wait_for(RESTART_NOTICE)
    tls.wait_for_end()
    assert tls.clean_close, "closed without TLS's close_notify"
    plain.wait_for("*** secure left (server shutting down)\n", mark)
    again = TlsClient(tls_port, certs.cafile)
    upgrading.clients.append(again)
    again.wait_for("Welcome")
    again.send("/nick secure\n")
    plain.wait_for("is now secure\n", mark)
    again.send("back\n")
    plain.wait_for("<secure> back\n", mark)
    assert not plain.ended


def test_a_node_upgraded_keeps_its_identity_and_stream_position(upgrading, redis_url):
    """Two nodes on a real redis-server, node A upgraded twice while a user of node B
    talks: B's users see nobody leave or join; A's user gets every one of B's lines once
    and in order, and A's lines split across the upgrades reach B whole."""
    flags = ("--redis", redis_url, "--rate", "0")
    node_a, node_b = upgrading(*flags), upgrading(*flags)
    alice = RawClient(node_a.port)
    upgrading.clients.append(alice)
    alice.wait_for("Welcome")
    alice.send("/nick alice\n")
    alice.wait_for("is now alice\n")
    bob = RawClient(node_b.port)
    upgrading.clients.append(bob)
    bob.wait_for("Welcome")
    bob.send("/nick bob\n")
    mark_a = alice.wait_for("is now bob\n")
    mark_b = bob.wait_for("is now bob\n")
    sent_b: list[str] = []
    stop = threading.Event()

    def bob_talks() -> None:
        count = 0
        while not stop.is_set():
            sent_b.append(f"from b {count}")
            bob.send(f"from b {count}\n")
            count += 1
            time.sleep(0.01)

    thread = threading.Thread(target=bob_talks, daemon=True)
    thread.start()
    sent_a = []
    try:
        for round_ in range(2):
            alice.send(f"round {round_}, half ")
            node_a.upgrade()
            alice.send("and half\n")
            sent_a.append(f"round {round_}, half and half")
    finally:
        stop.set()
        thread.join()
    bob.send("bob is done\n")
    sent_b.append("bob is done")
    alice.send("alice is done\n")
    sent_a.append("alice is done")
    for client, mark in ((alice, mark_a), (bob, mark_b)):
        client.wait_for("<bob> bob is done\n", mark)
        client.wait_for("<alice> alice is done\n", mark)
    for client, mark in ((alice, mark_a), (bob, mark_b)):
        received = _chat(client.text(mark).rstrip("\n"))  # a join or a leave: fails
        assert [text for who, text in received if who == "bob"] == sent_b
        assert [text for who, text in received if who == "alice"] == sent_a
    assert len(set(node_a.pids)) == 3 and node_b.alive()


def test_workers_are_upgraded_one_at_a_time(upgrading, redis_url):
    """SIGUSR2 to the --workers supervisor upgrades its workers one after the other; the
    users of both keep chatting (no join, no leave, every line once); the new workers are
    the supervisor's to watch: SIGTERM stops them."""
    server = upgrading("--workers", "2", "--redis", redis_url, "--rate", "0")
    names = [f"u{n}" for n in range(6)]
    clients = _named(upgrading, server, names)
    marks = [client.wait_for("is now u5\n") for client in clients]
    start = len(server.log.data)
    for index, client in enumerate(clients):
        client.send(f"before, half from {names[index]} ")
    os.kill(server.proc.pid, signal.SIGUSR2)
    server.log.wait_for("workers upgraded", start)
    log = server.log.text(start)
    upgraded = re.findall(r"worker (\d) upgraded \(pid (\d+) -> (\d+)\)", log)
    assert sorted(number for number, _, _ in upgraded) == ["1", "2"], log
    first = log.index("worker 1 upgraded")
    assert "took over" in log[:first]  # worker 1's handover came before worker 2's
    for client in clients:
        client.send("and after\n")
    for client, mark in zip(clients, marks, strict=True):
        for name in names:  # (the two workers' lines meet in the stream in either order)
            client.wait_for(f"<{name}> before, half from {name} and after\n", mark)
    for client, mark in zip(clients, marks, strict=True):
        received = _chat(client.text(mark).rstrip("\n"))  # a join or a leave: fails
        assert sorted(received) == sorted(
            (name, f"before, half from {name} and after") for name in names
        )
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0
    for _, _, new in upgraded:
        deadline = time.monotonic() + 60
        while server.alive(int(new)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.alive(int(new)), f"worker {new} outlived its supervisor"


def test_systemd_is_told_the_new_main_pid(upgrading, tmp_path):
    """Under systemd (Type=notify, NotifyAccess=all) the server says READY=1 and its
    MAINPID when it serves, and an upgrade's new process says its own MAINPID (before the
    old one exits, by the handover's order), so systemd follows it; a notify socket of the
    test's stands in for systemd's."""
    path = str(tmp_path / "notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(60)
    try:
        server = upgrading(env={"NOTIFY_SOCKET": path})
        assert listener.recv(4096).decode().split("\n") == ["READY=1", f"MAINPID={server.pid}"]
        new = server.upgrade()
        said = [listener.recv(4096).decode() for _ in range(2)]
        assert said == [f"MAINPID={new}", f"READY=1\nMAINPID={new}"]
    finally:
        listener.close()


def _get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        return b"".join(iter(lambda: sock.recv(4096), b"")).decode()


def test_the_metrics_port_is_opened_again_by_the_new_process(upgrading):
    """The old process lets go of --metrics-port when it freezes; the new one opens it (a
    failed upgrade: the old one opens it again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        metrics = probe.getsockname()[1]
    server = upgrading("--metrics-port", str(metrics))
    assert " 200 " in _get(metrics, "/healthz").splitlines()[0]
    server.upgrade()
    deadline = time.monotonic() + 60
    while True:
        try:
            answer = _get(metrics, "/healthz")
            break
        except OSError:
            assert time.monotonic() < deadline, "the metrics port never came back"
            time.sleep(0.05)
    assert " 200 " in answer.splitlines()[0]
    assert "upgrade" not in server.log.text() or "cannot be opened" not in server.log.text()


async def test_websocket_users_are_told_and_closed_and_the_port_is_handed_over(upgrading):
    """A WebSocket's framing lives in the old process: its user gets the notice and a
    close 1000; the --ws-port listener is handed over, so it reconnects to the new one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        ws_port = probe.getsockname()[1]
    server = upgrading("--ws-port", str(ws_port))
    plain = RawClient(server.port)
    upgrading.clients.append(plain)
    plain.wait_for("Welcome")
    browser = await WsPeer.connect(ws_port)
    try:
        await browser.until_contains("Welcome")
        await browser.send("/nick webby")
        mark = plain.wait_for("is now webby\n")
        await asyncio.to_thread(server.upgrade)
        lines, close = await browser.closed()
        assert any(RESTART_NOTICE in line for line in lines), lines
        assert close is not None and close.code == 1000
        plain.wait_for("*** webby left (server shutting down)\n", mark)
    finally:
        await browser.close()
    again = await WsPeer.connect(ws_port)
    try:
        await again.until_contains("Welcome")
        await again.send("back")
        plain.wait_for("> back\n", mark)
    finally:
        await again.close()


def test_rooms_and_their_members_carry_over(upgrading):
    """The room's state is carried whole, whatever its shape (core/snapshot.py names no
    field): two users in a room other than the default one chat there after an upgrade."""
    server = upgrading()
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    alice.send("/join #dev\n")
    alice.wait_for("now in #dev")
    bob.send("/join #dev\n")
    bob.wait_for("now in #dev (2 users)\n")
    mark = bob.wait_for("*** bob joined\n")  # (its own join, after the greeting)
    alice.wait_for("bob joined")
    server.upgrade()
    alice.send("in dev\n")
    bob.wait_for("<alice> in dev\n", mark)
    bob.send("/who\n")
    bob.wait_for("alice", mark)
    assert bob.text(mark).startswith("<alice> in dev\n")


def test_a_new_process_that_cannot_reach_redis_is_refused_before_the_freeze(
    upgrading, redis_server
):
    """Redis hangs: the new process's PING goes unanswered, it exits before saying hello,
    and the old node goes on (one line); once Redis is back, an upgrade goes through."""
    server = upgrading("--redis", redis_server.url, "--rate", "0")
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    start = len(server.log.data)
    redis_server.pause()
    try:
        server.signal()
        server.log.wait_for("upgrade failed; pid", start)
    finally:
        redis_server.resume()
    assert "Redis does not answer" in server.log.text(start)
    assert server.pid == server.proc.pid and server.alive()
    mark = len(bob.data)
    server.upgrade()
    alice.send("after\n")
    bob.wait_for("<alice> after\n", mark)


def test_the_state_file_goes_on_through_an_upgrade(upgrading, tmp_path):
    """--state: the old process commits and lets go of the file (its lock), the new one
    opens it and keeps writing: a topic set after the upgrade and chat from both sides of it
    are there for a server started afterwards on the same file."""
    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    state = tmp_path / "state.db"
    server = upgrading("--state", str(state), "--ops-file", str(ops))
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    alice.send("/oper boss s3cret\n")
    alice.wait_for("now an operator")
    alice.send("before the upgrade\n")
    bob.wait_for("<alice> before the upgrade\n")
    server.upgrade()
    alice.send("after the upgrade\n")
    bob.wait_for("<alice> after the upgrade\n")
    alice.send("/topic kept across\n")
    bob.wait_for("kept across")
    committed(state, "before the upgrade", "after the upgrade")
    os.kill(server.pid, signal.SIGTERM)  # a clean stop of the new process
    for client in (alice, bob):
        client.wait_for_end()
    again = upgrading("--state", str(state), "--ops-file", str(ops))
    carol = RawClient(again.port)
    upgrading.clients.append(carol)
    carol.wait_for("Topic: kept across")
    carol.wait_for("<alice> before the upgrade")
    carol.wait_for("<alice> after the upgrade")


def test_a_failed_upgrade_gives_the_state_file_back_to_the_old_process(upgrading, tmp_path):
    """--state: the new process opened the file (the old one had let go of it) and then
    crashed before taking over: the old one opens it again and goes on keeping the chat."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_VERSION)
    mode = tmp_path / "crash-mode"
    mode.write_text("taken")
    state = tmp_path / "state.db"
    server = upgrading(
        "--state", str(state), env={"PYTHONPATH": str(hooks), "CRASH_MODE_FILE": str(mode)}
    )
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    start = len(server.log.data)
    server.signal()
    server.log.wait_for("upgrade failed; pid", start)
    alice.send("kept after a failed upgrade\n")
    bob.wait_for("<alice> kept after a failed upgrade\n")
    committed(state, "kept after a failed upgrade")
    assert "state is not kept" not in server.log.text(start)


def test_a_redis_lost_after_the_handover_is_waited_for(upgrading, redis_server, tmp_path):
    """Redis hangs between the new process's PING and its link's connect (the PING is made
    to pass, Redis paused before the upgrade, resumed later): the new process waits for it,
    the connections held, and then serves them as if nothing had happened; lines said while
    Redis hung, still in the old link's queue, are carried and said once, in order."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(NO_PING)
    server = upgrading("--redis", redis_server.url, "--rate", "0", env={"PYTHONPATH": str(hooks)})
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    mark = len(bob.data)
    start = len(server.log.data)
    redis_server.pause()
    try:
        # Said while Redis hangs: the first is sent (its reply never comes), the others
        # wait in the old link's queue and are carried to the new one.
        for n in range(3):
            alice.send(f"while Redis hangs {n}\n")
        time.sleep(0.2)  # a lower bound: the old process has taken them
        server.signal()
        server.log.wait_for("trying again", start)
    finally:
        redis_server.resume()
    new = server.wait_for_pid_file(other_than=server.pid)
    server.pids.append(new)
    alice.send("after\n")
    bob.wait_for("<alice> after\n", mark)
    said = [("alice", f"while Redis hangs {n}") for n in range(3)] + [("alice", "after")]
    assert _chat(bob.text(mark)) == said


NO_PING = """
import os
if "CHATROOM_HANDOVER_FD" in os.environ:  # the new version skips its PING of Redis
    import chatroom.server.adapter.takeover as takeover

    async def answers(config):
        pass

    takeover._redis_answers = answers
"""
