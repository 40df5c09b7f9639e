"""Rooms across real server processes through a real redis-server (issue 19, item 3):
each room its own stream and seq, names unique across rooms and nodes, who per room."""

from __future__ import annotations

import asyncio
import json
import subprocess

import redis.asyncio as aioredis

from chatroom import protocol as p
from chatroom.server.cluster.records import UserRecord
from chatroom.server.cluster.redis_ledger import RedisLedger
from chatroom.server.config import ServerConfig
from chatroom.server.core.refusal import Refusal
from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_cluster import NODE_FLAGS, node  # noqa: F401 (node: a fixture)
from tests.test_cluster import joined as json_peer
from tests.test_cluster_moderation import named, operator
from tests.test_cluster_moderation import ops_node as moderation_node
from tests.test_cluster_stream import logged_once
from tests.test_cluster_stream import start_node as stream_node
from tests.test_server_process import SERVER_SCRIPT


async def text_peer(port: int) -> Peer:
    """An nc user that has seen its own join in the default room."""
    peer = await Peer.connect(port)
    await peer.until_contains(f"*** {peer.local_id} joined")
    return peer


async def join_room(peer: Peer, room: str) -> dict:
    """A JSON peer adds ``room``; returns its own join there."""
    await peer.send(f"/join {room}")
    await peer.until_event("room", room=room)
    return await peer.until_event("join", id=peer.local_id, room=room)


async def who(peer: Peer, room: str) -> set[str]:
    await peer.send(json.dumps({"room": room, "text": "/who"}))
    answer = await peer.until_event("who", room=room)
    return {user["name"] for user in answer["users"]}


async def until_who(peer: Peer, room: str, names: set[str]) -> None:
    """Ask ``who`` in ``room`` until it lists ``names``: each node applies the others'
    events when it reads them, so a deadline, not a speed."""
    async with asyncio.timeout(TIMEOUT):
        while (found := await who(peer, room)) != names:
            await asyncio.sleep(0.05)
    assert found == names


async def test_chat_in_a_room_crosses_nodes_and_the_default_room_hears_nothing(node):  # noqa: F811
    one, two = node(), node()
    ann = await json_peer(one.port)
    bob = await json_peer(two.port)
    carl = await text_peer(two.port)  # an nc user who stays in main, on bob's node
    await ann.send("/nick ann")
    await ann.until_event("rename", new="ann")
    await bob.send("/nick bob")
    await bob.until_event("rename", new="bob")
    await carl.send("/nick carl")
    await carl.until_contains("is now carl")
    dev_join = await join_room(ann, "dev")
    await join_room(bob, "dev")
    seen = await ann.until_event("join", id=bob.local_id, room="dev")
    assert seen["seq"] == dev_join["seq"] + 1  # #dev counts its own events
    await ann.send("hello dev")  # ann's current room is dev: the plain line goes there
    message = await bob.until_event("message", text="hello dev")
    assert (message["room"], message["name"], message["seq"]) == ("dev", "ann", seen["seq"] + 1)
    # main goes on with its own seq; carl (main, on bob's node) never sees #dev's chat.
    await ann.send(json.dumps({"room": "main", "text": "hello main"}))
    in_main = await carl.until_contains("hello main")
    assert in_main == "<ann> hello main"
    main_message = await bob.until_event("message", text="hello main")
    assert main_message["room"] == "main" and main_message["seq"] < message["seq"] + 100
    await carl.send("/who")
    await carl.until_contains("Online users (3)")
    # who per room, on both nodes.
    await until_who(ann, "dev", {"ann", "bob"})
    await until_who(bob, "dev", {"ann", "bob"})
    await until_who(bob, "main", {"ann", "bob", "carl"})
    # Names stay unique across rooms and nodes: dana (only in #dev, node 1) holds hers.
    dana = await text_peer(one.port)
    await dana.send("/join dev")
    await dana.until_contains("now in #dev")
    await dana.send("/nick dana")
    await bob.until_event("rename", new="dana", room="dev")
    await carl.send("/nick Dana")
    assert "taken" in await carl.until_contains("Dana")
    # A quit leaves every room on the other node: bob sees ann leave #dev and main.
    await ann.send("/quit bye")
    leaves = {(await bob.until_event("leave", id=ann.local_id))["room"] for _ in range(2)}
    assert leaves == {"dev", "main"}
    await until_who(bob, "dev", {"bob", "dana"})
    await until_who(bob, "main", {"bob", "carl"})
    assert "hello dev" not in "".join([line async for line in lines_until_quiet(carl)])
    for peer in (bob, carl, dana):
        await peer.close()


