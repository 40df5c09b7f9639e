"""The request ids a shared room's ledger remembers, on a real redis-server: bounded in
time (request_ttl) and in count (request_table), and still shared by every node."""

from __future__ import annotations

import dataclasses
import json
import time

from chatroom import protocol as p
from chatroom.server.cluster.records import RoomKeys, UserRecord
from chatroom.server.cluster.scripts import Repeat
from chatroom.server.config import ServerConfig
from tests.test_redis_ledger import ROOM, body, join, make_ledger, node, raw  # noqa: F401

CAP = 5


def said(user: UserRecord, text: str) -> p.BroadcastEvent:
    return body("message", user, text=text)


def request(name: str, rid: str) -> str:
    return p.compact_json([p.name_key(name), rid])


async def test_a_flood_of_ids_leaves_at_most_the_cap_and_an_id_within_it_is_seen_on_both_nodes(
    make_ledger,  # noqa: F811
    raw,  # noqa: F811
) -> None:
    config = dataclasses.replace(ServerConfig(), request_table=CAP)
    one = await node(make_ledger, "one", config=config)
    two = await node(make_ledger, "two", config=config)
    robo = await join(one, "r:1", "robo")
    other = await join(two, "r:2", "other")
    # A flood: 50 distinct ids, in five batches.
    seqs = {}
    for batch in range(5):
        items = [
            (said(robo, f"line {n}"), robo, None, request("robo", f"id-{n}"))
            for n in range(batch * 10, batch * 10 + 10)
        ]
        results = await one.append_many(items)
        for n, seq in zip(range(batch * 10, batch * 10 + 10), results, strict=True):
            assert type(seq) is int
            seqs[n] = seq
    keys = RoomKeys.of(ROOM)
    assert await raw.hlen(keys.requests) == CAP
    assert await raw.zcard(keys.request_order) == CAP
    assert not [k async for k in raw.scan_iter(match=f"chatroom:{{{ROOM}}}:request:*")]
    kept = {json.loads(k)[1] for k in await raw.hkeys(keys.requests)}
    assert kept == {f"id-{n}" for n in range(45, 50)}  # the newest, the oldest forgotten
    ttl = await raw.pttl(keys.requests)
    assert 0 < ttl <= config.request_ttl * 1000  # and both keys go with the last request

    # An id within the cap is caught on the other node: acked with the first seq.
    retry = (said(other, "line 49"), other, None, request("robo", "id-49"))
    (again,) = await two.append_many([retry])
    assert type(again) is Repeat and again == seqs[49]
    # One forgotten past the cap is appended again (the bound's price, documented).
    (old,) = await two.append_many([(said(other, "line 0"), other, None, request("robo", "id-0"))])
    assert type(old) is int and old > seqs[49]
    assert await raw.hlen(keys.requests) == CAP


async def test_an_expired_id_is_forgotten_and_appended_again(make_ledger, raw) -> None:  # noqa: F811
    config = dataclasses.replace(ServerConfig(), request_ttl=0.2)
    one = await node(make_ledger, "one", config=config)
    robo = await join(one, "r:1", "robo")
    (first,) = await one.append_many([(said(robo, "x"), robo, None, request("robo", "a"))])
    (repeat,) = await one.append_many([(said(robo, "x"), robo, None, request("robo", "a"))])
    assert type(repeat) is Repeat and repeat == first
    time.sleep(0.3)  # a lower bound: at least the TTL passed
    (again,) = await one.append_many([(said(robo, "x"), robo, None, request("robo", "a"))])
    assert type(again) is int and again > first
    keys = RoomKeys.of(ROOM)
    assert await raw.hlen(keys.requests) == 1  # the expired one replaced, not added
