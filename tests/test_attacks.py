"""The real server process attacked as someone with one address and bad intent would.

Each test drives ``chatroom-server`` over real sockets on 127.0.0.1, on both event loops,
and checks what the room must survive: resets before accept, a paused server, floods of
short lines, a client that floods itself with replies or echoes. No test asserts speed or
memory: what a flood waiting for flood control costs in memory (RSS per flooder) is
measured by ``python -m bench --scenario flood-recvq`` (docs/PERFORMANCE.md, "Floods").
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import time

import pytest

from tests.conftest import Peer
from tests.test_server_process import ServerProcess

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture
def serve():
    started: list[ServerProcess] = []

    def start(loop: str, *flags: str) -> ServerProcess:
        process = ServerProcess("--port", "0", "--loop", loop, "--log-level", "warning", *flags)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


def stop_cleanly(server: ServerProcess) -> str:
    """SIGTERM; the server must exit 0 with nothing alarming on stderr. Returns stderr."""
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(10) == 0
    err = server.proc.stderr.read()
    assert "Traceback" not in err and "ERROR" not in err, err
    return err


@pytest.mark.parametrize("loop", LOOPS)
async def test_connections_reset_before_accept_leave_no_trace(serve, loop):
    server = serve(loop, "--rate", "0", "--idle-timeout", "0")
    watcher = await Peer.connect(server.port)
    await watcher.to_json()
    os.kill(server.proc.pid, signal.SIGSTOP)  # they queue in the backlog, then reset
    try:
        for _ in range(20):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.connect(("127.0.0.1", server.port))
            sock.close()
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    late = await Peer.connect(server.port)
    await watcher.until_event("join", id=late.local_id)
    await watcher.send("/who")
    who = await watcher.until_event("who")
    assert sorted(u["id"] for u in who["users"]) == sorted([watcher.local_id, late.local_id])
    await late.close()
    await watcher.until_event("leave", id=late.local_id)
    stop_cleanly(server)


@pytest.mark.parametrize("loop", LOOPS)
async def test_lines_sent_while_the_server_was_paused_are_handled_not_kicked(serve, loop):
    server = serve(loop, "--idle-timeout", "3")
    users = [await Peer.connect(server.port) for _ in range(20)]
    for user in users:
        await user.line()  # the welcome
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        for second in range(5):  # past the idle timeout, typing all along
            for n, user in enumerate(users):
                await user.send(f"u{n} s{second}")
            await asyncio.sleep(1)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    said = {f"u{n} s{second}" for n in range(len(users)) for second in range(5)}
    while said:  # every line arrives (paced by flood control), and nobody is kicked
        line = await users[0].line(timeout=20)
        assert "left (timeout)" not in line and "disconnected" not in line, line
        said.discard(line.partition("> ")[2])
    await users[0].send("/who")
    assert await users[0].until_contains("Online users (20)")
    for user in users:
        await user.close()
    stop_cleanly(server)


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_client_flooding_itself_with_replies_is_slowed_not_dropped(serve, loop):
    server = serve(loop, "--rate", "0", "--idle-timeout", "0", "--max-sendq", "16384")
    crowd = [await Peer.connect(server.port) for _ in range(40)]
    asker = await Peer.connect(server.port)
    await asker.until_contains(f"{asker.local_id} joined")
    asker.writer.transport.pause_reading()
    await asker.send(b"who\n" * 300)  # ~300 x 1.5 KB of replies; 16 KiB may wait unsent
    await asyncio.sleep(0.5)
    await crowd[0].send("meanwhile")  # something for everyone, the asker too
    await asyncio.sleep(0.5)
    asker.writer.transport.resume_reading()
    replies = 0
    while replies < 300:
        line = await asker.line(timeout=20)
        assert "left (slow)" not in line
        replies += line.startswith("Online users (41)")
    await asker.send("still here")
    await asker.until_contains("> still here")
    for peer in [*crowd, asker]:
        await peer.close()
    stop_cleanly(server)


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_flooder_that_reads_its_echoes_is_not_dropped(serve, loop):
    server = serve(loop, "--rate", "0", "--idle-timeout", "0")
    flooder = await Peer.connect(server.port)
    await flooder.to_json()
    total = 40_000
    payload = "".join(f"{n} {'x' * 40}\n" for n in range(total)).encode()
    sender = asyncio.create_task(flooder.send(payload))  # 1.8 MB at once
    seen = 0
    async with asyncio.timeout(60):
        while seen < total:
            event = json.loads(await flooder.line())
            assert event["type"] == "message", event
            assert int(event["text"].split()[0]) == seen
            seen += 1
    await sender
    await flooder.close()
    stop_cleanly(server)


@pytest.mark.parametrize("loop", LOOPS)
async def test_who_of_a_big_room_is_capped_and_paced_by_its_size(serve, loop):
    server = serve(loop, "--idle-timeout", "0")  # default flood control: 5 a second after 10
    crowd = []
    for _ in range(510):
        crowd.append(socket.create_connection(("127.0.0.1", server.port)))
    asker = await Peer.connect(server.port)
    await asker.to_json()
    started = time.monotonic()
    await asker.send(b"/who\n/who\n/who\n")
    replies = [await asker.until_event("who", timeout=20) for _ in range(3)]
    assert all(len(r["users"]) == 500 and r["total"] == 511 for r in replies)
    # Each reply listed 500 users, 10 lines' worth more than the line itself: the third
    # waits for flood control to be repaid (10 tokens, then -1, then -2 at 5 a second).
    assert time.monotonic() - started >= 1.5
    await asker.send("/who 127.0.0.1:" + str(asker.writer.get_extra_info("sockname")[1]))
    mine = await asker.until_event("who")
    assert [u["id"] for u in mine["users"]] == [asker.local_id]
    for sock in crowd:
        sock.close()
    await asker.close()
    stop_cleanly(server)


@pytest.mark.parametrize("loop", LOOPS)
async def test_a_line_separator_cannot_forge_a_second_line(serve, loop):
    server = serve(loop, "--rate", "0", "--idle-timeout", "0")
    mallory, victim = await Peer.connect(server.port), await Peer.connect(server.port)
    await victim.until_contains(f"{victim.local_id} joined")
    await mallory.send("hi\u2028<admin> fake\u200b\u200e")
    line = await victim.until_contains("> hi")
    assert line == f"<{mallory.local_id}> hi<admin> fake"
    await mallory.close()
    await victim.close()
    stop_cleanly(server)