async def lines_until_quiet(peer: Peer, quiet: float = 0.3):
    """What ``peer`` reads until it has heard nothing for ``quiet`` seconds."""
    while True:
        try:
            yield await peer.line(quiet)
        except TimeoutError:
            return


async def test_an_nc_user_moving_rooms_is_seen_on_the_other_node(node):  # noqa: F811
    one, two = node(), node()
    ann = await json_peer(one.port)
    await join_room(ann, "dev")
    carl = await text_peer(two.port)
    await carl.send("/join #dev")
    await carl.until_contains("*** now in #dev (2 users)")
    leave = await ann.until_event("leave", id=carl.local_id)
    assert (leave["room"], leave["reason"]) == ("main", "part")
    await ann.until_event("join", id=carl.local_id, room="dev")
    await ann.send(json.dumps({"room": "dev", "text": "welcome"}))
    assert await carl.until_contains("welcome") == f"<{ann.local_id}> welcome"
    await carl.send("/part")  # back to main: its name is still its own meanwhile
    await ann.until_event("join", id=carl.local_id, room="main")
    await until_who(ann, "dev", {ann.local_id})
    await until_who(ann, "main", {ann.local_id, carl.local_id})
    for peer in (ann, carl):
        await peer.close()


async def test_a_restarted_node_finds_the_other_node_s_users_in_their_rooms(node):  # noqa: F811
    one, two = node(), node()
    ann = await json_peer(one.port)
    await join_room(ann, "dev")
    await ann.send("/topic")  # not an operator: /topic alone only shows it
    await ann.send("before the restart")
    await ann.until_event("message", text="before the restart")
    bob = await json_peer(two.port)
    await until_who(bob, "main", {ann.local_id, bob.local_id})
    await bob.close()
    await ann.until_event("leave", id=bob.local_id, room="main")
    two.stop()
    three = node()  # a new node after the restart: it learns every room from Redis
    cleo = await json_peer(three.port)
    await cleo.send("/rooms")
    rooms = {entry["room"]: entry["users"] for entry in (await cleo.until_event("rooms"))["rooms"]}
    assert rooms == {"main": 2, "dev": 1}
    await cleo.send("/join dev")
    await cleo.until_event("room", room="dev")
    history = await cleo.until_event("message", room="dev")
    assert (history["text"], history.get("history")) == ("before the restart", True)
    await until_who(cleo, "dev", {ann.local_id, cleo.local_id})
    await until_who(ann, "dev", {ann.local_id, cleo.local_id})
    for peer in (ann, cleo):
        await peer.close()


async def test_a_killed_node_s_users_leave_every_room(node):  # noqa: F811
    short = ("--heartbeat-ttl", "1")
    one, two = node(*short), node(*short)
    ann = await json_peer(one.port)
    await join_room(ann, "dev")
    bob = await json_peer(two.port)
    await join_room(bob, "dev")
    await ann.until_event("join", id=bob.local_id, room="dev")
    two.proc.kill()  # kill -9: the reaper of a surviving node removes bob from both rooms
    leaves = {}
    for _ in range(2):
        leave = await ann.until_event("leave", id=bob.local_id, timeout=15)
        leaves[leave["room"]] = leave["reason"]
    assert leaves == {"main": "error", "dev": "error"}
    await until_who(ann, "dev", {ann.local_id})
    await ann.close()
    await bob.close()


start_node = stream_node  # a fixture: nodes that log to a file
ops_node = moderation_node  # a fixture: nodes with an operator, boss


