"""Requests with ids and /history across two real nodes on a real redis-server."""

from __future__ import annotations

import json

from tests.conftest import Peer
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
