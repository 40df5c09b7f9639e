"""What operators read: the metrics port (/metrics, /healthz, /readyz) and the JSON log,
scraped and read over real sockets from a real server."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.conftest import TIMEOUT, Peer
from tests.test_server_process import server_process  # noqa: F401 (a fixture)


async def http_get(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """One request to the metrics port, as a scraper sends it: status and body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def sample(metrics: str, name: str, labels: str = "") -> float:
    """The value of one sample of the text format (``name{labels} value``)."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == wanted:
            return float(value)
    raise AssertionError(f"no sample {wanted} in:\n{metrics}")


async def test_the_metrics_count_what_the_room_does(make_server, make_peer):
    server = await make_server(metrics_port=0, max_clients=2)
    ann, bob = await make_peer(server), await make_peer(server)
    await ann.send("hello")
    await bob.until_contains("hello")
    status, metrics = await http_get(server.ops.port, "/metrics")
    assert status == 200
    assert sample(metrics, "chatroom_users") == 2
    assert sample(metrics, "chatroom_messages_total") == 1
    assert sample(metrics, "chatroom_deliveries_total") >= 2 + 2 + 2  # welcomes, joins, hello
    assert sample(metrics, "chatroom_sent_bytes_total") > 0
    assert sample(metrics, "chatroom_send_queue_bytes") >= 0
    assert sample(metrics, "chatroom_loop_lag_seconds") >= 0
    assert sample(metrics, "chatroom_rooms") == 1
    third = await Peer.connect(server.port)  # the server is full
    assert "server full" in await third.line()
    await bob.send("/quit")
    await ann.until_contains("left")
    _, metrics = await http_get(server.ops.port, "/metrics")
    assert sample(metrics, "chatroom_users") == 1
    assert sample(metrics, "chatroom_disconnects_total", 'reason="quit"') == 1
    assert sample(metrics, "chatroom_refusals_total", 'cause="full"') == 1
    await third.close()


async def test_health_and_readiness_answer_while_the_server_accepts(make_server):
    server = await make_server(metrics_port=0)
    assert await http_get(server.ops.port, "/healthz") == (200, "accepting\n")
    assert await http_get(server.ops.port, "/readyz") == (200, "ready\n")
    assert (await http_get(server.ops.port, "/nowhere"))[0] == 404
    assert (await http_get(server.ops.port, "/metrics", "POST"))[0] == 405
    status, body = await http_get(server.ops.port, "/healthz", "HEAD")
    assert (status, body) == (200, "")


async def test_readiness_follows_the_shared_room(make_server, redis_server):
    """With --redis, /readyz says 503 while Redis is away and 200 once it is back and in
    sync; /healthz stays 200 all along (the server still accepts)."""
    server = await make_server(metrics_port=0, redis=redis_server.url)
    port = server.ops.port
    assert (await http_get(port, "/readyz"))[0] == 200
    redis_server.kill()
    async with asyncio.timeout(TIMEOUT * 3):
        while (await http_get(port, "/readyz"))[0] != 503:
            await asyncio.sleep(0.05)
    assert (await http_get(port, "/healthz"))[0] == 200
    _, metrics = await http_get(port, "/metrics")
    assert sample(metrics, "chatroom_redis_up") == 0
    redis_server.start()
    async with asyncio.timeout(TIMEOUT * 3):
        while (await http_get(port, "/readyz"))[0] != 200:
            await asyncio.sleep(0.05)


async def test_a_request_that_never_ends_is_not_served(make_server):
    """A request is bounded in size: one over ``ops_request_max`` is closed unanswered,
    and the port still answers the next scraper."""
    server = await make_server(metrics_port=0, ops_request_max=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.ops.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nX-Junk: " + b"a" * 4096)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()
    assert (await http_get(server.ops.port, "/healthz"))[0] == 200


async def test_a_taken_metrics_port_is_a_start_error(make_server):
    from chatroom.server.adapter.startup import StartError

    first = await make_server(metrics_port=0)
    with pytest.raises(StartError, match=rf"--metrics-port {first.ops.port}: "):
        await make_server(metrics_port=first.ops.port)


async def test_the_json_log_has_named_fields(server_process):  # noqa: F811
    server = server_process("--log-format", "json")
    peer = await Peer.connect(server.port)
    await peer.until_contains("joined")
    await peer.send("/nick ann")
    await peer.until_contains("is now ann")
    await peer.send("/quit bye")
    await peer.closed()
    server.proc.terminate()
    err = await asyncio.to_thread(server.proc.stderr.read)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert lines and len(lines) == len(err.splitlines()), err
    by_event = {line["event"]: line for line in lines}
    connect, rename, leave = by_event["connect"], by_event["rename"], by_event["disconnect"]
    assert connect["address"] == peer.local_id and connect["online"] == 1
    assert (rename["old"], rename["new"]) == (peer.local_id, "ann")
    assert (leave["name"], leave["reason"]) == ("ann", "quit")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", leave["ts"])
    assert all("bye" not in json.dumps(line) for line in lines)  # chat is never logged
