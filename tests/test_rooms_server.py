"""Rooms end to end over real sockets on 127.0.0.1 (docs/PROTOCOL.md, "Rooms"): nc-like
peers in two rooms, a JSON peer in several, limits and bad names, and real nc processes
against the server process."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import time

import pytest

from tests import processes
from tests.conftest import Peer
from tests.test_server_process import server_process  # noqa: F401 (a fixture)


async def nothing_more(peer: Peer, wait: float = 0.3) -> None:
    """Nothing arrives for ``wait`` seconds (a ping answered proves the link is alive)."""
    await peer.send("/ping quiet")
    assert await peer.line() == "*** pong quiet"
    with pytest.raises(TimeoutError):
        await peer.line(timeout=wait)


async def test_nc_users_in_two_rooms_hear_only_their_room(server, make_peer):
    ann, bob, cat = [await make_peer(server) for _ in range(3)]
    await ann.send("/join #Dev")
    assert await ann.until_contains("*** now in #dev") == "*** now in #dev (1 user)"
    assert await ann.line() == f"*** {ann.local_id} joined"
    assert await bob.until_contains(ann.local_id) == f"*** {ann.local_id} left the room"
    await cat.until_contains(f"*** {ann.local_id} left the room")
    await bob.send("/join dev")
    await bob.until_contains("*** now in #dev (2 users)")
    await ann.until_contains(f"*** {bob.local_id} joined")
    await ann.send("hello dev")
    assert await bob.until_contains("hello dev") == f"<{ann.local_id}> hello dev"
    await cat.until_contains(f"*** {bob.local_id} left the room")
    await nothing_more(cat)  # main hears nothing of #dev
    await cat.send("who")
    assert await cat.line() == "Online users (1):"
    await ann.send("who")
    assert await ann.until_contains("Online users") == "Online users (2):"
    # /msg reaches a name in any room; names stay unique server-wide
    await cat.send("/nick cat")
    await cat.until_contains("is now cat")
    await ann.send("/nick CAT")
    assert await ann.until_contains("error:") == "error: the name CAT is taken"
    await ann.send("/msg cat psst")
    assert await cat.until_contains("psst") == f"[private] {ann.local_id} -> cat: psst"
    # /part: back to main, where the newcomer is replayed main's history
    await bob.send("/part")
    await bob.until_contains(f"*** {bob.local_id} joined")
    assert await cat.until_contains("joined") == f"*** {bob.local_id} joined"


async def test_a_room_keeps_its_history_and_topic_for_the_next_to_join(make_server, make_peer):
    server = await make_server(history=5)
    ann, bob = await make_peer(server), await make_peer(server)
    await ann.send("/join dev")
    await ann.until_contains("joined")
    await ann.send("first in dev")
    await ann.send("second in dev")
    await ann.until_contains("second in dev")
    await bob.send("/join dev")
    lines = [await bob.until_contains("now in #dev")]
    while not lines[-1].endswith(f"{bob.local_id} joined"):
        lines.append(await bob.line())
    assert [line.split("] ", 1)[1] for line in lines if line.startswith("[history")] == [
        f"<{ann.local_id}> first in dev",
        f"<{ann.local_id}> second in dev",
    ]
    await bob.send("/rooms")
    assert await bob.line() == "*** #dev (2 users)"
    assert await bob.line() == "*** #main (0 users)"


async def test_bad_room_names_and_the_room_limit_get_one_line_and_change_nothing(
    make_server, make_peer
):
    server = await make_server(max_rooms=2)
    ann = await make_peer(server)
    for bad in ("/join #", "/join a*b", "/join " + "x" * 33, "/join dev ops"):
        await ann.send(bad)
        line = await ann.until(lambda text: text.startswith("error:"))
        assert line.startswith(("error: a room name is 1-32", "error: usage: /join ROOM")), bad
    await ann.send("/join one")
    await ann.until_contains("joined")
    bob = await make_peer(server)
    await bob.send("/join two")  # main and one: the server's two
    line = await bob.until(lambda text: text.startswith("error:"))
    assert line.startswith("error: the server has 2 rooms")
    await bob.send("who")
    assert await bob.line() == "Online users (1):"  # still in main


async def test_a_json_client_is_in_several_rooms_and_names_the_room_of_each_line(server, make_peer):
    nc = await make_peer(server)
    js = await make_peer(server)
    await js.send("/format json")
    await js.until_event("welcome")
    for room in ("dev", "ops"):
        await js.send(f"/join {room}")
        entered = await js.until_event("room")
        assert entered["room"] == room and entered["users"] == 1
        await js.until_event("join", room=room)
    await nc.send("/join dev")
    await js.until_event("join", room="dev", id=nc.local_id)
    await nc.send("from nc")
    said = await js.until_event("message")
    assert said["room"] == "dev" and said["text"] == "from nc"
    await js.send(json.dumps({"room": "dev", "text": "to dev", "id": "r1"}))
    assert await nc.until_contains("to dev") == f"<{js.local_id}> to dev"
    ack = await js.until_event("ack")
    assert ack["id"] == "r1" and isinstance(ack["seq"], int)
    await js.send(json.dumps({"room": "ops", "text": "to ops"}))
    msg = await js.until_event("message")
    assert (msg["room"], msg["text"]) == ("ops", "to ops")
    await nothing_more(nc)  # the ops line never reached #dev
    await js.send(json.dumps({"room": "nowhere", "text": "x"}))
    assert (await js.until_event("error"))["code"] == "not_in_room"
    await js.send("/part ops")
    left = await js.until_event("leave")
    assert (left["room"], left["reason"]) == ("ops", "part")
    await js.send("/rooms")
    listing = await js.until_event("rooms")
    assert [r["room"] for r in listing["rooms"]] == ["dev", "main"]


@pytest.fixture
def nc() -> str:
    return processes.require("nc")


def test_real_nc_users_meet_in_a_room_and_main_hears_nothing(server_process, nc):  # noqa: F811
    server = server_process()

    def say(proc: subprocess.Popen, line: str) -> None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()

    pending: dict[int, bytes] = {}  # what each nc printed that no wait has read yet

    def read_until(proc: subprocess.Popen, text: str, deadline: float = 10.0) -> list[str]:
        """The lines up to the first holding ``text``; a failure, not a hang, by the end."""
        fd, lines = proc.stdout.fileno(), []
        end = time.monotonic() + deadline
        while not lines or text not in lines[-1]:
            if b"\n" in pending.get(fd, b""):
                line, _, pending[fd] = pending[fd].partition(b"\n")
                lines.append(line.decode() + "\n")
                continue
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            assert ready, f"no {text!r} within {deadline}s; read {lines}"
            chunk = os.read(fd, 65536)
            assert chunk, f"EOF before {text!r}; read {lines}"
            pending[fd] = pending.get(fd, b"") + chunk
        return lines

    users: list[subprocess.Popen] = []
    try:
        for name in ("ann", "bob", "cat"):  # one by one, each named: every wait is exact
            proc = processes.spawn(
                [nc, "127.0.0.1", str(server.port)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            users.append(proc)
            say(proc, f"rename|{name}")
            read_until(proc, f"is now {name}")
        ann, bob, cat = users
        say(ann, "/join dev")
        read_until(ann, "*** ann joined")
        say(bob, "/join #DEV")
        read_until(bob, "*** bob joined")
        read_until(ann, "*** bob joined")
        say(bob, "rename|Duke")
        read_until(ann, "bob is now Duke")
        say(ann, "hello Duke")
        assert read_until(bob, "hello Duke")[-1] == "<ann> hello Duke\n"
        say(cat, "who")
        seen = read_until(cat, "Online users")
        seen += read_until(cat, "cat")  # its one user
        assert seen[-2:] == ["Online users (1):\n", seen[-1]] and "cat" in seen[-1]
        assert not any("hello Duke" in line or "is now Duke" in line for line in seen)
    finally:
        for proc in users:
            processes.stop(proc)


async def test_a_flood_in_one_room_does_not_delay_another(make_server, make_peer):
    """A non-reading member of #flood and a flooder there: a round trip in main stays fast
    enough to be answered while the flood goes on (no timing bound: it is answered)."""
    server = await make_server(rate=0)
    flooder, stalled, probe = [await make_peer(server) for _ in range(3)]
    for peer in (flooder, stalled):
        await peer.send("/join flood")
        await peer.until_contains("now in #flood")
    flooding = asyncio.ensure_future(flooder.send(b"spam spam spam spam\n" * 20000))
    try:
        for n in range(5):
            await probe.send(f"/ping {n}")
            assert await probe.until_contains(f"pong {n}") == f"*** pong {n}"
    finally:
        await flooding