async def test_a_bad_entry_in_a_room_s_stream_is_skipped(start_node, redis_url):
    one, two = start_node(), start_node()
    ann = await json_peer(one.port)
    await join_room(ann, "dev")
    bob = await json_peer(two.port)
    await join_room(bob, "dev")
    await ann.until_event("join", id=bob.local_id, room="dev")
    raw = aioredis.from_url(redis_url, decode_responses=True)
    made_up = json.dumps({"type": "message", "ts": 1, "id": "a", "name": "a", "text": "x"})
    try:
        stream = "chatroom:{main}:room:dev:events"
        ids = {
            await raw.xadd(stream, {"e": "7 nowhere not json"}): "not JSON",
            await raw.xadd(stream, {"junk": "1"}): "no event in it",
            await raw.xadd(stream, {"e": f"1000000 x {made_up}"}): "beyond the counter",
        }
        # A buggy writer's event of main in #dev's stream, under #dev's next seq: not #dev's.
        seq = await raw.incr("chatroom:{main}:room:dev:seq")
        other = f'{seq} x {made_up[:-1]}, "room": "main"}}'
        ids[await raw.xadd(stream, {"e": other})] = "another room's"
    finally:
        await raw.aclose()
    await ann.send("still here")
    message = await bob.until_event("message", room="dev")
    assert message["text"] == "still here"
    await ann.send(json.dumps({"room": "main", "text": "main too"}))
    assert (await bob.until_event("message", room="main"))["text"] == "main too"
    for found in (one, two):
        logged_once(found, ids)
    for peer in (ann, bob):
        await peer.close()


async def test_an_operator_kicks_a_user_of_another_node_out_of_a_room_alone(ops_node):
    one, two = ops_node(), ops_node()
    boss = await named(await operator(one.port), "boss")  # an nc operator on node 1
    await boss.send("/join dev")
    await boss.until_contains("now in #dev")
    bob = await json_peer(two.port)
    await bob.send("/nick bob")
    await bob.until_event("rename", new="bob")
    await join_room(bob, "dev")
    await boss.until_contains("bob joined")
    await boss.send("/topic ship it")  # an operator's topic of #dev, shared with node 2
    topic = await bob.until_event("topic", room="dev")
    assert topic["text"] == "ship it"
    await boss.send("/kick bob spam")
    told = await bob.until_event("notice", text="you were kicked out of #dev by boss: spam")
    assert told["code"] == "info"
    leave = await bob.until_event("leave", id=bob.local_id)
    assert (leave["room"], leave["reason"], leave["by"]) == ("dev", "kicked", "boss")
    assert "bob was kicked by boss (spam)" in await boss.until_contains("bob was kicked")
    # bob is still on the server, in main, under its name.
    await bob.send(json.dumps({"room": "main", "text": "still here"}))
    assert (await bob.until_event("message", text="still here"))["room"] == "main"
    await until_who(bob, "main", {"bob"})  # boss moved to #dev (an nc user is in one room)
    await boss.send("/kick bob")  # bob is not in #dev any more: said at once
    assert "bob is not in #dev" in await boss.until_contains("not in #dev")
    for peer in (boss, bob):
        await peer.close()


