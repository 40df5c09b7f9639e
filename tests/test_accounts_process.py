"""Registered names against the real ``chatroom-server`` process (issue 24): register,
leave, someone else refused, login, the name kept across a kill -9 with --state and shared
by two nodes through a real redis-server; bad input gets one-line errors; guessing and
registering in bulk are limited; a login race on two nodes gives the name to one.

Clients bind 127.0.0.2, 127.0.0.3 ... as their source address ("other machines" on
loopback; the limits on /login and /register hold on exempt networks too). Nothing here
asserts speed: every wait is for a line, a row in the state file or a who entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

from tests.conftest import TIMEOUT, Peer
from tests.test_cluster import NODE_FLAGS
from tests.test_limits_process import start  # noqa: F401 (a fixture)
from tests.test_server_process import ServerProcess

FLAGS = ("--rate", "0", "--idle-timeout", "0")
PASSWORD = "hunter2 and more"  # spaces and all: the rest of the line


async def member(port: int, source: str = "127.0.0.1", name: str | None = None) -> Peer:
    """A text-mode user from ``source`` that has seen its own join (and taken ``name``)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), limit=2**20
    )
    peer = Peer(reader, writer)
    await peer.until_contains(f"*** {peer.local_id} joined")
    if name is not None:
        await peer.send(f"/nick {name}")
        await peer.until_contains(f"is now {name}")
    return peer


async def register(peer: Peer, name: str) -> None:
    await peer.send(f"/register {PASSWORD}")
    line = await peer.until(lambda line: line.startswith(("*** ", "error: ")) and "regist" in line)
    assert line == f"*** {name} is registered to you: /login {name} PASSWORD takes it back", line


async def answer(peer: Peer, line: str) -> str:
    """The one line ``peer`` gets for ``line`` (its answer may come later, from the
    password pool): a /ping sent once it came must be answered next."""
    await peer.send(line)
    got = await peer.line()
    await peer.send("/ping marker")
    assert await peer.line() == "*** pong marker", f"more than one line for {line!r}: {got!r}"
    return got


