"""Upgrades (issue 26), end to end: a real server upgraded with SIGUSR2 while real clients
(raw sockets and real ``nc`` processes) type through it."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from tests.upgrade_helpers import NcClient, RawClient, UpgradingServer


@pytest.fixture
def upgrading(tmp_path: Path):
    started: list[UpgradingServer] = []
    clients: list = []

    def start(*flags: str, env: dict[str, str] | None = None) -> UpgradingServer:
        server = UpgradingServer(tmp_path, "--idle-timeout", "0", *flags, env=env)
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


def test_five_upgrades_nobody_notices(upgrading):
    """Raw clients and real nc processes type lines split across five upgrades, and one
    chatters all along: every line arrives whole, once and in order at everyone; nobody
    joins, leaves or sees an EOF; the pid changes each time."""
    server = upgrading()
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
            time.sleep(0.005)

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
    its state: the old process goes on as if nothing happened (one log line each); the
    next upgrade, with a version that works, takes over."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(CRASHING_VERSION)
    mode = tmp_path / "crash-mode"
    mode.write_text("start")
    server = upgrading(env={"PYTHONPATH": str(hooks), "CRASH_MODE_FILE": str(mode)})
    alice, bob = _named(upgrading, server, ["alice", "bob"])
    alice.send("half a li")
    for crash, said in (("start", "went away"), ("state", "went away")):
        mode.write_text(crash)
        start = len(server.log.data)
        server.signal()
        server.log.wait_for("upgrade failed; pid", start)
        assert server.alive() and server.pid == server.proc.pid
        assert said in server.log.text(start)
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
"""
