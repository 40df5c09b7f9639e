"""One room across real server processes through a real redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess

import pytest

from chatroom import protocol as p
from chatroom.server.core.actions import Append
from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import SERVER_SCRIPT, ServerProcess

NODE_FLAGS = ("--rate", "0", "--idle-timeout", "0", "--log-level", "warning")


@pytest.fixture
def node(redis_url):
    started: list[ServerProcess] = []

    def start(*flags: str) -> ServerProcess:
        process = ServerProcess("--port", "0", "--redis", redis_url, *NODE_FLAGS, *flags)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


async def joined(port: int) -> Peer:
    """A JSON-mode user that has seen its own join (so it is in everyone's room)."""
    peer = await Peer.connect(port)
    await peer.until_contains(f"*** {peer.local_id} joined")
    await peer.to_json()
    return peer


async def test_users_on_two_nodes_see_each_other_in_one_order(node):
    one, two = node(), node()
    ann, bob = await joined(one.port), await joined(two.port)
    await ann.until_event("join", id=bob.local_id)
    await asyncio.gather(
        ann.send(b"".join(b"ann %d\n" % n for n in range(20))),
        bob.send(b"".join(b"bob %d\n" % n for n in range(20))),
    )
    orders = []
    for peer in (ann, bob):
        events = [await peer.until_event("message") for _ in range(40)]
        orders.append([(e["seq"], e["text"]) for e in events])
    assert orders[0] == orders[1]
    seqs = [seq for seq, _ in orders[0]]
    assert seqs == list(range(seqs[0], seqs[0] + 40))
    for peer in (ann, bob):
        await peer.close()


async def test_who_names_and_private_messages_span_nodes(node):
    one, two = node(), node()
    ann, bob = await joined(one.port), await joined(two.port)
    await bob.send("/nick bob")
    await ann.until_event("rename", new="bob")
    await ann.send("/who")
    who = await ann.until_event("who")
    assert {(u["id"], u["name"]) for u in who["users"]} == {
        (ann.local_id, ann.local_id),
        (bob.local_id, "bob"),
    }
    await ann.send("/nick BOB")
    assert (await ann.until_event("error"))["code"] == "name_taken"
    await ann.send("/msg Bob across")
    private = await bob.until_event("private")
    assert (private["from"], private["to"], private["text"]) == (ann.local_id, "bob", "across")
    for peer in (ann, bob):
        await peer.close()


async def test_a_rename_race_across_nodes_has_one_winner(node):
    one, two = node(), node()
    ann, bob = await joined(one.port), await joined(two.port)
    await ann.until_event("join", id=bob.local_id)
    await asyncio.gather(ann.send("/nick Duke"), bob.send("/nick duke"))
    outcomes = {}
    for peer in (ann, bob):
        async with asyncio.timeout(5):
            while peer.local_id not in outcomes:
                event = await peer.event()
                if event["type"] == "error":
                    outcomes[peer.local_id] = "taken"
                elif event["type"] == "rename" and event["id"] == peer.local_id:
                    outcomes[peer.local_id] = "won"
    assert sorted(outcomes.values()) == ["taken", "won"]
    for peer in (ann, bob):
        await peer.close()


async def test_a_killed_node_s_users_leave_everyone_s_room(node):
    short = ("--heartbeat-ttl", "1")  # taken for dead a second after its last heartbeat
    one, two = node(*short), node(*short)
    ann = await joined(one.port)
    bob = await joined(two.port)
    await ann.until_event("join", id=bob.local_id)
    two.proc.kill()  # kill -9: no goodbye, its heartbeat just stops
    await asyncio.sleep(0.2)  # the kernel has closed its sockets, Redis its subscription
    await ann.send(f"/msg {bob.local_id} are you there?")
    error = await ann.until_event("error")
    assert error["code"] == "unavailable" and "may not have been delivered" in error["message"]
    # Within the heartbeat TTL plus a reaper round: a deadline, not a speed.
    leave = await ann.until_event("leave", timeout=15)
    assert (leave["id"], leave["reason"]) == (bob.local_id, "error")
    await ann.send("/who")
    who = await ann.until_event("who")
    assert [u["id"] for u in who["users"]] == [ann.local_id]
    await ann.close()
    await bob.close()


async def test_a_graceful_stop_announces_its_users_leaving(node):
    one, two = node(), node()
    ann, bob = await joined(one.port), await joined(two.port)
    await ann.until_event("join", id=bob.local_id)
    two.proc.send_signal(signal.SIGTERM)
    leave = await ann.until_event("leave")
    assert (leave["id"], leave["reason"]) == (bob.local_id, "shutdown")
    assert await asyncio.to_thread(two.proc.wait, 5) == 0
    await ann.close()
    await bob.close()


async def test_history_survives_every_node_restarting(node):
    first = node()
    ann = await joined(first.port)
    await ann.send("remember me")
    await ann.until_event("message")
    first.stop()
    await ann.close()
    second = node()
    bob = await Peer.connect(second.port)
    await bob.to_json()
    history = await bob.event()
    assert (history["text"], history.get("history")) == ("remember me", True)
    await bob.close()


async def test_losing_redis_is_told_and_nothing_is_dropped_silently(node, redis_server):
    one = node()
    ann = await joined(one.port)
    redis_server.kill()
    notice = await ann.until_event("notice", timeout=10)
    assert "unreachable" in notice["text"]
    await ann.send("lost in transit?")
    error = await ann.until_event("error", timeout=10)
    assert error["code"] == "unavailable"
    redis_server.start()  # empty: the room is rebuilt from the nodes
    back = await ann.until_event("notice", code="info", timeout=15)  # after the reset
    assert "back" in back["text"]
    rejoin = await ann.until_event("join", id=ann.local_id)
    await ann.send("found again")
    message = await ann.until_event("message")
    assert message["text"] == "found again" and message["seq"] > rejoin["seq"]
    await ann.close()


async def test_a_redis_that_starts_over_is_a_new_epoch_and_users_are_told(node, redis_server):
    one = node()
    ann = await Peer.connect(one.port)
    await ann.until_contains(f"*** {ann.local_id} joined")
    epoch = (await ann.to_json())["epoch"]
    assert epoch
    for n in range(5):
        await ann.send(f"line {n}")
        await ann.until_event("message", text=f"line {n}")
    redis_server.kill()
    await ann.until_event("notice", timeout=10)
    redis_server.start()  # empty: seq starts again from 1
    reset = await ann.until_event("notice", code="reset", timeout=15)
    assert reset["epoch"] not in (None, epoch)
    assert "history was reset" in reset["text"]
    await ann.until_event("notice", timeout=5)  # back
    await ann.send("in the new epoch")
    assert (await ann.until_event("message"))["seq"] < 5
    bob = await Peer.connect(one.port)
    assert (await bob.to_json())["epoch"] == reset["epoch"]
    for peer in (ann, bob):
        await peer.close()


def test_unreachable_redis_is_one_clear_line():
    result = subprocess.run(
        [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--redis",
         "redis://127.0.0.1:1/0"],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("chatroom-server: cannot reach Redis at redis://127.0.0.1:1/0")
    assert result.stderr.count("\n") == 1


def test_workers_need_redis():
    result = subprocess.run(
        [str(SERVER_SCRIPT), "--workers", "2"], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 2
    assert "--workers needs --redis" in result.stderr and result.stderr.count("\n") == 1


async def test_two_workers_share_one_port_and_one_room(redis_url):
    proc = processes.spawn(
        [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--workers", "2",
         "--redis", redis_url, *NODE_FLAGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = await asyncio.to_thread(proc.stdout.readline)
        assert "(2 workers)" in banner, banner + proc.stderr.read()
        port = int(banner.split("listening on 127.0.0.1:")[1].split()[0])
        peers = [await joined(port) for _ in range(6)]
        await peers[0].send("/who")
        who = await peers[0].until_event("who")
        assert {u["id"] for u in who["users"]} == {peer.local_id for peer in peers}
        await peers[-1].send("to everyone")
        for peer in peers:
            assert (await peer.until_event("message"))["text"] == "to everyone"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 8) == 0
        for peer in peers:
            await peer.close()
    finally:
        processes.stop(proc)  # the supervisor's process group: its workers too


async def test_a_node_back_from_an_outage_applies_what_it_missed(redis_url):
    from chatroom.server.cluster.link import ClusterLink
    from chatroom.server.cluster.redis_ledger import RedisLedger, UserRecord
    from chatroom.server.config import RoomRules, ServerConfig
    from chatroom.server.core.inputs import Sequenced
    from chatroom.server.core.room import Room

    class RecordingRoom(Room):
        applied: list[int] = []

        def handle(self, event, now):
            if isinstance(event, Sequenced):
                self.applied.append(event.event.seq)
            return super().handle(event, now)

    config = ServerConfig(idle_timeout=0, history=10, redis=redis_url)
    room = RecordingRoom.shared(RoomRules.from_config(config), "a")
    link = ClusterLink(room, config, lambda event: room.handle(event, 0.0))
    other = RedisLedger(redis_url, "main", "b")
    await link.ledger.connect()
    await other.connect()
    await link._sync()  # in sync, then cut off: its reader is not running
    bob = UserRecord.of("10.0.0.2:1", "bob", "b")
    await other.append_many([(p.Join(seq=0, ts=1.0, id=bob.id, name=bob.name), bob, None)])
    for n in range(3):
        line = p.Message(seq=0, ts=2.0, id=bob.id, name="bob", text=f"m{n}")
        await other.append_many([(line, bob, None)])
    await link._sync()  # back: what it missed is applied in order before the snapshot
    assert room.applied == [1, 2, 3, 4]  # the join and three messages, none skipped
    assert room.seq == 4 and [u.name for u in room.who(3.0).users] == ["bob"]
    await link.ledger.close()
    await other.close()


async def twin_peers(ports: list[int]) -> list[Peer]:
    """One peer per port, all from one local address and port (as behind a balancer that
    reuses its source port towards different backends), connected at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        local = probe.getsockname()

    async def connect(port: int) -> Peer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(local)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=2**20)
        return Peer(reader, writer)

    return list(await asyncio.gather(*(connect(port) for port in ports)))


async def test_one_address_on_two_nodes_gets_two_ids_and_two_users(node):
    one, two = node(), node()
    ann, twin = await twin_peers([one.port, two.port])
    assert ann.local_id == twin.local_id
    ids = [(await ann.to_json())["id"], (await twin.to_json())["id"]]
    assert ids[0] != ids[1] and all(i.startswith(ann.local_id) for i in ids)
    # The twin's join (under its tagged id) reaches ann's node through the stream: ask
    # until it has (a deadline, not a speed), then the list must be exactly the two.
    async with asyncio.timeout(TIMEOUT):
        while True:
            await ann.send("/who")
            who = await ann.until_event("who")
            if len(who["users"]) == 2:
                break
            await asyncio.sleep(0.05)
    assert sorted(u["id"] for u in who["users"]) == sorted(ids)
    await twin.send("/quit")
    await ann.until_event("leave", id=ids[1])
    await ann.send("still here")
    assert (await ann.until_event("message"))["id"] == ids[0]
    for peer in (ann, twin):
        await peer.close()


def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(child) for child in f.read().split()}


async def test_a_killed_worker_is_logged_and_restarted_and_the_others_users_stay(redis_url):
    proc = processes.spawn(
        [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--workers", "2",
         "--redis", redis_url, "--heartbeat-ttl", "1", *NODE_FLAGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = await asyncio.to_thread(proc.stdout.readline)
        port = int(banner.split("listening on 127.0.0.1:")[1].split()[0])
        # Enough users that both workers have some (the kernel spreads them by hash).
        peers = [await joined(port) for _ in range(12)]
        workers = children(proc.pid)
        assert len(workers) == 2
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        survivors, dropped = [], []
        for peer in peers:
            try:
                await peer.until_event("leave", timeout=10)  # a leave of a dead worker's user
                survivors.append(peer)
            except EOFError:
                dropped.append(peer)
        assert survivors and dropped
        await survivors[0].send("still here")
        for peer in survivors:
            assert (await peer.until_event("message"))["text"] == "still here"
        async with asyncio.timeout(10):  # a worker takes the dead one's place
            while len(now := children(proc.pid)) < 2 or victim in now:
                await asyncio.sleep(0.05)
        assert proc.poll() is None
        late = [await joined(port) for _ in range(6)]
        await late[0].send("after the restart")
        for peer in [*survivors, *late]:  # the newcomers had "still here" as history
            await peer.until_event("message", text="after the restart")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 8) == 0
        stderr = proc.stderr.read()
        assert f"(pid {victim}) died" in stderr and "killed by SIGKILL" in stderr, stderr
        assert "restarted" in stderr
        for peer in [*peers, *late]:
            await peer.close()
    finally:
        processes.stop(proc)  # the supervisor's process group: its workers too


async def test_a_redis_restart_is_one_notice_pair_and_no_error_line(node, redis_server):
    one = node("--log-level", "info")
    ann = await joined(one.port)
    redis_server.kill()
    redis_server.start()  # empty, at once: the node finds out from its blocked XREAD
    notices = [await ann.until_event("notice", timeout=10)]
    assert "unreachable" in notices[0]["text"]
    notices.append(await ann.until_event("notice", code="info", timeout=10))  # after the reset
    assert "back" in notices[1]["text"]
    # Chat on for a while (stale connections used to fail a second time within ~1.5 s).
    errors = []
    for n in range(30):
        await ann.send(f"line {n}")
        await asyncio.sleep(0.1)
    async with asyncio.timeout(10):
        while True:
            event = await ann.event()
            if event["type"] in ("notice", "error"):
                (notices if event["type"] == "notice" else errors).append(event)
            if event["type"] == "message" and event["text"] == "line 29":
                break
    assert errors == [] and [n["text"] for n in notices[2:]] == []
    one.stop()
    log = one.proc.stderr.read()
    assert log.count("lost Redis") == 1 and log.count("Redis is back") == 1, log
    assert " ERROR " not in log, log
    await ann.close()


async def test_a_newcomer_while_redis_is_down_has_its_lines_refused(node, redis_server):
    one = node()
    redis_server.kill()
    cat = await Peer.connect(one.port)
    await cat.until_contains("you will join when it is back", timeout=10)
    await cat.send("hello?")
    assert "not sent" in await cat.until_contains("error:", timeout=10)
    await cat.send("/format json")
    redis_server.start()
    await cat.until_contains('{"type":"welcome"', timeout=15)  # after its text welcome
    await cat.send("now")
    assert (await cat.until_event("message"))["text"] == "now"  # and "hello?" never was
    await cat.close()


async def test_the_append_queue_is_bounded(redis_url):
    from chatroom.server.cluster.link import ClusterLink
    from chatroom.server.config import RoomRules, ServerConfig
    from chatroom.server.core.inputs import AppendRefused
    from chatroom.server.core.refusal import Refusal
    from chatroom.server.core.room import Room

    refusals = []

    class RecordingRoom(Room):
        def handle(self, event, now):
            if isinstance(event, AppendRefused):
                refusals.append((event.event.text, event.reason))
                return []
            return super().handle(event, now)

    config = ServerConfig(idle_timeout=0, redis=redis_url, append_queue=3)
    room = RecordingRoom.shared(RoomRules.from_config(config), "a")
    link = ClusterLink(room, config, lambda event: room.handle(event, 0.0))
    await link.start()
    # Lines arrive faster than they can be sent (here: all before the sender runs at all).
    for n in range(10):
        message = p.Message(seq=0, ts=1.0, id="1.1.1.1:1", name="x", text=str(n))
        link.carry(Append(message, None))
    assert len(link._appends) == 3
    async with asyncio.timeout(5):
        while len(refusals) < 10:  # the 3 queued are refused by Redis: nobody joined
            await asyncio.sleep(0.01)
    assert refusals[:7] == [(str(n), Refusal.UNAVAILABLE) for n in range(3, 10)]
    assert refusals[7:] == [(str(n), Refusal.GONE) for n in range(3)]
    await link.stop()


async def test_own_events_come_back_from_the_stream_as_they_were_sent(redis_url):
    """The reader takes this node's own events from what it sent (not decoding its JSON
    again) when the append's answer came first: the room sees the same events, in the
    stream's order with its seqs, as another node decoding them; nothing is kept after."""
    from chatroom.server.cluster.link import ClusterLink, event_of
    from chatroom.server.config import RoomRules, ServerConfig
    from chatroom.server.core.inputs import Sequenced
    from chatroom.server.core.room import Room

    seen: list[tuple[p.BroadcastEvent, str]] = []

    class RecordingRoom(Room):
        def handle(self, event, now):
            if isinstance(event, Sequenced):
                seen.append((event.event, event.node))
            return super().handle(event, now)

    config = ServerConfig(idle_timeout=0, redis=redis_url)
    room = RecordingRoom.shared(RoomRules.from_config(config), "a")
    link = ClusterLink(room, config, lambda event: room.handle(event, 0.0))
    await link.start()
    sent = [
        p.Join(seq=0, ts=1.0, id="1.1.1.1:1", name="ann"),
        *(p.Message(seq=0, ts=2.0 + n / 8, id="1.1.1.1:1", name="ann", text=f"m{n}")
          for n in range(50)),
        p.Leave(seq=0, ts=9.0, id="1.1.1.1:1", name="ann", reason=p.LeaveReason.QUIT, room="main"),
    ]  # fmt: skip
    for event in sent:
        link.carry(Append(event, None))
    async with asyncio.timeout(5):
        while len(seen) < len(sent):
            await asyncio.sleep(0.01)
    stream = await link.ledger.read("0-0", block_ms=0)
    assert seen == [(event_of(entry), "a") for entry in stream]
    assert [event for event, _ in seen] == [
        p.replace(event, seq=n) for n, event in enumerate(sent, start=1)
    ]
    assert link.follower.sent == {}
    await link.stop()


async def test_password_and_hidden_addresses_on_two_nodes(node, tmp_path):
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    flags = ("--password-file", str(secret), "--hide-addresses")
    one, two = node(*flags), node(*flags)
    peers = []
    for server in (one, two):
        peer = await Peer.connect(server.port)
        assert "needs a password" in await peer.line()
        await peer.send("/pass nope")
        assert "wrong password" in await peer.line()
        await peer.send("/pass correct horse")
        await peer.until_contains("Welcome")
        await peer.to_json()
        peers.append(peer)
    ann, bob = peers
    await ann.send("/who")
    who = await ann.until_event("who", timeout=10)
    while len(who["users"]) < 2:  # bob's join may still be on its way through Redis
        await ann.send("/who")
        who = await ann.until_event("who")
    assert all(u["name"].startswith("guest-") for u in who["users"])
    assert not any("127.0.0.1" in u["id"] or "127.0.0.1" in u["name"] for u in who["users"])
    await bob.send("hello from two")
    message = await ann.until_event("message", text="hello from two")
    assert message["name"].startswith("guest-") and "127.0.0.1" not in message["id"]
    for peer in peers:
        await peer.close()


def test_a_stream_entry_decodes_to_the_event_the_forgiving_decoder_gives():
    """The reader decodes each entry's JSON once, strictly, with its seq; what the strict
    decoder will not take goes the forgiving way (from_wire_dict), as before."""
    from chatroom.server.cluster.link import event_of
    from chatroom.server.cluster.redis_ledger import Entry, stream_body

    events = [
        p.Message(seq=7, ts=1.5, id="a:1", name="Zoë", text='"hi" \\ / \x7f ünï'),
        p.Action(seq=7, ts=2.0, id="a:1", name="ann", text="waves"),
        p.Join(seq=7, ts=1e9, id="a:1", name="ann"),
        p.Leave(seq=7, ts=3.25, id="a:1", name="ann", reason=p.LeaveReason.QUIT),
        p.Rename(seq=7, ts=4.0, id="a:1", old="ann", new="bob"),
    ]
    for event in events:
        entry = Entry("1-0", 7, stream_body(p.replace(event, seq=0)), "n")
        wire_without_seq = {k: v for k, v in p.to_wire_dict(event).items() if k != "seq"}
        assert entry.text == p.compact_json(wire_without_seq)  # what older nodes wrote
        assert event_of(entry) == event
        data = {**entry.body, "seq": 7}
        assert event_of(entry) == p.from_wire_dict(data)
    # A leave reason this version does not know, and an integer ts: as from_wire_dict has it.
    odd = '{"type":"leave","ts":3,"id":"a:1","name":"ann","reason":"later","extra":1}'
    entry = Entry("1-0", 8, odd, "n")
    assert event_of(entry) == p.from_wire_dict({**entry.body, "seq": 8})
    with pytest.raises(p.ProtocolError):
        event_of(Entry("1-0", 9, '{"type":"welcome","id":"x","name":"x"}', "n"))


async def test_an_ignored_users_private_message_from_another_node_never_arrives(node):
    """/ignore holds across nodes for /msg too: the recipient's node drops it (the sender's
    node cannot know whom the recipient ignores)."""
    one, two = node(), node()
    ann, bob, cat = await joined(one.port), await joined(two.port), await joined(two.port)
    await ann.until_event("join", id=cat.local_id)
    await bob.send(f"/ignore {ann.local_id}")
    await bob.until_event("notice", code="info")
    await ann.send(f"/msg {bob.local_id} psst")
    assert (await ann.until_event("private"))["text"] == "psst"  # the sender's copy
    # Sent after it, to the same node: once cat has hers, bob's node had its turn.
    await ann.send(f"/msg {cat.local_id} marker")
    assert (await cat.until_event("private"))["text"] == "marker"
    await bob.send(f"/unignore {ann.local_id}")
    while (event := await bob.event())["type"] != "notice":
        assert event["type"] != "private", event
    await ann.send(f"/msg {bob.local_id} now")
    assert (await bob.until_event("private"))["text"] == "now"
    for peer in (ann, bob, cat):
        await peer.close()
