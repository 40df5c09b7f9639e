"""Bans, mutes and the topic are the room's across nodes (--redis): real processes, a real
redis-server."""

from __future__ import annotations

import asyncio

import pytest

from chatroom.server.moderation import hash_password
from tests.conftest import Peer
from tests.test_cluster import NODE_FLAGS, joined
from tests.test_server_process import ServerProcess

BANNED = "127.0.0.2"  # loopback too, so the test needs no network; bans cover exempt networks


@pytest.fixture
def ops_node(redis_url, tmp_path):
    """Start a node of the room (with an operator, boss) when called."""
    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    started: list[ServerProcess] = []

    def start() -> ServerProcess:
        flags = ("--port", "0", "--redis", redis_url, "--ops-file", str(ops), *NODE_FLAGS)
        started.append(ServerProcess(*flags))
        return started[-1]

    yield start
    for process in started:
        process.stop()


async def operator(port: int) -> Peer:
    peer = await Peer.connect(port)
    await peer.until_contains("joined")
    await peer.send("/oper boss s3cret")
    await peer.until_contains("now an operator")
    return peer


async def from_banned(port: int) -> Peer:
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(BANNED, 0), limit=2**20
    )
    return Peer(reader, writer)


async def test_a_ban_on_one_node_holds_on_every_node(ops_node):
    one, two = ops_node(), ops_node()
    victim = await from_banned(two.port)
    await victim.until_contains("joined")
    boss = await operator(one.port)
    await boss.send(f"/ban {BANNED} 1h flooding")
    await boss.until_contains(f"banned {BANNED}/32")
    assert b": flooding\n" in (await victim.closed()).split(b"you were banned by ")[1]
    await victim.close()

    refused = await from_banned(two.port)
    told = await refused.closed()
    assert told.startswith(b"*** your address is banned from this server for ")
    assert told.rstrip().endswith(b": flooding")
    await refused.close()

    three = ops_node()  # started later: it loads the ban from Redis
    refused = await from_banned(three.port)
    assert b"your address is banned" in await refused.closed()
    await refused.close()

    await boss.send(f"/unban {BANNED}")
    await boss.until_contains(f"unbanned {BANNED}/32")
    await asyncio.sleep(0.3)
    welcome = await from_banned(two.port)
    await welcome.until_contains("joined")
    await welcome.close()
    await boss.close()


async def test_a_mute_and_the_topic_hold_on_every_node(ops_node):
    one, two = ops_node(), ops_node()
    boss = await operator(one.port)
    bob = await joined(two.port)
    ann = await joined(one.port)
    await ann.send("/nick ann")
    await ann.until_event("rename", new="ann")
    await boss.send("/mute ann 1h")
    await boss.until_contains("ann is muted")
    await boss.send("/topic be kind")
    topic = await bob.until_event("topic")
    assert topic["text"] == "be kind"
    await ann.close()
    await bob.until_event("leave", name="ann")

    again = await joined(two.port)  # ann comes back on the other node
    await again.send("/nick ann")
    await again.until_event("rename", new="ann")
    await again.send("hello")
    assert (await again.until_event("error"))["code"] == "muted"

    three = ops_node()  # started later: it loads the mute and the topic
    later = await Peer.connect(three.port)
    assert await later.until_contains("Topic:") == "*** Topic: be kind"
    await later.close()

    await again.close()
    for peer in (boss, bob):
        await peer.close()
