"""A shared room's stream with bad entries in it (an old or buggy writer, a hand-typed XADD):
real server processes on a real redis-server. Every node logs each bad entry once, with its
stream id, skips it, and goes on: chat both ways, newcomers greeted, a node started while
the entries are there starts."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests import processes
from tests.conftest import TIMEOUT, Peer
from tests.test_cluster import NODE_FLAGS, joined
from tests.test_server_process import SERVER_SCRIPT

STREAM = "chatroom:{main}:events"
COUNTER = "chatroom:{main}:seq"


class Node:
    """A server process whose log goes to a file (read by the test: nothing fills a pipe)."""

    def __init__(self, redis_url: str, log: Path, *flags: str) -> None:
        self.log = log
        command = [str(SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--redis"]
        command += [redis_url, *NODE_FLAGS, *flags]
        with open(log, "w") as err:
            self.proc = processes.spawn(command, stdout=subprocess.PIPE, stderr=err, text=True)
        banner = self.proc.stdout.readline()
        match = re.search(r"listening on 127\.0\.0\.1:(\d+)", banner)
        assert match, f"the node did not start: {banner!r} {log.read_text()!r}"
        self.port = int(match.group(1))

    def text(self) -> str:
        return self.log.read_text()


@pytest.fixture
def start_node(redis_url, tmp_path):
    started: list[Node] = []

    def start(*flags: str) -> Node:
        node = Node(redis_url, tmp_path / f"node{len(started)}.log", *flags)
        started.append(node)
        return node

    yield start
    for node in started:
        processes.stop(node.proc)


def message(text: str, who: str = "192.0.2.9:1") -> str:
    return json.dumps({"type": "message", "ts": 1.0, "id": who, "name": "old", "text": text})


def bad_entries(db: redis.Redis) -> dict[str, dict[str, str]]:
    """XADD each bad shape; their stream ids, with what was added. A shape whose seq is not
    what is wrong with it takes its seq from the room's counter, as a writer must."""

    def seq() -> int:
        return db.incr(COUNTER)

    good = message("a forged line")
    deep = "[" * 6000 + "]" * 6000  # deeper than json.loads goes, within the size bound
    shapes = {
        "not json": {"e": f"{seq()} other:1 this is not json"},
        "no spaces at all": {"e": "garbage"},
        "non-numeric seq": {"e": f"x12 other:1 {good}"},
        "missing seq (old format)": {"body": good, "node": "other:1"},
        "non-numeric seq (old format)": {"seq": "twelve", "body": good, "node": "other:1"},
        "empty field": {"e": ""},
        "unknown fields": {"hello": "world", "x": "y"},
        "deep nesting in a field": {
            "e": f"{seq()} other:1 "
            + '{"type":"message","ts":1,"id":"a","name":"a","text":'
            + deep
            + "}"
        },
        "deep nesting": {"e": f"{seq()} other:1 {deep}"},
        "a JSON list": {"e": f"{seq()} other:1 [1, 2, 3]"},
        "not a broadcast event": {"e": f'{seq()} other:1 {{"type":"welcome"}}'},
        "a message without its fields": {"e": f'{seq()} other:1 {{"type":"message"}}'},
        "wrong node field": {"e": f"{seq()} {{bad}} {good}"},
        "empty node (old format)": {"seq": str(seq()), "body": good, "node": ""},
        "a seq already used": {"e": f"1 other:1 {good}"},
        "a seq beyond the counter": {"e": f"{10**15} other:1 {good}"},
        "a huge line": {"e": f"{seq()} other:1 " + message("x" * 2_000_000)},
        "not UTF-8": {"e": b"\xff\xfe 1 \xc3"},
    }
    added = {}
    for name, fields in shapes.items():
        added[db.xadd(STREAM, fields)] = name
    # An old writer's entry of three lines, the middle one bad: the two good ones (seqs
    # taken from the counter, as a writer must) still reach everyone.
    first = db.incrby(COUNTER, 3) - 2
    lines = [
        f"{first} other:1 {message('good one')}",
        f"{first + 1} other:1 {{not json",
        f"{first + 2} other:1 {message('good three')}",
    ]
    added[db.xadd(STREAM, {"e": "\n".join(lines)})] = "a multi-event entry with one bad line"
    return added


