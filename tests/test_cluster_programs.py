"""Requests with ids and /history across two real nodes on a real redis-server."""

from __future__ import annotations

import asyncio
import json

from tests.conftest import TIMEOUT, Peer
from tests.test_cluster import node  # noqa: F401 (a fixture)


async def named(port: int, name: str) -> Peer:
    peer = await Peer.connect(port)
    await peer.send(f"/nick {name}")
    await peer.until_contains(f"is now {name}")
    await peer.to_json()
    return peer


async def test_a_retry_on_the_other_node_is_acked_with_the_first_seq_not_said_again(
    node,  # noqa: F811
) -> None:
    one, two = node(), node()
    watcher = await named(two.port, "watcher")
    robo = await named(one.port, "robo")
    await robo.send(json.dumps({"id": "x1", "text": "only once"}))
    said = await robo.until_event("message", text="only once")
    assert await robo.until_event("ack") == {"type": "ack", "id": "x1", "seq": said["seq"]}
    await watcher.until_event("message", text="only once")
    await robo.close()
    await watcher.until_event("leave", name="robo")

    again = await named(two.port, "robo")  # the same name, on the other node
    await again.send(json.dumps({"id": "x1", "text": "only once"}))
    assert await again.until_event("ack") == {"type": "ack", "id": "x1", "seq": said["seq"]}
    await again.send(json.dumps({"id": "x2", "text": "marker"}))
    assert (await watcher.until_event("message", history=None))["text"] == "marker"
    for peer in (watcher, again):
        await peer.close()


async def test_history_on_one_node_holds_the_other_node_s_lines_and_a_late_node_s(
    node,  # noqa: F811
) -> None:
    one = node("--history", "1", "--keep", "100")
    ann = await named(one.port, "ann")
    for n in range(10):
        await ann.send(f"said {n}")
    await ann.until_event("message", text="said 9")
    two = node("--history", "1", "--keep", "100")  # started now: it reads what is kept
    bob = await named(two.port, "bob")
    await bob.send("/history since 0")
    head = await bob.until_event("notice", code="history")
    assert head["count"] == 10 and not head.get("more")
    texts = [(await bob.until_event("message"))["text"] for _ in range(10)]
    assert texts == [f"said {n}" for n in range(10)]
    for peer in (ann, bob):
        await peer.close()


async def who_bots(peer: Peer) -> dict[str, bool]:
    await peer.send("/who")
    return {u["name"]: bool(u.get("bot")) for u in (await peer.until_event("who"))["users"]}


async def test_a_bot_is_marked_in_who_on_every_node_and_unmarked_when_it_leaves(
    node,  # noqa: F811
    redis_url,
) -> None:
    import redis.asyncio as aioredis

    from chatroom.server.cluster.records import RoomKeys

    one, two = node(), node()
    watcher = await named(two.port, "watcher")
    robo = await named(one.port, "robo")
    await watcher.until_event("rename", new="robo")
    await robo.send("/bot")
    await robo.until_event("notice", fact="bot")
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while not (await who_bots(watcher)).get("robo"):  # the mark crosses through Redis
        assert asyncio.get_running_loop().time() < deadline, "robo never marked on node two"
        await asyncio.sleep(0.05)
    assert (await who_bots(watcher)) == {"watcher": False, "robo": True}
    three = node()  # started now: it reads the marks kept
    late = await named(three.port, "late")
    assert (await who_bots(late)) == {"watcher": False, "robo": True, "late": False}
    raw = aioredis.from_url(redis_url, decode_responses=True)
    key = RoomKeys.of("main").mod_prefix + "bot"
    assert len(await raw.hgetall(key)) == 1
    await robo.close()
    await watcher.until_event("leave", name="robo")
    deadline = asyncio.get_running_loop().time() + TIMEOUT
    while await raw.hlen(key):  # forgotten with its user: the marks stay bounded
        assert asyncio.get_running_loop().time() < deadline, "the mark outlived its user"
        await asyncio.sleep(0.05)
    await raw.aclose()
    for peer in (watcher, late):
        await peer.close()
