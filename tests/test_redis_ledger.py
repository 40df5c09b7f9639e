"""The Redis ledger against a real ``redis-server`` (started per test on a free port).

Nothing is mocked: two ledgers with different node names play two chatroom-server nodes
sharing one room; Redis is killed and restarted for real.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from chatroom import protocol as p
from chatroom.server.cluster.redis_ledger import (
    EVENTS_PER_ENTRY,
    Entry,
    LedgerUnavailable,
    RedisLedger,
    UserRecord,
    id_after,
    parse_stream_id,
)
from chatroom.server.config import ServerConfig
from chatroom.server.core.refusal import Refusal
from tests.conftest import TIMEOUT
from tests.redis_fixture import RedisServer

ROOM = "lobby"
MakeLedger = Callable[..., RedisLedger]


@pytest.fixture
async def make_ledger(redis_url: str) -> AsyncIterator[MakeLedger]:  # noqa: F811
    """Build connected-on-demand ledgers on the test's Redis; all closed at the end."""
    made: list[RedisLedger] = []

    def make(node: str, **kwargs: object) -> RedisLedger:
        kwargs.setdefault("room", ROOM)
        ledger = RedisLedger(redis_url, node=node, **kwargs)  # type: ignore[arg-type]
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.close()


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:  # noqa: F811
    """A plain client for looking at the keys directly."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def node(make: MakeLedger, name: str, **kwargs: object) -> RedisLedger:
    ledger = make(name, **kwargs)
    await ledger.connect()
    await ledger.register_node()
    return ledger


def event(data: dict[str, object]) -> p.BroadcastEvent:
    """The event of a wire dict, with seq 0 (an event to append)."""
    found = p.from_wire_dict({**data, "seq": 0})
    assert isinstance(found, p.Message | p.Action | p.Join | p.Leave | p.Rename)
    return found


def body(kind: str, user: UserRecord, **fields: object) -> p.BroadcastEvent:
    if kind == "rename":
        fields = {"old": user.name, "new": user.name, **fields}
        return event({"type": kind, "ts": time.time(), "id": user.id, **fields})
    return event({"type": kind, "ts": time.time(), "id": user.id, "name": user.name, **fields})


async def append(
    ledger: RedisLedger,
    body: p.BroadcastEvent,
    user: UserRecord | None = None,
    old_key: str | None = None,
) -> int | Refusal:
    """One append, through append_many (the ledger appends in batches only)."""
    (result,) = await ledger.append_many([(body, user, old_key)])  # type: ignore[list-item]
    return result


async def join(ledger: RedisLedger, id: str, name: str | None = None) -> UserRecord:
    user = UserRecord.of(id, name or id, ledger.node)
    assert isinstance(await append(ledger, body("join", user), user=user), int)
    return user


async def read_all(ledger: RedisLedger, after: str = "0-0") -> list[Entry]:
    return await ledger.read(after, block_ms=0, count=100_000)


async def xread_in_flight(url: str) -> None:
    """Return once Redis has a client blocked in XREAD (CLIENT LIST: cmd=xread, flag b)."""
    probe = aioredis.from_url(url, decode_responses=True)
    try:
        async with asyncio.timeout(TIMEOUT):
            while not any(
                c.get("cmd") == "xread" and "b" in c.get("flags", "")
                for c in await probe.client_list()
            ):
                await asyncio.sleep(0.01)
    finally:
        await probe.aclose()


# --- the stream: one order ---------------------------------------------------------------


async def test_append_and_read_give_one_order_with_seq_rising_by_one(make_ledger):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    ann = await join(a, "10.0.0.1:1", "ann")
    bob = await join(b, "10.0.0.2:2", "bob")
    seqs = await asyncio.gather(
        *(append(a, body("message", ann, text=f"a{i}"), user=ann) for i in range(20)),
        *(append(b, body("action", bob, text=f"b{i}"), user=bob) for i in range(20)),
    )
    assert sorted(seqs) == list(range(3, 43))

    seen_a, seen_b = await read_all(a), await read_all(b)
    assert seen_a == seen_b
    assert [e.seq for e in seen_a] == list(range(1, 43))
    assert all("seq" not in e.body for e in seen_a)
    assert [e.node for e in seen_a[:2]] == ["a", "b"]
    by_text = {e.body.get("text"): e for e in seen_a}
    assert by_text["a7"].node == "a" and by_text["b7"].body["type"] == "action"
    # A reader that resumes after an id gets exactly what follows it.
    assert await read_all(b, seen_a[9].stream_id) == seen_a[10:]


async def test_read_blocks_until_an_append_and_times_out_empty(make_ledger):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    start = time.monotonic()
    assert await b.read("0-0", block_ms=100) == []
    assert time.monotonic() - start >= 0.09

    ann = await join(a, "1.1.1.1:1", "ann")
    last = (await b.snapshot()).last_id
    waiting = asyncio.create_task(b.read(last, block_ms=int(TIMEOUT * 2000)))
    await xread_in_flight(b.url)  # it blocks: the append comes while it waits
    seq = await append(a, body("message", ann, text="hi"), user=ann)
    (entry,) = await asyncio.wait_for(waiting, TIMEOUT)
    assert (entry.seq, entry.body["text"], entry.node) == (seq, "hi", "a")


async def test_snapshot_is_users_last_id_and_seq(make_ledger):
    a = await node(make_ledger, "a")
    empty = await a.snapshot()
    assert (empty.users, empty.last_id, empty.seq) == ({}, "0-0", 0)
    ann = await join(a, "1.1.1.1:1", "ann")
    await append(a, body("message", ann, text="x"), user=ann)
    snap = await a.snapshot()
    entries = await read_all(a)
    assert snap.users == {ann.id: ann}
    assert (snap.last_id, snap.seq) == (entries[-1].stream_id, 2)


async def test_the_epoch_is_made_with_the_counter_and_kept(make_ledger, raw, redis_server):
    a = await node(make_ledger, "a")
    ann = await join(a, "1.1.1.1:1", "ann")  # the first append makes the counter and epoch
    epoch = await raw.get("chatroom:{lobby}:epoch")
    assert epoch and (await a.snapshot()).epoch == epoch
    await append(a, body("message", ann, text="x"), user=ann)
    assert (await a.snapshot(epoch, 2)).epoch == epoch  # where we got to: the same history
    # Redis restarts empty: a snapshot before any append makes the new ledger's epoch, and
    # the first append keeps it.
    redis_server.kill()
    redis_server.start()
    await a.connect()
    fresh = await a.snapshot(epoch, 2)
    assert fresh.seq == 0 and fresh.epoch not in (None, epoch)
    await join(a, "1.1.1.1:1", "ann")
    assert (await a.snapshot(fresh.epoch, 0)).epoch == fresh.epoch


async def test_a_ledger_whose_seq_went_back_in_one_epoch_gets_a_new_one(make_ledger, raw):
    # As after Redis restored an older snapshot of its data: same epoch, a lower seq.
    a = await node(make_ledger, "a")
    await join(a, "1.1.1.1:1", "ann")
    snap = await a.snapshot()
    renewed = await a.snapshot(snap.epoch, snap.seq + 40)
    assert renewed.epoch != snap.epoch
    assert await raw.get("chatroom:{lobby}:epoch") == renewed.epoch
    # Another node that saw the same old history now finds the new epoch: no second renewal.
    b = await node(make_ledger, "b")
    assert (await b.snapshot(snap.epoch, snap.seq + 40)).epoch == renewed.epoch


# --- users and names ---------------------------------------------------------------------


async def test_join_rename_leave_keep_users_and_names(make_ledger, raw):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    ann = await join(a, "1.1.1.1:1", "Ann")
    bob = await join(b, "2.2.2.2:2", "bob")
    assert (await b.snapshot()).users == {ann.id: ann, bob.id: bob}
    assert await raw.hgetall("chatroom:{lobby}:names") == {"ann": ann.id, "bob": bob.id}

    # Names are claimed casefolded across nodes.
    other = UserRecord.of("3.3.3.3:3", "ANN", "b")
    assert await append(b, body("join", other), user=other) is Refusal.TAKEN

    duke = UserRecord.of(ann.id, "Duke", "a")
    assert isinstance(
        await append(a, body("rename", duke, old="Ann", new="Duke"), user=duke, old_key=ann.key),
        int,
    )
    assert (await b.snapshot()).users[ann.id] == duke
    assert await raw.hgetall("chatroom:{lobby}:names") == {"duke": ann.id, "bob": bob.id}
    # Changing only the case of one's own name keeps the claim.
    loud = UserRecord.of(ann.id, "DUKE", "a")
    assert isinstance(await append(a, body("rename", loud), user=loud, old_key=duke.key), int)
    assert await raw.hget("chatroom:{lobby}:names", "duke") == ann.id
    # Renaming to someone else's name is refused, and nothing is appended.
    before = (await a.snapshot()).seq
    as_bob = UserRecord.of(ann.id, "BOB", "a")
    assert await append(a, body("rename", as_bob), user=as_bob, old_key=loud.key) is Refusal.TAKEN
    assert (await a.snapshot()).seq == before

    assert isinstance(await append(a, body("leave", loud, reason="quit"), user=loud), int)
    assert (await a.snapshot()).users == {bob.id: bob}
    assert await raw.hgetall("chatroom:{lobby}:names") == {"bob": bob.id}
    # The freed name can be taken again.
    assert isinstance(await join(b, "4.4.4.4:4", "duke"), UserRecord)


async def test_rename_race_across_nodes_has_one_winner(make_ledger):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    ann = await join(a, "1.1.1.1:1", "ann")
    bob = await join(b, "2.2.2.2:2", "bob")
    for round_ in range(10):
        name = f"Duke{round_}"
        new_a = UserRecord.of(ann.id, name, "a")
        new_b = UserRecord.of(bob.id, name.lower(), "b")
        results = await asyncio.gather(
            append(a, body("rename", new_a), user=new_a, old_key=ann.key),
            append(b, body("rename", new_b), user=new_b, old_key=bob.key),
        )
        assert sum(isinstance(r, int) for r in results) == 1
        assert results.count(Refusal.TAKEN) == 1
        users = (await a.snapshot()).users
        assert [u.key for u in users.values()].count(p.name_skeleton(name)) == 1
        ann, bob = users[ann.id], users[bob.id]  # the loser keeps its old name


async def test_leave_twice_and_messages_after_leave_are_gone(make_ledger):
    a = await node(make_ledger, "a")
    ann = await join(a, "1.1.1.1:1", "ann")
    leave = body("leave", ann, reason="eof")
    first, second = await asyncio.gather(append(a, leave, user=ann), append(a, leave, user=ann))
    assert sorted([first, second], key=str) == [2, Refusal.GONE]
    assert await append(a, body("message", ann, text="ghost"), user=ann) is Refusal.GONE
    assert await append(a, body("action", ann, text="ghost"), user=ann) is Refusal.GONE
    renamed = UserRecord.of(ann.id, "x", "a")
    assert await append(a, body("rename", renamed), user=renamed, old_key=ann.key) is Refusal.GONE
    assert (await a.snapshot()).seq == 2


async def test_bad_appends_are_refused_before_redis(make_ledger):
    a = make_ledger("a")
    ann = UserRecord.of("1.1.1.1:1", "ann", "a")
    with pytest.raises(ValueError):
        await append(a, p.Notice(code=p.NoticeCode.INFO, text="not in the stream"), user=ann)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # the seq is the ledger's to give
        await append(a, p.replace(body("message", ann, text="x"), seq=3), user=ann)
    with pytest.raises(ValueError):
        await append(a, body("message", ann, text="x"))
    with pytest.raises(ValueError):
        await append(a, body("rename", ann), user=ann)
    for room in ("", "a b", "x" * 65, "{lobby}", "ü"):
        with pytest.raises(ValueError):
            RedisLedger("redis://127.0.0.1:1/0", room, "a")
    for node_name in ("", "a b", "{a}", "x" * 129):
        with pytest.raises(ValueError):
            RedisLedger("redis://127.0.0.1:1/0", ROOM, node_name)
    RedisLedger("redis://127.0.0.1:1/0", "a.b-C_9", "host-1.example:4242:0a1b2c3d")


# --- history and trimming ----------------------------------------------------------------


async def test_history_is_the_newest_chat_before_an_id_oldest_first(make_ledger):
    a = await node(make_ledger, "a")
    ann = await join(a, "1.1.1.1:1", "ann")
    for i in range(30):
        kind = "action" if i % 5 == 0 else "message"
        await append(a, body(kind, ann, text=str(i)), user=ann)
        if i % 3 == 0:  # joins and leaves in between are not history
            guest = await join(a, f"9.9.9.9:{i}")
            await append(a, body("leave", guest, reason="eof"), user=guest)
    entries = await read_all(a)

    newest = await a.history("+", 5)
    assert [e.body["text"] for e in newest] == ["25", "26", "27", "28", "29"]
    assert newest[0].body["type"] == "action"

    cut = next(e for e in entries if e.body.get("text") == "12")
    before = await a.history(cut.stream_id, 4)
    assert [e.body["text"] for e in before] == ["8", "9", "10", "11"]
    assert [e.body["text"] for e in await a.history("+", 1000)] == [str(i) for i in range(30)]
    assert await a.history(entries[0].stream_id, 10) == []
    # Up to and including an id: the snapshot's last entry is history for a newcomer.
    last = (await a.snapshot()).last_id
    assert entries[-1].stream_id == last and entries[-1].body["text"] == "29"
    assert (await a.history(last, 1))[-1].body["text"] == "28"
    assert (await a.history(id_after(last), 1))[-1] == entries[-1]
    assert id_after("0-0") == "0-1"
    assert await a.history("+", 0) == []


async def test_stream_is_trimmed_to_about_maxlen(make_ledger, raw):
    a = await node(make_ledger, "a", stream_maxlen=50)
    ann = await join(a, "1.1.1.1:1", "ann")
    for i in range(600):
        await append(a, body("message", ann, text=str(i)), user=ann)
    length = await raw.xlen("chatroom:{lobby}:events")
    # MAXLEN counts entries, each up to EVENTS_PER_ENTRY events (here one: an append a
    # call), and ~ trims whole stream nodes (100 entries each by default): bounded, not exact.
    entries = math.ceil(50 / EVENTS_PER_ENTRY)
    assert entries <= length <= entries + 100
    assert (await a.snapshot()).seq == 601
    assert (await a.history("+", 3))[-1].body["text"] == "599"
    # A busy room's appends share entries: as many events, far fewer entries.
    lines = [(body("message", ann, text=f"b{i}"), ann, None) for i in range(600)]
    assert len(await a.append_many(lines)) == 600
    length = await raw.xlen("chatroom:{lobby}:events")
    assert entries <= length <= entries + 100
    assert len(await read_all(a)) <= (entries + 100) * EVENTS_PER_ENTRY
    assert [e.body["text"] for e in await a.history("+", 20)] == [f"b{i}" for i in range(580, 600)]


# --- dead nodes and shutdown -------------------------------------------------------------


async def test_dead_node_is_reaped_once_with_error_leaves(make_ledger, raw):
    a = await node(make_ledger, "a", heartbeat_ttl=1.0)
    b = await node(make_ledger, "b", heartbeat_ttl=1.0)
    c = await node(make_ledger, "c", heartbeat_ttl=1.0)
    names = ["a0", 'q"u\\o/te', "ünï😀"]  # JSON built in Lua must escape these right
    a_users = [await join(a, f"1.1.1.1:{i}", name) for i, name in enumerate(names)]
    b_user = await join(b, "2.2.2.2:2", "bee")
    for ledger in (a, b, c):  # a second of life from now, however slow the set-up was
        await ledger.heartbeat()
    assert await b.reap_dead_nodes(time.time()) == 0  # everyone is alive

    for _ in range(12):  # b and c stay alive; a stops beating
        await asyncio.sleep(0.1)
        await b.heartbeat()
        await c.heartbeat()
    last = (await b.snapshot()).last_id
    now = time.time()
    counts = await asyncio.gather(b.reap_dead_nodes(now), c.reap_dead_nodes(now))
    assert sorted(counts) == [0, 3]
    assert await c.reap_dead_nodes(time.time()) == 0

    leaves = await read_all(c, last)
    assert [e.body for e in leaves] == [
        {"type": "leave", "ts": now, "id": u.id, "name": u.name, "reason": "error", "room": "lobby"}
        for u in a_users
    ]
    assert {e.node for e in leaves} == {"a"}
    assert [e.seq for e in leaves] == [5, 6, 7]
    assert (await c.snapshot()).users == {b_user.id: b_user}
    assert await raw.smembers("chatroom:{lobby}:nodes") == {"b", "c"}
    # A reaped user's events are refused.
    assert (
        await append(a, body("message", a_users[0], text="late"), user=a_users[0]) is Refusal.GONE
    )
    # A node that was only slow beats again and is watched again.
    await a.heartbeat()
    assert await raw.smembers("chatroom:{lobby}:nodes") == {"a", "b", "c"}


async def test_forget_node_appends_shutdown_leaves(make_ledger, raw):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    ann = await join(a, "1.1.1.1:1", "ann")
    bob = await join(b, "2.2.2.2:2", "bob")
    await a.forget_node(now_ts=123.5)
    (leave,) = (await read_all(b))[2:]
    assert leave.body == {
        "type": "leave",
        "ts": 123.5,
        "id": ann.id,
        "name": "ann",
        "reason": "shutdown",
        "room": "lobby",
    }
    assert (leave.seq, leave.node) == (3, "a")
    assert (await b.snapshot()).users == {bob.id: bob}
    assert await raw.smembers("chatroom:{lobby}:nodes") == {"b"}
    assert not await raw.exists("chatroom:{lobby}:node:a")
    assert await b.reap_dead_nodes(time.time()) == 0


# Names the ledger takes as they come (the room checks names, not the ledger): JSON made in
# Lua must escape each exactly as Python's encoder does.
AWKWARD_NAMES = [
    "ann",
    'q"u\\o/te',
    "ünï😀",
    "\x00\x1f\x7f\b\f\n\r\t",
    "\\u007f",
    "a\\/b",
    "\u2028",
]


@pytest.mark.parametrize("how", ["forget", "reap"])
async def test_leaves_made_in_lua_are_byte_for_byte_what_python_encodes(make_ledger, raw, how):
    a = await node(make_ledger, "a", heartbeat_ttl=0.2)
    b = await node(make_ledger, "b")
    users = [await join(a, f"1.1.1.1:{i}", name) for i, name in enumerate(AWKWARD_NAMES)]
    ts = 1700000000.1234567  # more digits than cjson writes
    if how == "forget":
        await a.forget_node(now_ts=ts)
        reason = p.LeaveReason.SHUTDOWN
    else:
        async with asyncio.timeout(TIMEOUT):  # until a's heartbeat has expired
            while await raw.exists("chatroom:{lobby}:node:a"):
                await asyncio.sleep(0.02)
        assert await b.reap_dead_nodes(ts) == len(users)
        reason = p.LeaveReason.ERROR
    # The joins were appended one a call; the leaves, one script call, share an entry.
    rows = (await raw.xrange("chatroom:{lobby}:events"))[len(users) :]
    assert len(rows) == 1
    lines = rows[0][1]["e"].split("\n")
    assert len(lines) == len(users)
    for line, user in zip(lines, sorted(users, key=lambda u: u.id), strict=True):
        seq, whose, text = line.split(" ", 2)
        assert whose == "a"
        leave = p.Leave(
            seq=int(seq), ts=ts, id=user.id, name=user.name, reason=reason, room="lobby"
        )
        # The stream keeps the line without its seq (the reader adds it back).
        assert text == p.encode_json(leave).replace(f'"seq":{leave.seq},', "", 1)
        assert p.from_wire_dict({**json.loads(text), "seq": leave.seq}) == leave


def test_parse_stream_id_orders_ids_as_redis_does():
    assert parse_stream_id("1700000000000-5") == (1700000000000, 5)
    assert parse_stream_id("12") == (12, 0)
    assert parse_stream_id("9-10") > parse_stream_id("9-9")  # not as strings
    assert parse_stream_id("10-0") > parse_stream_id("9-99")
    assert id_after("9-9") == "9-10"


# --- private pub/sub ---------------------------------------------------------------------


async def subscribed(ledger: RedisLedger) -> tuple[AsyncIterator[dict], asyncio.Task]:
    """Start iterating ``ledger``'s private messages; return once Redis has the subscriber."""
    inbox = ledger.private_messages()
    first = asyncio.create_task(anext(inbox))
    channel = f"chatroom:{{{ledger.room}}}:private:{ledger.node}"
    probe = aioredis.from_url(ledger.url, decode_responses=True)
    try:
        async with asyncio.timeout(3):
            while dict(await probe.pubsub_numsub(channel)).get(channel, 0) < 1:
                await asyncio.sleep(0.01)
    finally:
        await probe.aclose()
    return inbox, first