def logged_once(node: Node, ids: dict[str, str]) -> None:
    """Each bad entry's stream id is in the node's log on one line, once."""
    deadline = time.monotonic() + 2 * TIMEOUT
    while True:
        text = node.text()
        counts = {sid: len(re.findall(rf"\b{re.escape(sid)}\b", text)) for sid in ids}
        if all(n >= 1 for n in counts.values()):
            break
        missing = [ids[sid] for sid, n in counts.items() if n == 0]
        assert time.monotonic() < deadline, f"not logged: {missing}\n{text[-3000:]}"
        time.sleep(0.05)
    assert all(n == 1 for n in counts.values()), counts
    assert "Traceback" not in text, text[-3000:]
    assert len(text) < 50_000, "the log repeats the entries' contents"


async def test_bad_stream_entries_are_skipped_logged_once_and_the_room_goes_on(
    start_node, redis_url
):
    one, two = start_node(), start_node()
    ann, bob = await joined(one.port), await joined(two.port)
    await ann.until_event("join", id=bob.local_id)
    await ann.send("before")
    for peer in (ann, bob):
        await peer.until_event("message", text="before")

    db = redis.Redis.from_url(redis_url, decode_responses=True)
    ids = await asyncio.to_thread(bad_entries, db)

    # The good lines of the multi-event entry, then chat both ways.
    for peer in (ann, bob):
        assert (await peer.until_event("message"))["text"] == "good one"
        assert (await peer.until_event("message"))["text"] == "good three"
    await ann.send("after, from ann")
    assert (await bob.until_event("message"))["text"] == "after, from ann"
    await bob.send("after, from bob")
    await ann.until_event("message", text="after, from ann")  # her own, first
    assert (await ann.until_event("message"))["text"] == "after, from bob"
    # A newcomer is greeted and joins.
    carol = await Peer.connect(two.port)
    await carol.until_contains(f"*** {carol.local_id} joined")
    await ann.until_event("join", id=carol.local_id)

    # A node started while the entries are in the stream starts, replays history, works.
    three = start_node()
    dave = await Peer.connect(three.port)
    await dave.until_contains("after, from bob")
    await dave.until_contains(f"*** {dave.local_id} joined")
    await dave.send("from the new node")
    await ann.until_event("message", text="from the new node")
    await ann.send("to the new node")
    await dave.until_contains("to the new node")

    for node in (one, two, three):  # the third read them in its history, at start
        logged_once(node, ids)
    for peer in (ann, bob, carol, dave):
        await peer.close()
    db.close()


async def test_a_node_starts_with_bad_entries_last_in_the_stream(
    start_node, redis_url, redis_server
):
    one = start_node()
    ann = await joined(one.port)
    await ann.send("kept")
    await ann.until_event("message", text="kept")
    db = redis.Redis.from_url(redis_url, decode_responses=True)
    ids = await asyncio.to_thread(bad_entries, db)
    await ann.close()
    processes.stop(one.proc)

    two = start_node()  # its history read meets every bad entry
    bob = await Peer.connect(two.port)
    for text in ("kept", "good one", "good three"):
        await bob.until_contains(text)
    await bob.until_contains(f"*** {bob.local_id} joined")
    await bob.send("still works")
    await bob.until_contains("still works")
    logged_once(two, ids)
    # Redis hangs, then comes back: the re-sync reads the history again, and logs nothing.
    redis_server.pause()
    await bob.until_contains("unreachable", timeout=4 * TIMEOUT)
    redis_server.resume()
    await bob.until_contains("the room is back", timeout=4 * TIMEOUT)
    await bob.send("after the re-sync")
    await bob.until_contains("after the re-sync")
    logged_once(two, ids)
    await bob.close()
    db.close()


async def test_a_flood_of_bad_entries_alone_is_read_past_and_logged_in_bounds(
    start_node, redis_url
):
    """More bad entries than one read takes (ledger_read_count), and nothing else: the
    reader goes past them (it is not stuck re-reading them), and the log stays bounded."""
    one = start_node()
    ann = await joined(one.port)
    db = redis.Redis.from_url(redis_url, decode_responses=True)

    def flood() -> None:
        pipe = db.pipeline(transaction=False)
        for n in range(20_000):
            pipe.xadd(STREAM, {"e": f"garbage {n}"})
        pipe.execute()

    await asyncio.to_thread(flood)
    await ann.send("after the flood")
    await ann.until_event("message", text="after the flood", timeout=4 * TIMEOUT)
    lines = one.text().splitlines()
    assert sum("skipped a bad entry" in line for line in lines) <= 100, len(lines)
    assert "Traceback" not in one.text()
    await ann.close()
    db.close()