def account_rows(path: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return [name for (name,) in db.execute("SELECT name FROM accounts ORDER BY name")]


def wait_for_rows(path: Path, expected: list[str]) -> None:
    """Return once the state file's accounts table holds the names ``expected`` (committed),
    each kept under its skeleton."""
    deadline = time.monotonic() + 4 * TIMEOUT
    while (rows := account_rows(path)) != expected:
        assert time.monotonic() < deadline, f"the state file has {rows}, not {expected}"
        time.sleep(0.02)


async def test_a_registered_name_is_held_taken_back_and_kept_across_a_kill(start, tmp_path):  # noqa: F811
    state = tmp_path / "state.db"
    server = start(*FLAGS, "--state", str(state))
    alice = await member(server.port, name="alice")
    await register(alice, "alice")
    await alice.close()
    await asyncio.to_thread(wait_for_rows, state, ["alice"])

    bob = await member(server.port, "127.0.0.2")
    assert await answer(bob, "/nick alice") == (
        "error: the name alice is registered: if it is yours, /login alice PASSWORD"
    )
    assert await answer(bob, "/login alice wrong guess") == "error: wrong password for alice"
    await bob.send(f"/login alice {PASSWORD}")
    await bob.until_contains(f"*** {bob.local_id} is now alice")
    await bob.send("/who")
    entry = await bob.until(lambda line: line.startswith("  alice  ("))
    assert entry.startswith(f"  alice  ({bob.local_id}, idle ") and entry.endswith(
        "s) (registered)"
    )

    server.proc.kill()  # kill -9: no shutdown; the account was committed when it was made
    server.proc.wait()
    await bob.close()
    again = start(*FLAGS, "--state", str(state))
    carol = await member(again.port, "127.0.0.3")
    assert (await answer(carol, "/nick alice")).startswith("error: the name alice is registered")
    await carol.send(f"/login alice {PASSWORD}")
    await carol.until_contains(f"*** {carol.local_id} is now alice")
    await carol.close()
    for log in (server.log(), again.log()):
        assert "hunter2" not in log and "wrong guess" not in log
        assert "Traceback" not in log
    assert "1 registered names" in again.log()


async def test_json_codes_registered_and_bad_password(start):  # noqa: F811
    server = start(*FLAGS)
    alice = await member(server.port, name="alice")
    await register(alice, "alice")
    await alice.close()
    bob = await member(server.port, "127.0.0.2")
    await bob.to_json()
    await bob.send("/nick alice")
    error = await bob.until_event("error")
    assert error["code"] == "registered" and "/login alice" in error["message"]
    await bob.send("/login alice nope")
    assert (await bob.until_event("error"))["code"] == "bad_password"
    await bob.send(f"/login alice {PASSWORD}")
    fact = await bob.until_event("notice", fact="registered")
    assert fact["name"] == "alice"
    await bob.until_event("rename", new="alice")
    await bob.send("/who")
    [entry] = (await bob.until_event("who"))["users"]
    assert (entry["id"], entry["name"], entry["registered"]) == (bob.local_id, "alice", True)
    await bob.close()


async def test_bad_input_gets_one_line_errors(start):  # noqa: F811
    server = start(*FLAGS)
    alice = await member(server.port, name="alice")
    await register(alice, "alice")
    user = await member(server.port, "127.0.0.2")
    for line, expected in (
        ("/login", "error: usage: /login NAME PASSWORD"),
        ("/login alice", "error: usage: /login NAME PASSWORD"),
        ("/register", "error: usage: /register PASSWORD"),
        ("/register pw", "error: choose a name first (/nick NAME), then /register PASSWORD to"
         " keep it"),
        ("/login nobody pw", "error: no registered name nobody (/register PASSWORD keeps yours)"),
        ("/unregister alice", "error: /unregister NAME is for operators (/unregister alone lets"
         " go of yours)"),
        ("/nick a1ice", "error: the name a1ice looks like the registered name alice: if that is"
         " yours, /login alice PASSWORD"),
        ("/nick \u0430lice", "error: the name \u0430lice looks like the registered name alice:"
         " if that is yours, /login alice PASSWORD"),
        ("/login alice " + PASSWORD, "error: the name alice is in use by another connection"
         " (an old one of yours?): /login again once it has left"),
    ):  # fmt: skip
        assert await answer(user, line) == expected, line
    await answer(user, "/nick bob")
    assert await answer(user, "/register abc") == "error: a password has 4 to 128 characters"
    await alice.send("/register again")
    await alice.until_contains("alice is registered to you already")
    await user.close()
    await alice.close()


async def test_a_guesser_with_many_addresses_is_stopped_by_the_names_limit(start):  # noqa: F811
    server = start(*FLAGS, "--exempt-ip")  # no exempt network: 127.0.0.x are "machines"
    alice = await member(server.port, name="alice")
    await register(alice, "alice")
    await alice.close()
    bystander = await member(server.port, "127.0.0.99")
    started = time.monotonic()
    told = []
    for n in range(2, 14):  # twelve addresses, one guess each
        guesser = await member(server.port, f"127.0.0.{n}")
        told.append(await answer(guesser, f"/login alice guess{n}"))
        await guesser.close()
    refills = int((time.monotonic() - started) / 30)  # login_name_fail_rate: 2 a minute
    wrong = told.count("error: wrong password for alice")
    limited = [line for line in told if "too many wrong passwords for alice" in line]
    # The name's burst (5), whatever the address (and a token for each 30 s the test took).
    assert told[:5] == ["error: wrong password for alice"] * 5, told
    assert wrong <= 5 + refills and wrong + len(limited) == 12, told
    await bystander.send("/ping still here")  # the room went on meanwhile
    await bystander.until(lambda line: line == "*** pong still here")
    assert "guess" not in server.log().replace("wrong /login", "")
    await bystander.close()


async def test_registering_in_bulk_from_one_address_is_limited(start, tmp_path):  # noqa: F811
    state = tmp_path / "state.db"
    server = start(*FLAGS, "--state", str(state))
    user = await member(server.port, "127.0.0.2")
    started = time.monotonic()
    told = []
    for n in range(40):
        await user.send(f"/nick n{n}")
        await user.until_contains(f"is now n{n}")
        await user.send(f"/register {PASSWORD}")
        told.append(await user.until(lambda line: "regist" in line))
    refills = int((time.monotonic() - started) / 300)  # register_rate: one in 5 minutes
    registered = [line for line in told if "is registered to you" in line]
    refused = [line for line in told if "too many names registered from your address" in line]
    assert told[:3] == [f"*** n{n} is registered to you: /login n{n} PASSWORD takes it back"
                        for n in range(3)], told  # fmt: skip
    assert len(registered) <= 3 + refills and len(registered) + len(refused) == 40, told
    kept = [f"n{n}" for n in range(len(registered))]
    await asyncio.to_thread(wait_for_rows, state, sorted(kept))
    other = await member(server.port, "127.0.0.3", name="m0")  # another address: its own
    await register(other, "m0")
    await user.close()
    await other.close()


# --- two nodes, a real redis-server ---------------------------------------------------------


def node(redis_url: str) -> ServerProcess:
    return ServerProcess("--port", "0", "--redis", redis_url, *NODE_FLAGS)


async def sees_registered(port: int, name: str) -> None:
    """Return once the node at ``port`` lists ``name`` online and registered."""
    watcher = await member(port, "127.0.0.50")
    await watcher.to_json()
    async with asyncio.timeout(4 * TIMEOUT):
        while True:
            await watcher.send("/who")
            who = await watcher.until_event("who")
            if any(u["name"] == name and u.get("registered") for u in who["users"]):
                break
            await asyncio.sleep(0.05)
    await watcher.close()


async def test_two_nodes_share_registered_names_and_a_restarted_node_has_them(redis_url):
    a, b = node(redis_url), node(redis_url)
    try:
        alice = await member(a.port, name="alice")
        await register(alice, "alice")
        await sees_registered(b.port, "alice")  # b has the account (and sees alice online)
        await alice.send("/quit")
        await alice.closed()
        bob = await member(b.port, "127.0.0.2")
        assert (await answer(bob, "/nick alice")).startswith("error: the name alice is regist")
        await bob.send(f"/login alice {PASSWORD}")
        await bob.until_contains(f"*** {bob.local_id} is now alice")
        await bob.send("/quit")
        await bob.closed()
        b.stop()
        b = node(redis_url)  # a new node: it loads what Redis keeps
        carol = await member(b.port, "127.0.0.3")
        assert (await answer(carol, "/nick alice")).startswith("error: the name alice is regist")
        await carol.send(f"/login alice {PASSWORD}")
        await carol.until_contains(f"*** {carol.local_id} is now alice")
        await carol.close()
    finally:
        a.stop()
        b.stop()


async def test_a_login_race_on_two_nodes_gives_the_name_to_one(redis_url):
    a, b = node(redis_url), node(redis_url)
    try:
        alice = await member(a.port, name="alice")
        await register(alice, "alice")
        await sees_registered(b.port, "alice")
        await alice.send("/quit")
        await alice.closed()
        one = await member(a.port, "127.0.0.2")
        two = await member(b.port, "127.0.0.3")
        for peer in (one, two):
            await peer.to_json()
        await asyncio.gather(*(p.send(f"/login alice {PASSWORD}") for p in (one, two)))

        async def outcome(peer: Peer) -> str:
            async with asyncio.timeout(4 * TIMEOUT):
                while True:
                    event = await peer.event()
                    if event["type"] == "rename" and event["id"] == peer.local_id:
                        return event["new"]
                    if event["type"] == "error":
                        return event["code"]

        results = sorted(await asyncio.gather(outcome(one), outcome(two)))
        assert results == ["alice", "name_taken"], results
        for peer in (one, two):
            await peer.close()
    finally:
        a.stop()
        b.stop()
