"""A shared room's history after a (re)sync when the stream was trimmed, on a real
redis-server: no false history_gap for what the stream still holds, and what a node had
is kept (what it missed in between is the gap)."""

from __future__ import annotations

import redis.asyncio as aioredis

from chatroom import protocol as p
from chatroom.server.cluster.link import ClusterLink
from chatroom.server.cluster.records import RoomKeys
from chatroom.server.cluster.redis_ledger import RedisLedger, UserRecord
from chatroom.server.config import RoomRules, ServerConfig
from chatroom.server.core.room import Room


async def said(ledger: RedisLedger, user: UserRecord, text: str) -> None:
    line = p.Message(seq=0, ts=2.0, id=user.id, name=user.name, text=text)
    await ledger.append_many([(line, user, None)])


async def joined(ledger: RedisLedger, n: int) -> UserRecord:
    user = UserRecord.of(f"10.0.0.{n}:1", f"user{n}", ledger.node)
    await ledger.append_many([(p.Join(seq=0, ts=1.0, id=user.id, name=user.name), user, None)])
    return user


def node(redis_url: str, name: str) -> tuple[Room, ClusterLink]:
    config = ServerConfig(idle_timeout=0, history=5, keep=100, redis=redis_url,
                          events_per_entry=1)  # fmt: skip
    room = Room.shared(RoomRules.from_config(config), name)
    return room, ClusterLink(room, config, lambda event: room.handle(event, 0.0))


async def trim_to(redis_url: str, entries: int) -> None:
    raw = aioredis.from_url(redis_url)
    await raw.xtrim(RoomKeys.of("main").events, maxlen=entries, approximate=False)
    await raw.aclose()


async def test_a_node_synced_after_a_trim_past_joins_tells_no_false_gap(redis_url) -> None:
    other = RedisLedger(redis_url, "main", "b")
    await other.connect()
    bob = await joined(other, 1)
    for n in range(5):
        await said(other, bob, f"old {n}")  # seqs 2-6
    for n in range(2, 12):
        await joined(other, n)  # seqs 7-16: joins, no chat
    await said(other, bob, "new")  # seq 17
    await trim_to(redis_url, 8)  # the stream now starts at seq 10: a join
    room, link = node(redis_url, "a")
    await link.ledger.connect()
    await link._sync()
    chat = room.state.rooms.main.history
    assert [e.text for e in chat] == ["new"] and room.seq == 17
    assert chat.gap(9, 17) is None  # everything after 9 is in the stream: no gap
    assert chat.gap(12, 17) is None
    assert chat.gap(5, 17) == 9  # before the stream's start: a true gap
    await link.ledger.close()
    await other.close()


async def test_a_node_the_trim_outran_keeps_its_own_history_and_tells_the_hole(
    redis_url,
) -> None:
    other = RedisLedger(redis_url, "main", "b")
    await other.connect()
    room, link = node(redis_url, "a")
    await link.ledger.connect()
    bob = await joined(other, 1)
    await said(other, bob, "seen 1")
    await said(other, bob, "seen 2")  # seq 3
    await link._sync()  # in sync, then cut off: its reader is not running
    assert [e.text for e in room.state.rooms.main.history] == ["seen 1", "seen 2"]
    for n in range(10):
        await said(other, bob, f"missed {n}")  # seqs 4-13
    await said(other, bob, "after")  # seq 14
    await trim_to(redis_url, 3)  # the stream starts at seq 12: 4-11 are gone unread
    await link._sync()
    chat = room.state.rooms.main.history
    texts = [e.text for e in chat]
    assert texts == ["seen 1", "seen 2", "missed 8", "missed 9", "after"]
    assert chat.gap(1, room.seq) is None  # it had 2 and 3
    events, more = chat.after(1, 50)
    assert [e.text for e in events] == ["seen 1", "seen 2"] and more  # stops at the hole
    assert chat.gap(3, room.seq) == 11  # what the trim took, told
    assert chat.gap(11, room.seq) is None
    await link.ledger.close()
    await other.close()
