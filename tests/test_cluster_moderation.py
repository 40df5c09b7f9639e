"""Bans, mutes and the topic are the room's across nodes (--redis), and an operator's
commands reach users of every node: real processes, a real redis-server."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from msgspec.structs import replace

from chatroom import protocol as p
from chatroom.server.cluster.link import ClusterLink
from chatroom.server.cluster.redis_ledger import RedisLedger
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core import node_requests
from chatroom.server.core.actions import ModerateElsewhere
from chatroom.server.core.inputs import ModerationAnswered, ModerationUndelivered
from chatroom.server.core.node_requests import ModerationAnswer, ModerationRequest
from chatroom.server.core.passwords import hash_password
from chatroom.server.core.room import Room
from tests.conftest import TIMEOUT, Peer
from tests.test_cluster import NODE_FLAGS, joined
from tests.test_server_process import ServerProcess

BANNED = "127.0.0.2"  # loopback too, so the test needs no network; bans cover exempt networks


@pytest.fixture
def ops_node(redis_url, tmp_path):
    """Start a node of the room (with an operator, boss) when called."""
    ops = tmp_path / "ops"
    ops.write_text(f"boss {hash_password('s3cret')}\n")
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        flags = ("--port", "0", "--redis", redis_url, "--ops-file", str(ops), *NODE_FLAGS, *extra)
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


async def named(peer: Peer, name: str) -> Peer:
    await peer.send(f"/nick {name}")
    await peer.until_contains(f"is now {name}")
    return peer


async def watcher_of(port: int, name: str) -> Peer:
    """A JSON user on the node at ``port`` that has seen someone become ``name``: that node
    knows the user by that name now."""
    watcher = await joined(port)
    async with asyncio.timeout(TIMEOUT):
        await watcher.send("/who")
        while name not in [u["name"] for u in (await watcher.until_event("who"))["users"]]:
            await asyncio.sleep(0.05)
            await watcher.send("/who")
    return watcher


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


async def test_an_operator_kicks_a_user_of_another_node(ops_node):
    one, two = ops_node(), ops_node()
    bob = await named(await Peer.connect(two.port), "bob")
    watcher = await watcher_of(one.port, "bob")
    boss = await named(await operator(one.port), "boss")
    await boss.send("/kick bob spam")
    told = await bob.closed()
    assert told.rstrip().endswith(b"*** you were kicked by boss: spam")
    leave = await watcher.until_event("leave", name="bob")
    assert (leave["reason"], leave["by"], leave["text"]) == ("kicked", "boss", "spam")
    assert await boss.until_contains("bob was kicked") == "*** bob was kicked by boss (spam)"
    for peer in (bob, watcher, boss):
        await peer.close()


async def test_a_ban_by_name_of_a_user_of_another_node_is_refused_by_every_node(ops_node):
    one, two = ops_node(), ops_node()
    victim = await named(await from_banned(two.port), "victim")
    await (await watcher_of(one.port, "victim")).close()
    boss = await named(await operator(one.port), "boss")
    await boss.send("/ban victim 1h flooding")
    done = await boss.until_contains("banned ")
    assert done == f"*** banned {BANNED}/32 (victim) for 1h; 1 user sent away"
    assert b"you were banned by boss for 1h: flooding" in await victim.closed()
    await victim.close()
    for port in (two.port, one.port):
        told = await refused_soon(port)
        assert told.startswith(b"*** your address is banned from this server for ")
        assert told.rstrip().endswith(b": flooding")
    await boss.close()


async def refused_soon(port: int, deadline: float = 5.0) -> bytes:
    """What a newcomer from the banned address is told, once the node has the ban (it
    travels to other nodes on its own channel, beside the operator's answer)."""
    end = time.monotonic() + deadline
    while True:
        peer = await from_banned(port)
        told = await peer.closed() if time.monotonic() < end else b""
        await peer.close()
        if b"banned" in told or time.monotonic() > end:
            return told
        await asyncio.sleep(0.05)


async def test_a_mute_by_name_reaches_a_user_of_another_node(ops_node):
    one, two = ops_node(), ops_node()
    ann = await joined(two.port)
    await ann.send("/nick ann")
    await ann.until_event("rename", new="ann")
    watcher = await watcher_of(one.port, "ann")
    boss = await named(await operator(one.port), "boss")
    await boss.send("/mute ann 1h")
    assert await boss.until_contains("muted") == "*** ann is muted for 1h"
    told = await ann.until_event("notice")
    assert told["text"] == "you were muted by boss for 1h"
    await ann.send("hello")
    assert (await ann.until_event("error"))["code"] == "muted"

    await boss.send("/unmute ann")
    assert await boss.until_contains("muted") == "*** ann is no longer muted"
    await ann.send("back")
    assert (await watcher.until_event("message", name="ann"))["text"] == "back"
    for peer in (ann, watcher, boss):
        await peer.close()


async def test_an_unknown_name_or_a_node_gone_is_an_error_line(ops_node):
    one, two = ops_node(), ops_node()
    bob = await named(await Peer.connect(two.port), "bob")
    await (await watcher_of(one.port, "bob")).close()
    boss = await named(await operator(one.port), "boss")
    await boss.send("/kick nobody")
    assert await boss.until_contains("error") == "error: no user named nobody is online"
    # Node two dies (kill -9): bob is in the room until the heartbeat runs out, but nobody
    # hears on node two's channel.
    two.stop()
    await boss.send("/kick bob")
    line = await boss.until_contains("error")
    assert line == "error: bob's server cannot be reached: /kick bob was not done"
    for peer in (bob, boss):
        await peer.close()


async def test_a_node_that_hears_but_does_not_answer_is_reported_then_heard(ops_node):
    one, two = ops_node("--heartbeat-ttl", "20"), ops_node("--heartbeat-ttl", "20")
    bob = await named(await Peer.connect(two.port), "bob")
    await (await watcher_of(one.port, "bob")).close()
    boss = await named(await operator(one.port), "boss")
    two.proc.send_signal(signal.SIGSTOP)  # subscribed still, but answers nothing
    try:
        await boss.send("/mute bob")
        line = await boss.until_contains("error")  # after node_answer_timeout (3 s)
        assert line == "error: no answer from bob's server: /mute bob may not have been done"
    finally:
        two.proc.send_signal(signal.SIGCONT)
    # Node two goes on: it does it, and its late answer still reaches the operator.
    assert await boss.until_contains("muted") == "*** bob is muted"
    assert "you were muted by boss" in await bob.until_contains("muted")
    for peer in (bob, boss):
        await peer.close()


async def test_an_answer_that_comes_before_the_publish_returns_is_not_taken_for_silence(
    redis_url,
):
    """The operator's node waits for the answer from before it publishes the request: the
    answer, on the subscription, may beat Redis's reply to the publish."""
    config = ServerConfig(idle_timeout=0, redis=redis_url, node_answer_timeout=0.3)
    told: list[tuple] = []

    class RecordingRoom(Room):
        def handle(self, event, now):
            if isinstance(event, ModerationAnswered):
                told.append(("answered", event.answer.request, event.answer.events))
            elif isinstance(event, ModerationUndelivered):
                told.append(("undelivered", event.request.request, event.maybe_done))
            else:
                return super().handle(event, now)
            return []

    room = RecordingRoom.shared(RoomRules.from_config(config), "a")
    link = ClusterLink(room, config, lambda event: told.extend(room.handle(event, 0.0)))
    await link.start()
    other = RedisLedger(redis_url, "main", "b")
    await other.connect()
    muted = p.Notice(code=p.NoticeCode.INFO, text="bob is muted")

    async def node_b() -> None:  # answers every request at once, but for target "nobody"
        async for payload in other.private_messages():
            if payload.get("type") != "moderate" or payload.get("target") == "nobody":
                continue
            request = node_requests.from_payload(payload)
            answer = ModerationAnswer(request=request.request, to_id=request.by_id, events=(muted,))
            await other.publish_private("a", node_requests.to_payload(answer))

    answering = asyncio.create_task(node_b())
    async with asyncio.timeout(TIMEOUT):  # until both nodes hear their channels
        for ledger, node in ((link.ledger, "b"), (other, "a")):
            while not await ledger.publish_private(node, {"type": "probe"}):
                await asyncio.sleep(0.02)
    publish = link.ledger.publish_private

    async def late_reply(node: str, payload: dict) -> bool:  # Redis's reply is slow to come
        heard = await publish(node, payload)
        await asyncio.sleep(0.1)
        return heard

    link.ledger.publish_private = late_reply  # type: ignore[method-assign]
    request = ModerationRequest(
        request=1, command="mute", target_id="x", target="bob", by="boss", by_id="y", by_node="a"
    )
    link.ask(ModerateElsewhere("b", request, 7))
    async with asyncio.timeout(TIMEOUT):
        while not told:
            await asyncio.sleep(0.01)
    # Then a request node b hears and never answers: when it is reported unanswered, its
    # node_answer_timeout, begun later, has passed, and the first's would have too.
    never = replace(request, request=2, target="nobody")
    link.ask(ModerateElsewhere("b", never, 7))
    async with asyncio.timeout(TIMEOUT):
        while not any(entry[:2] == ("undelivered", 2) for entry in told):
            await asyncio.sleep(0.01)
    assert told == [("answered", 1, (muted,)), ("undelivered", 2, True)]
    answering.cancel()
    await other.close()
    await link.stop()