async def test_the_ledger_counts_rooms_server_wide_and_drops_a_room_nobody_is_in(redis_url):
    """The append script, on two nodes' ledgers: --max-rooms counts the rooms in use on
    every node; a room nobody is in leaves the rooms in use (its keys expire after
    room_linger) and the rooms log says so; a part keeps the name, a quit frees it."""
    config = ServerConfig(redis=redis_url, room="main", max_rooms=2, room_linger=30.0)
    a = RedisLedger.from_config(config, "a")
    b = RedisLedger.from_config(config, "b")
    raw = aioredis.from_url(redis_url, decode_responses=True)
    try:
        for ledger in (a, b):
            await ledger.connect()
            await ledger.register_node()
        ann = UserRecord.of("1.1.1.1:1", "ann", "a")
        bob = UserRecord.of("2.2.2.2:2", "bob", "b")

        def joining(user: UserRecord, room: str) -> tuple:
            return (p.Join(seq=0, ts=1.0, id=user.id, name=user.name, room=room), user, None)

        def leaving(user: UserRecord, room: str, reason: p.LeaveReason) -> tuple:
            leave = p.Leave(seq=0, ts=2.0, id=user.id, name=user.name, reason=reason, room=room)
            return (leave, user.id, None)

        assert await a.append_many([joining(ann, "main"), joining(ann, "dev")]) == [1, 1]
        assert await b.append_many([joining(bob, "main")]) == [2]
        assert await b.append_many([joining(bob, "ops")]) == [Refusal.ROOM_LIMIT]
        assert await b.append_many([joining(bob, "dev")]) == [2]  # a room in use: fine
        assert await raw.hgetall("chatroom:{main}:rooms") == {"main": "2", "dev": "2"}
        part = p.LeaveReason.PART
        assert await a.append_many([leaving(ann, "dev", part)]) == [3]
        assert await b.append_many([leaving(bob, "dev", part)]) == [4]
        assert await raw.hgetall("chatroom:{main}:rooms") == {"main": "2"}
        assert 0 < await raw.ttl("chatroom:{main}:room:dev:events") <= 30
        log = [fields["r"] for _, fields in await raw.xrange("chatroom:{main}:rooms:log")]
        assert "+dev 0-0 0" in log and log[-1].startswith("-dev ")
        assert await b.append_many([joining(bob, "ops")]) == [1]  # room for it now
        assert await raw.ttl("chatroom:{main}:room:ops:events") == -1
        # ann parted #dev, still holds its name; its quit (in main) frees it.
        assert await raw.hget("chatroom:{main}:names", "ann") == ann.id
        assert await a.append_many([leaving(ann, "main", p.LeaveReason.QUIT)]) == [3]
        assert await raw.hget("chatroom:{main}:names", "ann") is None
        # Between the part and the join of an nc user's move it is in no room: its name is
        # still held; a quit then frees it.
        carl = UserRecord.of("3.3.3.3:3", "carl", "a")
        assert await a.append_many([joining(carl, "main"), leaving(carl, "main", part)]) == [4, 5]
        assert await raw.hget("chatroom:{main}:names", "carl") == carl.id
        assert await a.append_many([leaving(carl, "main", p.LeaveReason.QUIT)]) == [6]
        assert await raw.hget("chatroom:{main}:names", "carl") is None
        snapshot = await b.snapshot()
        assert {u.id: u.rooms for u in snapshot.users.values()} == {bob.id: ("main", "ops")}
        assert set(snapshot.rooms) == {"ops"}
    finally:
        await raw.aclose()
        for ledger in (a, b):
            await ledger.close()


async def test_workers_share_rooms_as_nodes_do(redis_url):
    """--workers 2: the kernel spreads six users over the two workers; those in #dev hear
    each other, whichever worker holds them, and the others hear nothing of it."""
    proc = processes.spawn(
        [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--workers", "2",
         "--redis", redis_url, *NODE_FLAGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = await asyncio.to_thread(proc.stdout.readline)
        assert "(2 workers)" in banner, banner + proc.stderr.read()
        port = int(banner.split("listening on 127.0.0.1:")[1].split()[0])
        peers = [await json_peer(port) for _ in range(6)]
        dev, main = peers[:3], peers[3:]
        for peer in dev:
            await join_room(peer, "dev")
        await until_who(main[0], "main", {peer.local_id for peer in peers})
        await until_who(dev[0], "dev", {peer.local_id for peer in dev})
        await dev[-1].send("in dev")
        for peer in dev:
            assert (await peer.until_event("message"))["room"] == "dev"
        await main[-1].send(json.dumps({"room": "main", "text": "in main"}))
        for peer in main:
            assert (await peer.until_event("message"))["text"] == "in main"  # not "in dev"
        for peer in peers:
            await peer.close()
    finally:
        processes.stop(proc)  # the supervisor's process group: its workers too