async def test_private_messages_reach_only_their_node(make_ledger):
    a = await node(make_ledger, "a")
    b = await node(make_ledger, "b")
    a_inbox, a_first = await subscribed(a)
    b_inbox, b_first = await subscribed(b)
    await a.publish_private("b", {"type": "private", "to": "bob", "text": "psst"})
    await a.publish_private("b", {"type": "private", "to": "bob", "text": "ünïcode"})
    await b.publish_private("a", {"type": "private", "to": "ann", "text": "hi"})
    assert await asyncio.wait_for(b_first, 3) == {"type": "private", "to": "bob", "text": "psst"}
    assert (await asyncio.wait_for(anext(b_inbox), 3))["text"] == "ünïcode"
    assert await asyncio.wait_for(a_first, 3) == {"type": "private", "to": "ann", "text": "hi"}
    # Nothing else was for node a: the next thing it gets is what was sent to it last.
    await b.publish_private("a", {"type": "private", "to": "ann", "text": "last"})
    assert (await asyncio.wait_for(anext(a_inbox), 3))["text"] == "last"
    for inbox in (a_inbox, b_inbox):
        await inbox.aclose()


# --- Redis unreachable, lost, restarted --------------------------------------------------


async def test_connect_to_a_closed_port_is_one_clear_line():
    port = __import__("tests.redis_fixture", fromlist=["_free_port"])._free_port()
    ledger = RedisLedger(f"redis://:secret@127.0.0.1:{port}/0", ROOM, "a", timeout=1.0)
    with pytest.raises(LedgerUnavailable) as caught:
        await asyncio.wait_for(ledger.connect(), TIMEOUT)  # a deadline, not a speed
    message = str(caught.value)
    assert message.startswith(f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0: ")
    assert "\n" not in message and "secret" not in message
    with pytest.raises(LedgerUnavailable):
        await ledger.snapshot()
    await ledger.close()


async def test_redis_killed_then_restarted(make_ledger, redis_server: RedisServer):  # noqa: F811
    a = await node(make_ledger, "a")
    ann = await join(a, "1.1.1.1:1", "ann")
    # Several pooled connections, so stale ones are around after the restart.
    await asyncio.gather(
        *(append(a, body("message", ann, text=str(i)), user=ann) for i in range(5))
    )
    inbox, first = await subscribed(a)
    last = (await a.snapshot()).last_id
    blocked = asyncio.create_task(a.read(last, block_ms=int(TIMEOUT * 2000)))
    await xread_in_flight(redis_server.url)  # it is in flight when Redis dies

    redis_server.kill()
    with pytest.raises(LedgerUnavailable) as caught:
        await append(a, body("message", ann, text="lost?"), user=ann)
    assert "\n" not in str(caught.value)
    for call in (
        a.snapshot(),
        a.heartbeat(),
        a.history("+", 5),
        a.read(last, block_ms=0),
        a.reap_dead_nodes(time.time()),
        a.publish_private("b", {}),
    ):
        with pytest.raises(LedgerUnavailable):
            await call
    with pytest.raises(LedgerUnavailable):
        await asyncio.wait_for(blocked, TIMEOUT)  # the XREAD in flight
    with pytest.raises(LedgerUnavailable):
        await asyncio.wait_for(first, 5)  # the private subscription
    await inbox.aclose()

    redis_server.start()  # same port, empty: no persistence
    probe = aioredis.from_url(redis_server.url)
    assert await probe.script_exists(a._snapshot.sha) == [False]
    await a.connect()
    # Every call works again at once; the scripts are loaded again (EVALSHA -> EVAL).
    snap = await a.snapshot()
    assert (snap.users, snap.seq, snap.last_id) == ({}, 0, "0-0")
    assert await probe.script_exists(a._snapshot.sha) == [True]
    await probe.aclose()
    await a.register_node()
    assert await append(a, body("message", ann, text="after"), user=ann) is Refusal.GONE
    again = await join(a, ann.id, "ann")
    assert again == ann
    assert await append(a, body("message", ann, text="after"), user=ann) == 2  # seq restarted
    # The old stream id still works as a read position: new ids are later in time.
    assert [e.body.get("text") for e in await a.read(last, block_ms=100)] == [None, "after"]
    assert await a.reap_dead_nodes(time.time()) == 0
    inbox, first = await subscribed(a)
    await a.publish_private("a", {"n": 1})
    assert await asyncio.wait_for(first, 3) == {"n": 1}
    await inbox.aclose()


async def test_a_hung_redis_times_out_as_unavailable(make_ledger, redis_server: RedisServer):  # noqa: F811
    a = await node(make_ledger, "a", timeout=0.3)
    ann = await join(a, "1.1.1.1:1", "ann")
    last = (await a.snapshot()).last_id
    blocked = asyncio.create_task(a.read(last, block_ms=500))
    await xread_in_flight(redis_server.url)  # it is in flight when Redis hangs
    redis_server.pause()
    try:
        with pytest.raises(LedgerUnavailable, match="Timeout"):  # the ledger's own timeout
            await asyncio.wait_for(append(a, body("message", ann, text="maybe"), user=ann), TIMEOUT)
        with pytest.raises(LedgerUnavailable):  # bounded by block_ms + timeout
            await asyncio.wait_for(blocked, TIMEOUT)
    finally:
        redis_server.resume()
    # The timed-out append may still have run once Redis woke up: outcome unknown.
    assert (await a.snapshot()).seq in (1, 2)
    # Nothing stale is left on the pooled connections: replies match their commands.
    entries = await a.read(last, block_ms=50)
    assert [e.seq for e in entries] == list(range(2, 2 + len(entries)))
    assert isinstance(await append(a, body("message", ann, text="next"), user=ann), int)


async def test_append_many_is_one_round_trip_in_order_each_checked(redis_url):
    ledger = RedisLedger(redis_url, "batch", "n1")
    await ledger.connect()
    ann, bob = UserRecord.of("a:1", "ann", "n1"), UserRecord.of("b:2", "bob", "n1")
    taken = UserRecord.of("b:2", "ANN", "n1")
    results = await ledger.append_many(
        [
            (event({"type": "join", "ts": 1.0, "id": ann.id, "name": ann.name}), ann, None),
            (event({"type": "join", "ts": 1.0, "id": bob.id, "name": bob.name}), bob, None),
            (
                event({"type": "message", "ts": 2.0, "id": ann.id, "name": "ann", "text": "x"}),
                ann,
                None,
            ),
            (
                event({"type": "rename", "ts": 3.0, "id": bob.id, "old": "bob", "new": "ANN"}),
                taken,
                bob.key,
            ),
            (
                event({"type": "message", "ts": 4.0, "id": bob.id, "name": "bob", "text": "y"}),
                bob,
                None,
            ),
        ]
    )
    assert results == [1, 2, 3, Refusal.TAKEN, 4]
    assert type(results[3]) is Refusal
    entries = await ledger.read("0-0", block_ms=0)
    assert [(e.seq, e.body["type"]) for e in entries] == [
        (1, "join"), (2, "join"), (3, "message"), (4, "message"),
    ]  # fmt: skip
    await ledger.close()


async def test_a_user_id_held_by_another_node_is_refused_not_merged(make_ledger, raw):
    one, two = await node(make_ledger, "a"), await node(make_ledger, "b")
    ann = await join(one, "10.0.0.9:4000")
    twin = UserRecord.of(ann.id, ann.id, "b")
    assert await append(two, body("join", twin), user=twin) == Refusal.DUPLICATE
    # Nor may the other node speak, rename or leave under that id.
    assert await append(two, body("message", twin, text="hi"), user=twin) == Refusal.GONE
    renamed = UserRecord.of(ann.id, "twin", "b")
    assert (
        await append(two, body("rename", twin, old=ann.id, new="twin"), renamed, ann.key)
        == Refusal.GONE
    )
    assert await append(two, body("leave", twin, reason="quit"), user=twin) == Refusal.GONE
    record = UserRecord.from_json(await raw.hget(f"chatroom:{{{ROOM}}}:users", ann.id))
    assert record == ann  # still node a's user
    assert isinstance(await append(one, body("message", ann, text="mine"), user=ann), int)


async def test_after_a_restart_no_stale_pooled_connection_fails_a_command(
    make_ledger,
    redis_server: RedisServer,  # noqa: F811
):
    a = await node(make_ledger, "a")
    ann = await join(a, "1.1.1.1:1", "ann")
    # Several pooled connections, none of them used while Redis is away.
    await asyncio.gather(
        *(append(a, body("message", ann, text=str(i)), user=ann) for i in range(6)),
        a.heartbeat(),
        a.snapshot(),
    )
    last = (await a.snapshot()).last_id
    redis_server.restart()  # empty
    await a.connect()
    # Once it answers, every command works, however many run at once.
    await a.register_node()
    again = await join(a, ann.id, "ann")
    results = await asyncio.gather(
        *(append(a, body("message", again, text=str(i)), user=again) for i in range(6)),
        a.heartbeat(),
        a.snapshot(),
        a.read(last, block_ms=0),
        a.reap_dead_nodes(time.time()),
    )
    assert sorted(results[:6]) == list(range(2, 8))


async def test_a_look_alike_of_a_name_on_another_node_is_taken(make_ledger):
    one, two = await node(make_ledger, "a"), await node(make_ledger, "b")
    await join(one, "10.0.0.1:1", "ann")
    look_alike = UserRecord.of("10.0.0.2:2", "\u0430nn", "b")  # Cyrillic а
    assert await append(two, body("join", look_alike), user=look_alike) is Refusal.TAKEN


async def test_one_batch_script_checks_each_event_against_the_ones_before_it(redis_url):
    """The whole batch is one script call: a join, the user's lines (given by id alone), a
    leave and a line after it, a refused join in the middle and a second node's user."""
    ledger = RedisLedger(redis_url, "batch-one", "n1")
    other = RedisLedger(redis_url, "batch-one", "n2")
    await ledger.connect()
    cy = UserRecord.of("c:3", "cy", "n2")
    assert await other.append_many(
        [(event({"type": "join", "ts": 0.5, "id": cy.id, "name": cy.name}), cy, None)]
    ) == [1]
    ann = UserRecord.of("a:1", "ann", "n1")
    twin = UserRecord.of("z:9", "\u0430nn", "n1")  # a look-alike of ann
    results = await ledger.append_many(
        [
            (event({"type": "join", "ts": 1.0, "id": ann.id, "name": ann.name}), ann, None),
            (event({"type": "join", "ts": 1.1, "id": twin.id, "name": twin.name}), twin, None),
            (
                event({"type": "message", "ts": 2.0, "id": ann.id, "name": "ann", "text": "x"}),
                ann.id,
                None,
            ),
            (
                event({"type": "action", "ts": 2.1, "id": ann.id, "name": "ann", "text": "y"}),
                ann,
                None,
            ),
            (
                event({"type": "message", "ts": 2.2, "id": cy.id, "name": "cy", "text": "z"}),
                cy.id,
                None,
            ),
            (
                event({"type": "leave", "ts": 3.0, "id": ann.id, "name": "ann", "reason": "quit"}),
                ann.id,
                None,
            ),
            (
                event({"type": "message", "ts": 4.0, "id": ann.id, "name": "ann", "text": "w"}),
                ann.id,
                None,
            ),
            (event({"type": "join", "ts": 5.0, "id": twin.id, "name": twin.name}), twin, None),
        ]
    )
    assert results == [2, Refusal.TAKEN, 3, 4, Refusal.GONE, 5, Refusal.GONE, 6]
    entries = await ledger.read("0-0", block_ms=0)
    assert [(e.seq, e.body["type"], e.node) for e in entries] == [
        (1, "join", "n2"), (2, "join", "n1"), (3, "message", "n1"), (4, "action", "n1"),
        (5, "leave", "n1"), (6, "join", "n1"),
    ]  # fmt: skip
    assert entries[2].body == {"type": "message", "ts": 2.0, "id": "a:1", "name": "ann",
                               "text": "x"}  # fmt: skip
    snapshot = await ledger.snapshot()
    assert set(snapshot.users) == {cy.id, twin.id}
    with pytest.raises(ValueError):
        await ledger.append_many(
            [(event({"type": "join", "ts": 1.0, "id": "q", "name": "q"}), "q", None)]
        )
    await ledger.close()
    await other.close()


async def test_moderation_is_kept_published_and_expires(make_ledger):
    one, two = await node(make_ledger, "one"), await node(make_ledger, "two")
    changes = two.moderation_changes()
    first = await anext(changes)
    assert first == {"state": {"ban": {}, "mute": {}, "topic": {}, "account": {}, "bot": {}}}
    ban = {"target": "203.0.113.0/24", "until": None, "name": None, "reason": "x", "by": "op"}
    await one.moderate("ban", "203.0.113.0/24", ban)
    await one.moderate("mute", "ann", {"name": "ann", "until": time.time() - 1})  # expired
    await one.moderate("topic", "topic", {"text": "be kind", "by": "op"})
    await one.moderate("ban", "203.0.113.0/24", None)
    await one.moderate("ban", "198.51.100.7/32", ban)
    seen = [await anext(changes) for _ in range(5)]
    assert [(c["kind"], c["key"], c["node"]) for c in seen] == [
        ("ban", "203.0.113.0/24", "one"),
        ("mute", "ann", "one"),
        ("topic", "topic", "one"),
        ("ban", "203.0.113.0/24", "one"),
        ("ban", "198.51.100.7/32", "one"),
    ]
    assert seen[3]["data"] is None
    await changes.aclose()
    state = await two.moderation_state()
    assert state == {
        "ban": {"198.51.100.7/32": ban},
        "mute": {},  # expired: dropped, and deleted
        "topic": {"topic": {"text": "be kind", "by": "op"}},
        "account": {},
        "bot": {},
    }
    with pytest.raises(ValueError):
        await one.moderate("kick", "x", None)


async def test_entries_in_the_older_three_field_form_are_still_read(make_ledger, raw):
    """A stream written by servers before the one-field form (seq, body, node) still reads,
    in XREAD and in history."""
    a = await node(make_ledger, "a")
    ann = await join(a, "10.0.0.1:1", "ann")
    line = '{"type":"message","ts":2.0,"id":"10.0.0.1:1","name":"ann","text":"old"}'
    await raw.xadd("chatroom:{lobby}:events", {"seq": 2, "body": line, "node": "b"})
    assert isinstance(await append(a, body("message", ann, text="new"), user=ann), int)
    entries = await read_all(a)
    assert [(e.seq, e.node, e.body.get("text")) for e in entries] == [
        (1, "a", None), (2, "b", "old"), (2, "a", "new"),
    ]  # fmt: skip
    assert [e.body["text"] for e in await a.history("+", 5)] == ["old", "new"]


async def test_a_ledger_from_the_config_takes_its_tuning_from_it(redis_url, raw):
    config = ServerConfig(redis=redis_url, room="tuned", events_per_entry=3, stream_maxlen=40)
    ledger = RedisLedger.from_config(config, "n1")
    await ledger.connect()
    assert (ledger.room, ledger.stream_maxlen, ledger.timeout) == ("tuned", 40, 3.0)
    user = await join(ledger, "a:1", "ann")
    says = [body("message", user, text=str(n)) for n in range(7)]
    assert await ledger.append_many([(said, user.id, None) for said in says]) == [*range(2, 9)]
    rows = await raw.xrange("chatroom:{tuned}:events")
    # The join alone, then the seven messages of one call three to an entry.
    assert [row[1]["e"].count("\n") + 1 for row in rows] == [1, 3, 3, 1]
    assert [e.seq for e in await ledger.read("0-0", block_ms=0, count=2)] == [1, 2, 3, 4]
    await ledger.close()
